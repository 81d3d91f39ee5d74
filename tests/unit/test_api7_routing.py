"""The emulator's pure decisions: split, rules, API matching, faults, error-page failure pacing."""

from __future__ import annotations

import collections

import pytest

from canaryctl.examples.errorpage import FailureAccumulator
from canaryctl.testing.api7cloud.routing import (
    Balancers,
    RequestFacts,
    SmoothWeightedRoundRobin,
    choose_target,
    choose_version,
    host_matches,
    match_api,
    rules_match,
)
from canaryctl.testing.httpemulation.faults import FaultSet

NO_FACTS = RequestFacts(headers={}, query={}, cookies={})


def app(**fields) -> dict:
    return {
        "id": "1",
        "hosts": ["error-page"],
        "path_prefix": "/",
        "default_upstream_version": "v1",
        "upstreams": [
            {"version": "v1", "upstream": {"targets": [{"host": "a", "port": 80, "weight": 1}]}},
            {"version": "v2", "upstream": {"targets": [{"host": "b", "port": 80, "weight": 1}]}},
        ],
        **fields,
    }


def canary(state: str = "in_progress", percent: int = 10, **fields) -> dict:
    return {
        "id": "9",
        "state": state,
        "type": "percent",
        "percent": percent,
        "canary_upstream_version": "v2",
        **fields,
    }


def split(
    canary_obj: dict | None, count: int = 100, balancers: Balancers | None = None
) -> collections.Counter:
    balancers = balancers or Balancers()
    return collections.Counter(
        choose_version(app(), canary_obj, NO_FACTS, balancers) for _ in range(count)
    )


@pytest.mark.parametrize("percent", [0, 1, 5, 10, 33, 50, 99, 100])
def test_percent_split_is_exact_per_100(percent: int):
    assert split(canary(percent=percent))["v2"] == percent


def test_every_window_of_100_consecutive_requests_is_exact():
    balancers = Balancers()
    picks = [choose_version(app(), canary(percent=10), NO_FACTS, balancers) for _ in range(250)]
    assert all(picks[start : start + 100].count("v2") == 10 for start in range(150))


def test_changing_the_percent_resets_the_round_robin():
    balancers = Balancers()
    split(canary(percent=10), count=37, balancers=balancers)
    assert split(canary(percent=30), balancers=balancers)["v2"] == 30


@pytest.mark.parametrize("state", ["paused", "finished"])
def test_paused_and_finished_canaries_take_nothing(state: str):
    assert split(canary(state=state, percent=100))["v2"] == 0


def test_no_canary_or_a_canary_on_a_removed_version_takes_nothing():
    assert split(None)["v1"] == 100
    assert split(canary(percent=100, canary_upstream_version="gone"))["v1"] == 100


def test_swrr_spreads_picks_evenly():
    balancer = SmoothWeightedRoundRobin({"a": 1, "b": 3, "zero": 0})
    picks = [balancer.pick() for _ in range(8)]
    assert picks.count("a") == 2 and "zero" not in picks
    assert picks[0:4].count("a") == 1


def facts(headers=None, query=None, cookies=None) -> RequestFacts:
    return RequestFacts(
        headers={k.lower(): v for k, v in (headers or {}).items()},
        query=query or {},
        cookies=cookies or {},
    )


@pytest.mark.parametrize(
    "rule,request_facts,expected",
    [
        (
            {"position": "header", "key": "X-Debug", "operator": "equal", "value": "true"},
            facts({"x-debug": "true"}),
            True,
        ),
        (
            {"position": "header", "key": "X-Debug", "operator": "equal", "value": "true"},
            facts({"x-debug": "no"}),
            False,
        ),
        (
            {"position": "header", "key": "X-Debug", "operator": "equal", "value": "true"},
            facts(),
            False,
        ),
        (
            {"position": "header", "key": "X-Debug", "operator": "not_equal", "value": "true"},
            facts(),
            True,
        ),
        (
            {"position": "query", "key": "beta", "operator": "present"},
            facts(query={"beta": ""}),
            True,
        ),
        (
            {"position": "query", "key": "beta", "operator": "not_present"},
            facts(query={"beta": "1"}),
            False,
        ),
        (
            {"position": "cookie", "key": "tier", "operator": "in", "value": ["gold", "silver"]},
            facts(cookies={"tier": "gold"}),
            True,
        ),
        (
            {"position": "cookie", "key": "tier", "operator": "not_in", "value": ["gold"]},
            facts(cookies={"tier": "gold"}),
            False,
        ),
        (
            {
                "position": "header",
                "key": "user-agent",
                "operator": "regex_match",
                "value": "^curl/",
            },
            facts({"User-Agent": "curl/8.0"}),
            True,
        ),
        (
            {"position": "query", "key": "n", "operator": "equal", "value": 5},
            facts(query={"n": "5"}),
            True,
        ),
    ],
)
def test_rule_operators(rule: dict, request_facts: RequestFacts, expected: bool):
    assert rules_match([rule], request_facts) is expected


def test_rule_canary_takes_requests_matching_all_rules():
    rules = [
        {"position": "header", "key": "x-debug", "operator": "equal", "value": "true"},
        {"position": "query", "key": "beta", "operator": "present"},
    ]
    rule_canary = canary(type="rule", rules=rules, percent=0)
    both, one = facts({"X-Debug": "true"}, {"beta": "1"}), facts({"X-Debug": "true"})
    assert choose_version(app(), rule_canary, both, Balancers()) == "v2"
    assert choose_version(app(), rule_canary, one, Balancers()) == "v1"


