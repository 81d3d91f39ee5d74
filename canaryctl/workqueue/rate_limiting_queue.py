"""Retries with back-off: the queue a worker talks to after a failed reconcile.

`add_rate_limited(key)` asks the rate limiter how long this key should wait and schedules
it with `add_after`; `forget(key)` after a success resets the key's back-off. Keeping the
limiter behind the queue means workers never compute delays themselves.
"""

from __future__ import annotations

from collections.abc import Hashable

from canaryctl.workqueue.clock import Clock
from canaryctl.workqueue.default_rate_limiters import RateLimiter, default_controller_rate_limiter
from canaryctl.workqueue.delaying_queue import DelayingQueue
from canaryctl.workqueue.metrics import QueueMetrics


class RateLimitingQueue(DelayingQueue):
    """A `DelayingQueue` whose retries a `RateLimiter` spaces out (client-go's default if none)."""

    def __init__(
        self,
        *,
        name: str = "",
        clock: Clock | None = None,
        metrics: QueueMetrics | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        super().__init__(name=name, clock=clock, metrics=metrics)
        self.rate_limiter: RateLimiter = rate_limiter or default_controller_rate_limiter(self.clock)

    def add_rate_limited(self, item: Hashable) -> None:
        """Retry `item` once the rate limiter allows; counts one `workqueue_retries_total`."""
        if self.shutting_down():
            return
        self._metrics.retry()
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: Hashable) -> None:
        """Clear `item`'s failure history (after a success); does not remove it from the queue."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return self.rate_limiter.num_requeues(item)
