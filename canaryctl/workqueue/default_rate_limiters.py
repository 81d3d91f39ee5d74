"""How long a failed key waits before its next try, as in client-go's `default_rate_limiters.go`.

A failing Service backs off exponentially on its own (5 ms, 10 ms, ... capped at 1000 s)
while a global token bucket (10/s, burst 100) keeps a storm of failures from hammering
the gateway; the controller uses the larger of the two delays.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable
from typing import Protocol

from canaryctl.workqueue.clock import Clock, RealClock


class RateLimiter(Protocol):
    """Decides each retry's delay; `when` records a failure, `forget` clears the item's history."""

    def when(self, item: Hashable) -> float:
        """Seconds to wait before retrying `item`; each call counts as one more failure."""
        ...

    def forget(self, item: Hashable) -> None:
        """Stop tracking `item` (call after it succeeded)."""
        ...

    def num_requeues(self, item: Hashable) -> int:
        """How many failures of `item` are being tracked."""
        ...


class ItemExponentialFailureRateLimiter:
    """`base_delay * 2**failures` per item, capped at `max_delay`."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._failures: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def when(self, item: Hashable) -> float:
        with self._lock:
            failures = self._failures.get(item, 0)
            self._failures[item] = failures + 1
        try:
            return min(self._max_delay, math.ldexp(self._base_delay, failures))
        except OverflowError:
            return self._max_delay

    def forget(self, item: Hashable) -> None:
        with self._lock:
            self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        with self._lock:
            return self._failures.get(item, 0)


class BucketRateLimiter:
    """A token bucket shared by all items, with reservations like golang.org/x/time/rate.

    The bucket starts full and refills at `qps` tokens per second up to `burst`. Every
    `when` takes a token, going into debt if none is left, and returns how long the caller
    must wait until that token exists.
    """

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock | None = None) -> None:
        self._qps = qps
        self._burst = burst
        self._clock: Clock = clock or RealClock()
        self._tokens = float(burst)
        self._refilled_at = self._clock.now()
        self._lock = threading.Lock()

    def when(self, item: Hashable) -> float:
        with self._lock:
            now = self._clock.now()
            elapsed = max(0.0, now - self._refilled_at)
            self._tokens = min(float(self._burst), self._tokens + elapsed * self._qps) - 1.0
            self._refilled_at = now
            return max(0.0, -self._tokens / self._qps)

    def forget(self, item: Hashable) -> None:
        pass  # the bucket keeps no per-item state

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """Combines limiters: the longest delay wins; every limiter sees every call."""

    def __init__(self, *limiters: RateLimiter) -> None:
        self._limiters = limiters

    def when(self, item: Hashable) -> float:
        return max([limiter.when(item) for limiter in self._limiters], default=0.0)

    def forget(self, item: Hashable) -> None:
        for limiter in self._limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max([limiter.num_requeues(item) for limiter in self._limiters], default=0)


def default_controller_rate_limiter(clock: Clock | None = None) -> MaxOfRateLimiter:
    """client-go's DefaultControllerRateLimiter: the slower of two limits.

    Per item 5 ms·2^n up to 1000 s, and 10/s with a burst of 100 overall.
    """
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(0.005, 1000.0),
        BucketRateLimiter(qps=10.0, burst=100, clock=clock),
    )
