"""`metrics.series`: a fixed-label series looked up once is the family's own series."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from canaryctl import metrics


def _value(registry: CollectorRegistry, name: str, labels: dict[str, str]) -> float | None:
    return registry.get_sample_value(name, labels)


def test_series_is_the_familys_own_child_and_what_it_counts_is_exported():
    registry = CollectorRegistry()
    calls = Counter("calls_total", "calls", ["backend", "code"], registry=registry)
    first = metrics.series(calls, "api7", "200")
    assert first is calls.labels("api7", "200")
    assert metrics.series(calls, "api7", "200") is first
    assert metrics.series(calls, "api7", "500") is not first
    first.inc()
    metrics.series(calls, "api7", "200").inc(2)
    assert _value(registry, "calls_total", {"backend": "api7", "code": "200"}) == 3
    assert _value(registry, "calls_total", {"backend": "api7", "code": "500"}) == 0


def test_series_of_different_families_with_the_same_values_stay_apart():
    registry = CollectorRegistry()
    one = Histogram("one_seconds", "one", ["backend"], registry=registry)
    two = Histogram("two_seconds", "two", ["backend"], registry=registry)
    metrics.series(one, "apisix").observe(0.5)
    assert _value(registry, "one_seconds_count", {"backend": "apisix"}) == 1
    assert _value(registry, "two_seconds_count", {"backend": "apisix"}) is None
    metrics.series(two, "apisix").observe(0.5)
    assert _value(registry, "two_seconds_count", {"backend": "apisix"}) == 1
