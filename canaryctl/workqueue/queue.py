"""The stingy FIFO at the heart of the controller: each key is handed to one worker at a time.

Three structures, as in client-go's `util/workqueue/queue.go`: `order` (what to hand out
next), `dirty` (keys that need processing) and `processing` (keys a worker holds). A key
already waiting is not queued twice; a key re-added while a worker holds it is remembered
in `dirty` and queued again only when that worker calls `done`, so two workers never
reconcile the same Service at once and no change is lost.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable

from canaryctl.workqueue.clock import Clock, RealClock
from canaryctl.workqueue.metrics import NoQueueMetrics, QueueMetrics

UNFINISHED_WORK_UPDATE_PERIOD = 0.5  # seconds; client-go's ticker period for the in-progress gauges


class Queue:
    """FIFO of distinct hashable items with dirty/processing bookkeeping; safe for many threads."""

    def __init__(
        self, *, name: str = "", clock: Clock | None = None, metrics: QueueMetrics | None = None
    ) -> None:
        self.name = name
        self.clock: Clock = clock or RealClock()
        self._metrics: QueueMetrics = metrics or NoQueueMetrics()
        self._lock = threading.Lock()
        self._item_ready = threading.Condition(self._lock)
        self._state_changed = threading.Condition(self._lock)  # processing emptied, shutdown
        self._ticker = threading.Condition(self._lock)  # wakes the metrics ticker: shutdown only
        self._order: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._shutting_down = False
        self._draining = False
        if not isinstance(self._metrics, NoQueueMetrics):
            first_tick = self.clock.now() + UNFINISHED_WORK_UPDATE_PERIOD
            self._start_thread("metrics", lambda: self._report_unfinished_work(first_tick))

    def add(self, item: Hashable) -> None:
        """Mark `item` as needing processing; no-op if it is already waiting or after shut_down."""
        with self._lock:
            if self._shutting_down or item in self._dirty:
                return
            self._metrics.add(item)
            self._dirty.add(item)
            if item not in self._processing:
                self._order.append(item)
                self._item_ready.notify()

    def get(self, timeout: float | None = None) -> tuple[Hashable | None, bool]:
        """Take the next item: `(item, False)`; `(None, True)` once shut down and empty.

        Blocks until an item is available; `timeout` (real seconds, not the injected clock)
        bounds the wait and yields `(None, False)` when it expires. The caller must call
        `done(item)` when it has finished with the item.
        """
        with self._lock:
            if not self._item_ready.wait_for(lambda: self._order or self._shutting_down, timeout):
                return None, False
            if not self._order:
                return None, True
            item = self._order.popleft()
            self._metrics.get(item)
            self._processing.add(item)
            self._dirty.discard(item)
            return item, False

    def done(self, item: Hashable) -> None:
        """Release `item`; if it was added again meanwhile, queue it once more."""
        with self._lock:
            self._metrics.done(item)
            self._processing.discard(item)
            if item in self._dirty:
                self._order.append(item)
                self._item_ready.notify()
            if not self._processing:
                self._state_changed.notify_all()

    def shut_down(self) -> None:
        """Ignore new adds and wake every waiter; `get` keeps handing out what is already queued."""
        self._begin_shutdown(drain=False)

    def shut_down_with_drain(self) -> None:
        """Like `shut_down`, then block until every item handed out has been `done`.

        Workers must keep calling `done`; a later `shut_down()` ends the wait early.
        """
        self._begin_shutdown(drain=True)
        with self._lock:
            while self._draining and self._processing:
                self._state_changed.wait()

    def shutting_down(self) -> bool:
        with self._lock:
            return self._shutting_down

    def __len__(self) -> int:
        """Items waiting to be handed out (not those being processed); informational only."""
        with self._lock:
            return len(self._order)

    def __bool__(self) -> bool:
        return True  # an empty queue is still a queue: keep `queue or default` from misfiring

    def _begin_shutdown(self, drain: bool) -> None:
        with self._lock:
            self._shutting_down = True
            self._draining = drain
            self._item_ready.notify_all()
            self._state_changed.notify_all()
            self._ticker.notify_all()

    def _start_thread(self, role: str, target: Callable[[], None]) -> None:
        threading.Thread(
            target=target, name=f"workqueue-{self.name or 'unnamed'}-{role}", daemon=True
        ).start()

    def _report_unfinished_work(self, next_tick: float) -> None:
        """Refresh the in-progress gauges every period of the injected clock until shutdown."""
        with self._lock:
            while not self._shutting_down:
                if self.clock.now() >= next_tick:
                    self._metrics.update_unfinished_work()
                    next_tick = self.clock.now() + UNFINISHED_WORK_UPDATE_PERIOD
                self.clock.wait_until(self._ticker, next_tick)
