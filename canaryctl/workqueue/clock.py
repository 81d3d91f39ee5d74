"""The time source of the work queue, injectable so tests step time instead of sleeping.

Every waiting thread in the package (the delaying loop, the unfinished-work ticker) waits
through `Clock.wait_until`, never through `time.sleep` or a bare timeout. That lets
`FakeClock.step` wake exactly the threads whose deadline it crossed, so a test of a
1000 s back-off runs in microseconds and never depends on the machine's speed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds plus a condition wait that honours this clock's notion of time."""

    def now(self) -> float:
        """Current time in seconds; only differences are meaningful."""
        ...

    def wait_until(self, condition: threading.Condition, deadline: float | None) -> None:
        """With `condition` held: wait until notified or `now() >= deadline` (None: no deadline).

        May return early (spuriously); callers re-check their state in a loop.
        """
        ...


class RealClock:
    """The machine's monotonic clock."""

    def now(self) -> float:
        return time.monotonic()

    def wait_until(self, condition: threading.Condition, deadline: float | None) -> None:
        if deadline is None:
            condition.wait()
        else:
            condition.wait(timeout=max(0.0, deadline - self.now()))


class FakeClock:
    """A clock that moves only when a test calls `step`; `step` wakes every waiter.

    A waiter checks its deadline and registers its condition in one step while holding the
    condition, and `step` notifies each condition only after acquiring it, so a step can
    never slip between a waiter's check of the time and its wait.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._waiting: Counter[threading.Condition] = Counter()

    def now(self) -> float:
        with self._lock:
            return self._now

    def step(self, seconds: float) -> None:
        """Advance time by `seconds` and wake every thread waiting on this clock."""
        if seconds < 0:
            raise ValueError("a FakeClock only moves forward")
        with self._lock:
            self._now += seconds
            conditions = list(self._waiting)
        for condition in conditions:
            with condition:
                condition.notify_all()

    def wait_until(self, condition: threading.Condition, deadline: float | None) -> None:
        with self._lock:  # check and register atomically, so a concurrent step cannot be missed
            if deadline is not None and self._now >= deadline:
                return
            self._waiting[condition] += 1
        try:
            condition.wait()
        finally:
            with self._lock:
                self._waiting[condition] -= 1
                if not self._waiting[condition]:
                    del self._waiting[condition]
