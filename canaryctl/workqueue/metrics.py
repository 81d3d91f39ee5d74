"""What the work queue reports about itself, kept apart from the queue's logic.

The queue calls a `QueueMetrics` at each transition (add, get, done, retry) and on a
periodic tick; `PrometheusQueueMetrics` turns those calls into the client-go
`workqueue_*` families defined in `canaryctl.metrics`, with the same meaning, so
controller-runtime dashboards read them unchanged. `NoQueueMetrics` is the default so
queues built in tests touch no global registry.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol

from canaryctl import metrics as families
from canaryctl.workqueue.clock import Clock


class QueueMetrics(Protocol):
    """Observes queue transitions. add/get/done/update_unfinished_work run under the queue lock."""

    def add(self, item: Hashable) -> None:
        """An item was accepted as new work (it was not already waiting)."""
        ...

    def get(self, item: Hashable) -> None:
        """A worker took the item."""
        ...

    def done(self, item: Hashable) -> None:
        """A worker finished the item."""
        ...

    def retry(self) -> None:
        """An item was re-queued with rate limiting."""
        ...

    def update_unfinished_work(self) -> None:
        """Periodic refresh of the in-progress gauges."""
        ...


class NoQueueMetrics:
    """Reports nothing; also tells the queue not to start its metrics ticker."""

    def add(self, item: Hashable) -> None:
        pass

    def get(self, item: Hashable) -> None:
        pass

    def done(self, item: Hashable) -> None:
        pass

    def retry(self) -> None:
        pass

    def update_unfinished_work(self) -> None:
        pass


class PrometheusQueueMetrics:
    """Feeds the `workqueue_*` families for one queue, labelled `name` and `controller`.

    Not thread-safe by itself: the queue serialises add/get/done/update_unfinished_work
    under its lock; `retry` only increments a thread-safe counter.
    """

    def __init__(self, name: str, clock: Clock, controller: str = families.CONTROLLER) -> None:
        self._clock = clock
        self._depth = families.workqueue_depth.labels(name, controller)
        self._adds = families.workqueue_adds_total.labels(name, controller)
        self._queue_duration = families.workqueue_queue_duration_seconds.labels(name, controller)
        self._work_duration = families.workqueue_work_duration_seconds.labels(name, controller)
        self._retries = families.workqueue_retries_total.labels(name, controller)
        self._unfinished_work = families.workqueue_unfinished_work_seconds.labels(name, controller)
        self._longest_running = families.workqueue_longest_running_processor_seconds.labels(
            name, controller
        )
        self._added_at: dict[Hashable, float] = {}
        self._started_at: dict[Hashable, float] = {}

    def add(self, item: Hashable) -> None:
        self._adds.inc()
        self._depth.inc()
        self._added_at.setdefault(item, self._clock.now())

    def get(self, item: Hashable) -> None:
        now = self._clock.now()
        self._depth.dec()
        self._started_at[item] = now
        added_at = self._added_at.pop(item, None)
        if added_at is not None:
            self._queue_duration.observe(now - added_at)

    def done(self, item: Hashable) -> None:
        started_at = self._started_at.pop(item, None)
        if started_at is not None:
            self._work_duration.observe(self._clock.now() - started_at)

    def retry(self) -> None:
        self._retries.inc()

    def update_unfinished_work(self) -> None:
        now = self._clock.now()
        ages = [now - started_at for started_at in self._started_at.values()]
        self._unfinished_work.set(sum(ages))
        self._longest_running.set(max(ages, default=0.0))
