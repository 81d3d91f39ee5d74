"""Rate limiters (per-item back-off, token bucket, max-of) and the rate-limiting queue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from canaryctl.workqueue import (
    BucketRateLimiter,
    FakeClock,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimitingQueue,
    default_controller_rate_limiter,
)


def test_per_item_delay_doubles_from_five_milliseconds():
    limiter = ItemExponentialFailureRateLimiter()
    assert [limiter.when("a") for _ in range(4)] == pytest.approx([0.005, 0.01, 0.02, 0.04])
    assert limiter.num_requeues("a") == 4


def test_per_item_delay_is_capped_and_never_overflows():
    limiter = ItemExponentialFailureRateLimiter(base_delay=0.005, max_delay=1000.0)
    delays = [limiter.when("a") for _ in range(1200)]
    assert delays[17] == pytest.approx(655.36)
    assert delays[18] == 1000.0
    assert delays[-1] == 1000.0


def test_items_back_off_independently_and_forget_resets_one():
    limiter = ItemExponentialFailureRateLimiter()
    limiter.when("a")
    limiter.when("a")
    limiter.when("b")
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.num_requeues("b") == 1
    assert limiter.when("a") == pytest.approx(0.005)
    assert limiter.when("b") == pytest.approx(0.01)


def test_bucket_serves_the_burst_then_spaces_reservations():
    limiter = BucketRateLimiter(qps=10, burst=100, clock=FakeClock())
    assert [limiter.when(f"k{i}") for i in range(100)] == [0.0] * 100
    assert limiter.when("x") == pytest.approx(0.1)
    assert limiter.when("x") == pytest.approx(0.2)
    assert limiter.num_requeues("x") == 0


def test_bucket_refills_with_time_after_paying_its_debt():
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10, burst=100, clock=clock)
    for i in range(102):
        limiter.when(f"k{i}")  # two tokens in debt
    clock.step(1)  # +10 tokens: 8 available
    assert [limiter.when("x") for _ in range(8)] == [0.0] * 8
    assert limiter.when("x") == pytest.approx(0.1)


def test_bucket_never_holds_more_than_its_burst():
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10, burst=5, clock=clock)
    clock.step(1000)
    assert [limiter.when("x") for _ in range(5)] == [0.0] * 5
    assert limiter.when("x") == pytest.approx(0.1)


def test_max_of_takes_the_longest_delay_and_forgets_everywhere():
    slow = ItemExponentialFailureRateLimiter(base_delay=1.0, max_delay=100.0)
    fast = ItemExponentialFailureRateLimiter(base_delay=0.5, max_delay=100.0)
    limiter = MaxOfRateLimiter(fast, slow)
    assert limiter.when("a") == 1.0
    assert limiter.when("a") == 2.0
    assert limiter.num_requeues("a") == 2
    limiter.forget("a")
    assert (slow.num_requeues("a"), fast.num_requeues("a")) == (0, 0)


def test_default_controller_limiter_combines_item_backoff_and_bucket():
    limiter = default_controller_rate_limiter(FakeClock())
    assert limiter.when("a") == pytest.approx(0.005)
    assert limiter.when("a") == pytest.approx(0.01)
    for i in range(98):
        limiter.when(f"k{i}")
    assert limiter.when("fresh") == pytest.approx(0.1)  # bucket empty: it dominates 5 ms


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> Iterator[RateLimitingQueue]:
    queue = RateLimitingQueue(name="ratelimiting-test", clock=clock)
    yield queue
    queue.shut_down()


def test_add_rate_limited_waits_the_limiter_delay(queue, clock):
    queue.add_rate_limited("a")
    assert len(queue) == 0
    assert queue.num_requeues("a") == 1
    clock.step(0.005)
    assert queue.get(timeout=5) == ("a", False)
    queue.done("a")
    queue.add_rate_limited("a")
    clock.step(0.005)
    assert queue.get(timeout=0.05) == (None, False)  # second failure waits 10 ms
    clock.step(0.005)
    assert queue.get(timeout=5) == ("a", False)


def test_forget_resets_the_back_off(queue):
    queue.add_rate_limited("a")
    queue.add_rate_limited("a")
    queue.forget("a")
    assert queue.num_requeues("a") == 0


def test_add_rate_limited_after_shut_down_records_no_failure(queue):
    queue.shut_down()
    queue.add_rate_limited("a")
    assert queue.num_requeues("a") == 0


def test_injected_rate_limiter_is_used(clock):
    queue = RateLimitingQueue(
        clock=clock, rate_limiter=ItemExponentialFailureRateLimiter(base_delay=7.0)
    )
    try:
        queue.add_rate_limited("a")
        clock.step(6.9)
        assert queue.get(timeout=0.05) == (None, False)
        clock.step(0.1)
        assert queue.get(timeout=5) == ("a", False)
    finally:
        queue.shut_down()
