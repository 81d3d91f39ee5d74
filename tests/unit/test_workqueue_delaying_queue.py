"""add_after on a FakeClock: items become ready when time is stepped, never by real sleeping."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from canaryctl.testing.processes import wait_until
from canaryctl.workqueue import DelayingQueue, FakeClock

NOT_ADDED_GRACE = (
    0.05  # real seconds the waiting thread gets to (wrongly) add an item in negative checks
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


@pytest.fixture
def queue(clock: FakeClock) -> Iterator[DelayingQueue]:
    queue = DelayingQueue(name="delaying-test", clock=clock)
    yield queue
    queue.shut_down()


def test_item_is_added_once_its_delay_has_passed_on_the_clock(queue, clock):
    queue.add_after("a", 10)
    assert len(queue) == 0
    clock.step(9.9)
    assert queue.get(timeout=NOT_ADDED_GRACE) == (None, False)
    clock.step(0.1)
    assert queue.get(timeout=5) == ("a", False)


@pytest.mark.parametrize("delay", [0, -1])
def test_no_delay_adds_at_once(queue, delay):
    queue.add_after("a", delay)
    assert len(queue) == 1


def test_earlier_request_for_a_waiting_item_wins(queue, clock):
    queue.add_after("a", 10)
    queue.add_after("a", 2)
    clock.step(2)
    assert queue.get(timeout=5) == ("a", False)


def test_later_request_for_a_waiting_item_neither_delays_nor_duplicates_it(queue, clock):
    queue.add_after("a", 2)
    queue.add_after("a", 10)
    clock.step(2)
    assert queue.get(timeout=5) == ("a", False)
    queue.done("a")
    clock.step(10)
    assert queue.get(timeout=NOT_ADDED_GRACE) == (None, False)


def test_due_items_are_added_in_ready_time_order(queue, clock):
    queue.add_after("late", 3)
    queue.add_after("first", 1)
    queue.add_after("middle", 2)
    clock.step(5)
    assert [queue.get(timeout=5)[0] for _ in range(3)] == ["first", "middle", "late"]


def test_one_step_releases_only_what_is_due(queue, clock):
    queue.add_after("soon", 1)
    queue.add_after("later", 60)
    clock.step(1)
    assert queue.get(timeout=5) == ("soon", False)
    assert queue.get(timeout=NOT_ADDED_GRACE) == (None, False)
    clock.step(59)
    assert queue.get(timeout=5) == ("later", False)


def test_item_due_while_processing_is_handed_out_after_done(queue, clock):
    queue.add("a")
    queue.get()
    queue.add_after("a", 1)
    clock.step(1)
    assert queue.get(timeout=NOT_ADDED_GRACE) == (None, False)
    queue.done("a")
    assert queue.get(timeout=5) == ("a", False)


def delaying_thread_alive(name: str) -> bool:
    return any(thread.name == f"workqueue-{name}-delaying" for thread in threading.enumerate())


def test_shut_down_stops_the_waiting_thread_and_drops_pending_items(clock):
    queue = DelayingQueue(name="stops-test", clock=clock)
    queue.add_after("a", 1)
    assert delaying_thread_alive("stops-test")
    queue.shut_down()
    wait_until(lambda: not delaying_thread_alive("stops-test"))
    clock.step(2)
    assert queue.get(timeout=5) == (None, True)


def test_shut_down_with_drain_also_stops_the_waiting_thread(clock):
    queue = DelayingQueue(name="drain-stops-test", clock=clock)
    queue.shut_down_with_drain()
    wait_until(lambda: not delaying_thread_alive("drain-stops-test"))


def test_add_after_is_ignored_after_shut_down(queue, clock):
    queue.shut_down()
    queue.add_after("a", 1)
    queue.add_after("b", 0)
    clock.step(2)
    assert queue.get(timeout=5) == (None, True)


def test_real_clock_delays_in_real_time():
    queue = DelayingQueue(name="real-clock-test")
    try:
        started = time.monotonic()
        queue.add_after("a", 0.05)
        assert queue.get(timeout=5) == ("a", False)
        assert time.monotonic() - started >= 0.05
    finally:
        queue.shut_down()
