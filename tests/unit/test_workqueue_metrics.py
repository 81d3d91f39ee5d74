"""The workqueue_* families fed by a queue: client-go's meaning, read back from the registry."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest

from canaryctl.metrics import CONTROLLER, REGISTRY
from canaryctl.testing.processes import wait_until
from canaryctl.workqueue import FakeClock, RateLimitingQueue, new_controller_queue

_names = itertools.count()


def sample(name: str, queue: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"name": queue, "controller": CONTROLLER})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> Iterator[RateLimitingQueue]:
    queue = new_controller_queue(f"metrics-test-{next(_names)}", clock=clock)
    yield queue
    queue.shut_down()


def test_every_series_exists_at_zero_from_the_start(queue):
    for family in (
        "workqueue_depth",
        "workqueue_adds_total",
        "workqueue_retries_total",
        "workqueue_unfinished_work_seconds",
        "workqueue_longest_running_processor_seconds",
        "workqueue_queue_duration_seconds_count",
        "workqueue_work_duration_seconds_count",
    ):
        assert sample(family, queue.name) == 0.0, family


def test_adds_count_only_accepted_adds_and_depth_follows_the_waiting_items(queue):
    queue.add("a")
    queue.add("a")  # already waiting: not an add
    queue.add("b")
    assert sample("workqueue_adds_total", queue.name) == 2
    assert sample("workqueue_depth", queue.name) == 2
    queue.get()
    assert sample("workqueue_depth", queue.name) == 1
    queue.add("a")  # processing, so it becomes dirty again: an accepted add
    assert sample("workqueue_adds_total", queue.name) == 3


def test_queue_and_work_durations_are_measured_on_the_clock(queue, clock):
    queue.add("a")
    clock.step(2)
    item, _ = queue.get()
    clock.step(3)
    queue.done(item)
    assert sample("workqueue_queue_duration_seconds_sum", queue.name) == 2
    assert sample("workqueue_queue_duration_seconds_count", queue.name) == 1
    assert sample("workqueue_work_duration_seconds_sum", queue.name) == 3
    assert sample("workqueue_work_duration_seconds_count", queue.name) == 1


def test_retries_count_rate_limited_adds_not_scheduled_ones(queue):
    queue.add_rate_limited("a")
    queue.add_rate_limited("b")
    queue.add_after("c", 30)
    assert sample("workqueue_retries_total", queue.name) == 2


def test_unfinished_work_gauges_follow_the_ticker_on_the_clock(queue, clock):
    queue.add("a")
    queue.add("b")
    queue.get()
    clock.step(2)
    wait_until(lambda: sample("workqueue_longest_running_processor_seconds", queue.name) == 2)
    assert sample("workqueue_unfinished_work_seconds", queue.name) == 2
    queue.get()
    clock.step(1)
    wait_until(lambda: sample("workqueue_unfinished_work_seconds", queue.name) == 4)
    assert sample("workqueue_longest_running_processor_seconds", queue.name) == 3
    queue.done("a")
    queue.done("b")
    clock.step(1)
    wait_until(lambda: sample("workqueue_unfinished_work_seconds", queue.name) == 0)
    assert sample("workqueue_longest_running_processor_seconds", queue.name) == 0


def test_ticker_thread_stops_on_shut_down(clock):
    name = f"metrics-test-{next(_names)}"
    queue = new_controller_queue(name, clock=clock)
    assert any(thread.name == f"workqueue-{name}-metrics" for thread in threading.enumerate())
    queue.shut_down()
    wait_until(
        lambda: all(thread.name != f"workqueue-{name}-metrics" for thread in threading.enumerate())
    )


def test_queue_without_metrics_reports_nothing_and_runs_no_ticker(clock):
    name = f"metrics-test-{next(_names)}"
    queue = new_controller_queue(name, clock=clock, metrics=False)
    try:
        queue.add("a")
        queue.add_rate_limited("b")
        assert sample("workqueue_adds_total", name) is None
        assert sample("workqueue_retries_total", name) is None
        assert all(thread.name != f"workqueue-{name}-metrics" for thread in threading.enumerate())
    finally:
        queue.shut_down()
