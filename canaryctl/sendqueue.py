"""A bounded queue that one background thread drains: how canaryctl sends what may wait.

Events and webhook notifications must never slow down or break a reconcile: the reconciler
hands an item over with `offer()`, which never blocks, and one thread delivers the items in
order. The queue is bounded (a full queue refuses, the caller counts the drop), `flush()`
waits until everything offered has been delivered or given up, and `stop()` discards what is
still waiting and ends the thread. A delivery that waits between retries uses
`sleep_unless_stopped()`, so stopping never waits out a retry delay.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Generic, Literal, TypeVar

Item = TypeVar("Item")
Refusal = Literal["stopped", "queue_full"]


class SendQueue(Generic[Item]):
    """Items offered from any thread, delivered one at a time by `deliver` on a thread `name`."""

    def __init__(self, name: str, deliver: Callable[[Item], None], max_pending: int):
        self._name, self._deliver, self._max_pending = name, deliver, max_pending
        self._pending: collections.deque[Item] = collections.deque()
        self._busy = self._stopped = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def offer(self, item: Item) -> Refusal | None:
        """Queue `item`; never blocks. None when queued, else why it was refused."""
        with self._changed:
            if self._stopped:
                return "stopped"
            if len(self._pending) >= self._max_pending:
                return "queue_full"
            self._pending.append(item)
            self._changed.notify_all()
        return None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every offered item was delivered (or given up on); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._busy, timeout)

    def stop(self, timeout: float = 2.0) -> int:
        """End the thread; items still waiting are discarded. Returns how many were."""
        with self._changed:
            self._stopped = True
            discarded = len(self._pending)
            self._pending.clear()
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        return discarded

    def sleep_unless_stopped(self, seconds: float) -> bool:
        """Wait `seconds`; True if stop() was called meanwhile."""
        with self._changed:
            return self._changed.wait_for(lambda: self._stopped, seconds)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._busy = False
                self._changed.notify_all()
                self._changed.wait_for(lambda: self._pending or self._stopped)
                if self._stopped:
                    return
                item = self._pending.popleft()
                self._busy = True
            self._deliver(item)
