"""Scheduled work: `add_after(key, delay)` for retries, release steps and gateway polling.

Delayed items wait in a heap ordered by ready time; one background thread sleeps on the
injected clock until the earliest is due and then `add`s it, so the stingy rules of
`Queue` still apply at that moment. Asking again for a key that is already waiting keeps
the earliest ready time, as in client-go's `delaying_queue.go`.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Hashable

from canaryctl.workqueue.clock import Clock
from canaryctl.workqueue.metrics import QueueMetrics
from canaryctl.workqueue.queue import Queue


class DelayingQueue(Queue):
    """A `Queue` that can also add an item once a delay on its clock has passed."""

    def __init__(
        self, *, name: str = "", clock: Clock | None = None, metrics: QueueMetrics | None = None
    ) -> None:
        super().__init__(name=name, clock=clock, metrics=metrics)
        self._waiting_changed = threading.Condition()
        self._waiting: list[tuple[float, int, Hashable]] = []  # heap of (ready_at, sequence, item)
        self._entry_by_item: dict[
            Hashable, tuple[float, int]
        ] = {}  # the live heap entry of each item
        self._sequence = itertools.count()
        self._stopped = False
        self._start_thread("delaying", self._add_items_when_due)

    def add_after(self, item: Hashable, delay: float) -> None:
        """Add `item` after `delay` seconds of the queue's clock; at once when `delay <= 0`.

        If the item is already waiting for a later time, the earlier time wins. Ignored after
        shutdown, and pending items are dropped by shutdown.
        """
        if delay <= 0:
            self.add(item)
            return
        with self._waiting_changed:
            ready_at = self.clock.now() + delay
            if self._stopped or self._is_due_no_later_than(item, ready_at):
                return
            sequence = next(self._sequence)
            heapq.heappush(self._waiting, (ready_at, sequence, item))
            self._entry_by_item[item] = (ready_at, sequence)
            self._waiting_changed.notify()

    def _is_due_no_later_than(self, item: Hashable, ready_at: float) -> bool:
        entry = self._entry_by_item.get(item)
        return entry is not None and entry[0] <= ready_at

    def _begin_shutdown(self, drain: bool) -> None:
        super()._begin_shutdown(drain)
        with self._waiting_changed:
            self._stopped = True
            self._waiting.clear()
            self._entry_by_item.clear()
            self._waiting_changed.notify_all()

    def _add_items_when_due(self) -> None:
        """Background loop: add what is due, then wait for the next ready time or a new entry."""
        with self._waiting_changed:
            while not self._stopped:
                self._add_due_items()
                next_ready_at = self._waiting[0][0] if self._waiting else None
                self.clock.wait_until(self._waiting_changed, next_ready_at)

    def _add_due_items(self) -> None:
        now = self.clock.now()
        while self._waiting and self._waiting[0][0] <= now:
            ready_at, sequence, item = heapq.heappop(self._waiting)
            if self._entry_by_item.get(item) == (
                ready_at,
                sequence,
            ):  # else superseded by an earlier time
                del self._entry_by_item[item]
                self.add(item)
