"""The stingy FIFO: ordering, dirty/processing rules, shutdown, and safety under many threads."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canaryctl.testing.processes import wait_until
from canaryctl.workqueue import Queue


def start(target: Callable[[], object]) -> tuple[threading.Thread, list]:
    """Run `target` in a thread; its return value lands in the returned list."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(target()), daemon=True)
    thread.start()
    return thread, result


def test_items_come_out_in_the_order_they_were_added():
    queue = Queue()
    for key in ("ns/a", "ns/b", "ns/c"):
        queue.add(key)
    assert len(queue) == 3
    assert [queue.get()[0] for _ in range(3)] == ["ns/a", "ns/b", "ns/c"]


def test_adding_a_waiting_item_again_keeps_one_copy_in_its_place():
    queue = Queue()
    queue.add("a")
    queue.add("b")
    queue.add("a")
    assert len(queue) == 2
    assert queue.get() == ("a", False)
    assert queue.get() == ("b", False)


def test_item_added_while_processing_is_queued_again_only_after_done():
    queue = Queue()
    queue.add("a")
    item, _ = queue.get()
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0
    assert queue.get(timeout=0) == (None, False)
    queue.done(item)
    assert len(queue) == 1
    assert queue.get(timeout=0) == ("a", False)


def test_done_without_a_new_add_does_not_requeue():
    queue = Queue()
    queue.add("a")
    queue.done(queue.get()[0])
    assert len(queue) == 0
    assert queue.get(timeout=0) == (None, False)


def test_get_blocks_until_an_item_is_added():
    queue = Queue()
    thread, result = start(queue.get)
    queue.add("a")
    thread.join(timeout=5)
    assert result == [("a", False)]


def test_get_timeout_returns_no_item_without_shutdown():
    queue = Queue()
    assert queue.get(timeout=0.01) == (None, False)
    assert not queue.shutting_down()


def test_shut_down_wakes_every_blocked_get():
    queue = Queue()
    getters = [start(queue.get) for _ in range(3)]
    queue.shut_down()
    for thread, result in getters:
        thread.join(timeout=5)
        assert result == [(None, True)]
    assert queue.shutting_down()


def test_after_shut_down_queued_items_are_still_handed_out_and_new_adds_are_ignored():
    queue = Queue()
    queue.add("a")
    queue.shut_down()
    queue.add("b")
    assert queue.get() == ("a", False)
    assert queue.get() == (None, True)


def test_item_dirty_before_shut_down_is_requeued_by_done():
    queue = Queue()
    queue.add("a")
    queue.get()
    queue.add("a")
    queue.shut_down()
    queue.done("a")
    assert queue.get() == ("a", False)


def test_shut_down_with_drain_waits_for_items_being_processed():
    queue = Queue()
    queue.add("a")
    queue.add("b")
    queue.get()
    queue.get()
    drain, _ = start(queue.shut_down_with_drain)
    queue.done("a")
    drain.join(timeout=0.1)  # proving "still blocked" needs a short bounded wait
    assert drain.is_alive()
    assert queue.shutting_down()
    queue.done("b")
    drain.join(timeout=5)
    assert not drain.is_alive()


def test_shut_down_with_drain_returns_at_once_when_nothing_is_processing():
    queue = Queue()
    queue.add("a")
    queue.shut_down_with_drain()
    assert queue.get() == ("a", False)


def test_shut_down_ends_a_drain_early():
    queue = Queue()
    queue.add("a")
    queue.get()
    drain, _ = start(queue.shut_down_with_drain)
    wait_until(queue.shutting_down)
    queue.shut_down()
    drain.join(timeout=5)
    assert not drain.is_alive()


def test_an_empty_queue_is_still_truthy():
    assert Queue()


class ReferenceQueue:
    """The contract restated without a dirty set: waiting list, held set, 'again' set."""

    def __init__(self) -> None:
        self.waiting: list[str] = []
        self.held: set[str] = set()
        self.again: set[str] = set()

    def add(self, item: str) -> None:
        if item in self.waiting or item in self.again:
            return
        if item in self.held:
            self.again.add(item)
        else:
            self.waiting.append(item)

    def get(self) -> str | None:
        if not self.waiting:
            return None
        item = self.waiting.pop(0)
        self.held.add(item)
        return item

    def done(self, item: str) -> None:
        self.held.discard(item)
        if item in self.again:
            self.again.discard(item)
            self.waiting.append(item)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from("abcd")),
        st.tuples(st.just("get"), st.just(0)),
        st.tuples(st.just("done"), st.integers(0, 3)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_single_threaded_behaviour_matches_the_reference(ops):
    queue, reference = Queue(), ReferenceQueue()
    for op, arg in ops:
        if op == "add":
            queue.add(arg)
            reference.add(arg)
        elif op == "get":
            expected = reference.get()
            assert queue.get(timeout=0) == (expected, False)
        elif reference.held:
            item = sorted(reference.held)[arg % len(reference.held)]
            queue.done(item)
            reference.done(item)
        assert len(queue) == len(reference.waiting)


WORK_TIMES = (0.0, 0.0, 0.0002)  # seconds a simulated reconcile holds its item


class WorkLog:
    """Shared bookkeeping of the stress test, ordered by one global sequence."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sequence = itertools.count()
        self.in_flight: set[str] = set()
        self.overlaps: list[str] = []
        self.last_add: dict[str, int] = {}
        self.last_start: dict[str, int] = {}

    def before_add(self, item: str) -> None:
        with self.lock:
            self.last_add[item] = next(self.sequence)

    def start(self, item: str) -> None:
        with self.lock:
            if item in self.in_flight:
                self.overlaps.append(item)
            self.in_flight.add(item)
            self.last_start[item] = next(self.sequence)

    def finish(self, item: str) -> None:
        with self.lock:
            self.in_flight.discard(item)

    def all_processed_after_last_add(self) -> bool:
        with self.lock:
            return all(
                self.last_start.get(item, -1) > added for item, added in self.last_add.items()
            )


def run_worker(queue: Queue, log: WorkLog, rng: random.Random) -> None:
    while True:
        item, shutdown = queue.get()
        if shutdown:
            return
        log.start(item)
        if rng.random() < 0.3:  # re-add while processing: must come back after done
            log.before_add(item)
            queue.add(item)
        time.sleep(rng.choice(WORK_TIMES))  # simulated reconcile: lets other threads interleave
        log.finish(item)
        queue.done(item)


def run_producer(
    queue: Queue, log: WorkLog, rng: random.Random, items: list[str], count: int
) -> None:
    for _ in range(count):
        item = rng.choice(items)
        log.before_add(item)
        queue.add(item)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_many_workers_never_share_an_item_and_every_add_is_processed(seed):
    queue, log = Queue(), WorkLog()
    items = [f"ns/svc-{i}" for i in range(12)]
    workers = [
        threading.Thread(
            target=run_worker, args=(queue, log, random.Random(seed * 100 + i)), daemon=True
        )
        for i in range(4)
    ]
    producers = [
        threading.Thread(
            target=run_producer,
            args=(queue, log, random.Random(seed * 200 + i), items, 400),
            daemon=True,
        )
        for i in range(3)
    ]
    for thread in workers + producers:
        thread.start()
    for thread in producers:
        thread.join(timeout=10)
    wait_until(log.all_processed_after_last_add, timeout=10)
    queue.shut_down()
    for thread in workers:
        thread.join(timeout=5)
        assert not thread.is_alive()
    assert log.overlaps == []
    assert len(queue) == 0
