"""EventCorrelator and EventLog: client-go's aggregation, spam filter, dedupe; stepped clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canaryctl.event_correlator import (
    AGGREGATE_PREFIX,
    EventCorrelator,
    EventLog,
    Involved,
)
from canaryctl.workqueue.clock import FakeClock

SHOP = Involved("default", "shop-v2", "uid-shop")
CART = Involved("default", "cart-v2", "uid-cart")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


@pytest.fixture
def correlator(clock) -> EventCorrelator:
    return EventCorrelator(clock.now)


def weight_change(correlator: EventCorrelator, index: int, involved: Involved = SHOP):
    return correlator.admit(involved, "Normal", "CanaryWeightChanged", f"weight {index}%")


def test_ten_distinct_messages_start_one_aggregated_event(correlator):
    admitted = [weight_change(correlator, index) for index in range(12)]
    assert [a.aggregated for a in admitted] == [False] * 9 + [True] * 3
    assert len({a.key for a in admitted[:9]}) == 9  # each its own Event
    assert len({a.key for a in admitted[9:]}) == 1  # one aggregated Event for the rest
    assert admitted[9].message == AGGREGATE_PREFIX + "weight 9%"
    assert admitted[11].message == AGGREGATE_PREFIX + "weight 11%"  # the latest message shows
    assert admitted[0].message == "weight 0%"


def test_identical_messages_never_aggregate(correlator):
    admitted = [
        correlator.admit(SHOP, "Warning", "InvalidAnnotation", "percentage 'abc'")
        for _ in range(20)
    ]
    assert {a.key for a in admitted} == {admitted[0].key} and not any(
        a.aggregated for a in admitted
    )


def test_similarity_is_per_object_type_and_reason(correlator):
    for index in range(9):
        weight_change(correlator, index)
    other_reason = correlator.admit(SHOP, "Normal", "StepAdvanced", "weight 50%")
    other_type = correlator.admit(SHOP, "Warning", "CanaryWeightChanged", "weight 50%")
    other_object = weight_change(correlator, 50, involved=CART)
    assert not any(a.aggregated for a in (other_reason, other_type, other_object))
    assert weight_change(correlator, 9).aggregated  # the 10th distinct message of the group


def test_aggregation_restarts_after_600_quiet_seconds_only(correlator, clock):
    for index in range(10):
        weight_change(correlator, index)
        clock.step(500)  # a slow stream still counts as similar: each gap is within 600 s
    assert weight_change(correlator, 10).aggregated
    clock.step(601)
    assert not weight_change(correlator, 11).aggregated


def test_spam_filter_allows_a_burst_of_25_then_one_per_300_seconds(correlator, clock):
    admitted = [weight_change(correlator, index) for index in range(40)]
    assert sum(a is not None for a in admitted) == 25 and admitted[25] is None
    clock.step(299)
    assert weight_change(correlator, 100) is None
    clock.step(1)
    assert weight_change(correlator, 101) is not None
    assert weight_change(correlator, 102) is None
    clock.step(100_000)  # refilled, but never beyond the burst
    assert sum(weight_change(correlator, 200 + i) is not None for i in range(40)) == 25


def test_spam_filter_buckets_are_per_object_and_type(correlator):
    for index in range(25):
        weight_change(correlator, index)
    assert weight_change(correlator, 99) is None
    assert weight_change(correlator, 99, involved=CART) is not None
    assert correlator.admit(SHOP, "Warning", "GatewayError", "HTTP 503") is not None


def test_three_thousand_weight_changes_make_ten_events_with_the_aggregate_counting_16(clock):
    """What the recorder writes for a flood: 9 Events, then 1 aggregated one patched 15 times."""
    correlator, written = EventCorrelator(clock.now), EventLog(clock.now)
    creates = patches = 0
    aggregate_keys = set()
    for index in range(3000):
        admitted = weight_change(correlator, index)
        if admitted is None:
            continue
        if admitted.aggregated:
            aggregate_keys.add(admitted.key)
        previous = written.recent(admitted.key)
        if previous is None:
            creates += 1
            written.remember(admitted.key, "default", f"event-{index}", 1)
        else:
            patches += 1
            written.remember(admitted.key, "default", previous.name, previous.count + 1)
    assert (creates, patches) == (10, 15)
    [aggregate_key] = aggregate_keys
    assert written.recent(aggregate_key).count == 16


def test_memory_stays_bounded_by_the_lru(clock):
    correlator = EventCorrelator(clock.now, lru_size=100)
    log = EventLog(clock.now, lru_size=100)
    for index in range(1000):
        involved = Involved("default", f"svc-{index}", f"uid-{index}")
        admitted = correlator.admit(involved, "Normal", "Published", "published")
        log.remember(admitted.key, "default", f"event-{index}", 1)
    assert len(correlator._similar) == len(correlator._buckets) == len(log) == 100
    # the least recently used went first: the newest objects are still known
    assert log.recent(admitted.key) is not None


def test_event_log_patches_only_within_its_window(clock):
    log = EventLog(clock.now, window=600)
    log.remember(("k",), "default", "shop.1", 3)
    clock.step(599)
    assert log.recent(("k",)).count == 3
    clock.step(1)
    assert log.recent(("k",)) is None
    assert EventLog(clock.now, window=0).recent(("k",)) is None


@settings(max_examples=60, deadline=None)
@given(gaps=st.lists(st.floats(min_value=0, max_value=400), min_size=1, max_size=300))
def test_admitted_never_exceeds_burst_plus_refill(gaps):
    """Whatever the timing, an object gets at most 25 + elapsed/300 events of one type."""
    clock = FakeClock(start=0.0)
    correlator = EventCorrelator(clock.now)
    admitted = 0
    for index, gap in enumerate(gaps):
        clock.step(gap)
        admitted += weight_change(correlator, index) is not None
        assert admitted <= 25 + clock.now() / 300 + 1e-9
