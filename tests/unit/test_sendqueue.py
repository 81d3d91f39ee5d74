"""The bounded send queue under Events and notifications: order, bounds, flush, stop."""

from __future__ import annotations

import threading

from canaryctl.sendqueue import SendQueue


def test_items_are_delivered_in_order_and_flush_waits_for_them():
    delivered: list[int] = []
    queue = SendQueue("test", delivered.append, max_pending=10)
    queue.start()
    assert [queue.offer(n) for n in range(5)] == [None] * 5
    assert queue.flush(5.0)
    assert delivered == [0, 1, 2, 3, 4]
    queue.stop()


def test_a_full_queue_refuses_and_stop_discards_what_waits():
    queue: SendQueue[int] = SendQueue("test", lambda item: None, max_pending=2)  # not started
    assert [queue.offer(n) for n in range(3)] == [None, None, "queue_full"]
    assert not queue.flush(0.05)  # nothing drains it
    assert queue.stop() == 2
    assert queue.offer(9) == "stopped"


def test_flush_waits_for_the_item_being_delivered():
    release = threading.Event()
    started = threading.Event()

    def deliver(item: int) -> None:
        started.set()
        release.wait(5.0)

    queue = SendQueue("test", deliver, max_pending=10)
    queue.start()
    queue.offer(1)
    assert started.wait(5.0)
    assert not queue.flush(0.05)  # the queue is empty but the item is still in delivery
    release.set()
    assert queue.flush(5.0)
    queue.stop()


def test_stop_ends_a_retry_wait_at_once():
    woke: list[bool] = []
    queue: SendQueue[int] = SendQueue("test", lambda item: None, max_pending=1)
    waiter = threading.Thread(target=lambda: woke.append(queue.sleep_unless_stopped(30.0)))
    waiter.start()
    queue.stop()
    waiter.join(5.0)
    assert woke == [True]