def test_host_matching_is_case_insensitive_with_wildcards():
    assert host_matches(app(hosts=["Error-Page"]), "error-page")
    assert host_matches(app(hosts=["*.example.com"]), "a.example.com")
    assert not host_matches(app(hosts=["*.example.com"]), "example.com")
    assert not host_matches(app(hosts=None), "error-page")


def test_longest_path_wins_and_exact_beats_prefix():
    apis = [
        {"id": "root", "paths": [{"path": "/", "path_type": "Prefix"}]},
        {"id": "api", "paths": [{"path": "/api", "path_type": "Prefix"}]},
        {"id": "exact", "paths": [{"path": "/api", "path_type": "Exact"}]},
        {"id": "off", "active": 1, "paths": [{"path": "/api/x", "path_type": "Prefix"}]},
        {"id": "post", "methods": ["POST"], "paths": [{"path": "/api/y", "path_type": "Prefix"}]},
    ]
    assert match_api(app(), apis, "GET", "/api").api["id"] == "exact"
    assert match_api(app(), apis, "GET", "/api/x").api["id"] == "api"
    assert match_api(app(), apis, "GET", "/api/y").api["id"] == "api"
    assert match_api(app(), apis, "POST", "/api/y").api["id"] == "post"
    assert match_api(app(), apis, "GET", "/other").matched_uri == "/*"
    assert match_api(app(), [apis[2]], "GET", "/other") is None


def test_path_prefix_is_part_of_the_route_and_stripped_on_request():
    prefixed = app(path_prefix="/shop")
    keep = {"id": "k", "paths": [{"path": "/items", "path_type": "Prefix"}]}
    strip = {**keep, "strip_path_prefix": True}
    assert match_api(prefixed, [keep], "GET", "/items") is None
    assert match_api(prefixed, [keep], "GET", "/shop/items/1").forward_path == "/shop/items/1"
    assert match_api(prefixed, [strip], "GET", "/shop/items/1").forward_path == "/items/1"


def test_targets_are_weighted():
    upstream = {
        "version": "v1",
        "upstream": {
            "targets": [
                {"host": "a", "port": 1, "weight": 3},
                {"host": "b", "port": 2, "weight": 1},
            ]
        },
    }
    balancers = Balancers()
    hosts = collections.Counter(choose_target("1", upstream, balancers)["host"] for _ in range(40))
    assert hosts == {"a": 30, "b": 10}
    assert choose_target("1", {"version": "v", "upstream": {"targets": []}}, balancers) is None


# --- faults -------------------------------------------------------------------------------


def test_times_fault_fires_exactly_n_times_then_disappears():
    faults = FaultSet()
    faults.add("status", status=500, times=2, path="/api/v1/apps/*")
    decisions = [faults.decide("GET", "/api/v1/apps/1/apis").action for _ in range(3)]
    assert [d.status if d else None for d in decisions] == [500, 500, None]
    assert faults.list() == []


def test_fault_matches_method_and_path_patterns():
    faults = FaultSet()
    faults.add("drop", method="put", path="/api/v1/apps/*/canary_releases/*")
    assert faults.decide("GET", "/api/v1/apps/1/canary_releases/2").action is None
    assert faults.decide("PUT", "/api/v1/apps/1/apis/2").action is None
    assert faults.decide("PUT", "/api/v1/apps/1/canary_releases/2").action.kind == "drop"


def test_probability_is_seeded_and_roughly_honoured():
    def fired(seed: int) -> list[bool]:
        faults = FaultSet(seed)
        faults.add("status", probability=0.3)
        return [faults.decide("GET", "/x").action is not None for _ in range(1000)]

    assert fired(7) == fired(7)
    assert 230 < sum(fired(7)) < 370


def test_latencies_add_up_and_first_answering_fault_wins():
    faults = FaultSet()
    faults.add("latency", latency_ms=10)
    first = faults.add("retry_after", retry_after=3, times=1)
    faults.add("status", status=502, times=1)
    faults.add("latency", latency_ms=5)
    decision = faults.decide("GET", "/x")
    assert (
        decision.latency_ms == 15
        and decision.action.id == first
        and decision.action.retry_after == 3
    )
    assert faults.decide("GET", "/x").action.status == 502  # the second kept its count


@pytest.mark.parametrize(
    "kind,fields",
    [
        ("boom", {}),
        ("status", {"status": 99}),
        ("status", {"times": 0}),
        ("status", {"probability": 1.5}),
        ("latency", {"latency_ms": -1}),
        ("status", {"colour": "red"}),
        ("status", {"id": "x"}),
    ],
)
def test_malformed_faults_are_refused(kind: str, fields: dict):
    with pytest.raises(ValueError):
        FaultSet().add(kind, **fields)


# --- error page failure pacing ---------------------------------------------------------------


@pytest.mark.parametrize(
    "rate,per,expected",
    [(0.3, 10, 3), (0.0, 10, 0), (1.0, 10, 10), (0.05, 100, 5), (0.333, 1000, 333)],
)
def test_failure_accumulator_is_exact(rate: float, per: int, expected: int):
    accumulator = FailureAccumulator(rate)
    assert sum(accumulator.next_fails() for _ in range(per)) == expected


def test_failure_accumulator_refuses_rates_outside_0_1():
    with pytest.raises(ValueError):
        FailureAccumulator(1.5)
