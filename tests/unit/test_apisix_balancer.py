"""The APISIX emulator's pure split decisions: resty.roundrobin, traffic-split rules, `vars`.

Each case names the upstream test it mirrors: apache/apisix `t/plugin/traffic-split.t`,
api7/lua-resty-expr `t/v1.t`, or openresty/lua-resty-balancer `lib/resty/roundrobin.lua`
(whose sequences are derived by hand from that code).
"""

from __future__ import annotations

import collections

import pytest

from canaryctl.testing.apisix.balancer import (
    ROUTE_UPSTREAM,
    Balancers,
    RoundRobin,
    SplitChoice,
    choose_split,
    chosen_rule,
    pick_node,
    upstream_nodes,
)
from canaryctl.testing.apisix.expr import ExprError, compile_vars, evaluate
from canaryctl.testing.apisix.routing import RequestVars


def picks(weights: dict, count: int, start: int = 0) -> list:
    picker = RoundRobin(weights, start)
    return [picker.find() for _ in range(count)]


# --- resty.roundrobin -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({"a": 1, "b": 1}, {"a": 50, "b": 50}),
        ({"a": 3, "b": 1}, {"a": 75, "b": 25}),
        ({"canary": 10, "stable": 90}, {"canary": 10, "stable": 90}),
        ({"canary": 90, "stable": 10}, {"canary": 90, "stable": 10}),
        ({"a": 2, "b": 2, "c": 1}, {"a": 40, "b": 40, "c": 20}),
    ],
)
def test_wrr_counts_are_exact_over_100_requests_from_any_start(weights: dict, expected: dict):
    # lua-resty-balancer roundrobin.lua `find`: a full cycle is sum(weights)/gcd picks
    for start in range(len(weights)):
        assert collections.Counter(picks(weights, 100, start)) == expected


def test_wrr_interleaves_by_levels_not_smoothly():
    # roundrobin.lua: levels 5..1 step gcd; only `a` reaches levels 5..2 (nginx's smooth WRR
    # would spread b and c between the a's). Starting after `c` skips the first level-5 pass.
    assert picks({"a": 5, "b": 1, "c": 1}, 13, start=2) == list("aaaabc") + list("aaaaabc")


def test_wrr_starts_after_the_start_node():
    # roundrobin.lua `new`: `last_id` is a random node; the first pick is the one after it
    assert picks({"a": 1, "b": 1}, 4, start=0) == ["b", "a", "b", "a"]
    assert picks({"a": 1, "b": 1}, 4, start=1) == ["a", "b", "a", "b"]


def test_wrr_single_node_is_taken_even_with_weight_zero():
    # roundrobin.lua `get_gcd` only_key; t/plugin/traffic-split.t TEST 18-19 (weight 0 node used)
    assert picks({"only": 0}, 3) == ["only"] * 3


def test_wrr_weight_zero_is_never_taken_next_to_positive_weights():
    assert set(picks({"zero": 0, "one": 1, "two": 2}, 30)) == {"one", "two"}


def test_balancers_reset_the_sequence_when_the_version_changes():
    balancers = Balancers(seed=7)
    first = [balancers.pick("r1", 1, {"a": 3, "b": 1}) for _ in range(3)]
    again = [balancers.pick("r1", 2, {"a": 3, "b": 1}) for _ in range(3)]
    fresh = Balancers(seed=7)
    assert [fresh.pick("r1", 1, {"a": 3, "b": 1}) for _ in range(3)] == first
    assert again == [fresh.pick("x", 1, {"a": 3, "b": 1}) for _ in range(3)]


# --- traffic-split ----------------------------------------------------------------------


def request(target: str = "/", headers: dict | None = None) -> RequestVars:
    items = [("Host", "example.com"), *(headers or {}).items()]
    return RequestVars("GET", target, items)


def split_counts(
    conf: dict, variables: RequestVars, count: int, override=None
) -> collections.Counter:
    balancers = Balancers(seed=1)
    choices = [choose_split(conf, variables, balancers, ("r1", 1), override) for _ in range(count)]
    return collections.Counter(
        c.upstream_id or ("inline" if c.upstream else "route") for c in choices
    )


CANARY_10 = {
    "rules": [{"weighted_upstreams": [{"upstream_id": "canary", "weight": 10}, {"weight": 90}]}]
}


def test_canary_percentage_with_route_upstream_for_the_rest():
    # canary by weight (docs/gateways/apisix.md); t/plugin/traffic-split.t TEST 20-21
    assert split_counts(CANARY_10, request(), 100) == {"canary": 10, "route": 90}


def test_weight_only_entries_share_one_slot_and_the_last_weight_wins():
    # traffic-split.lua `new_rr_obj`: every weight-only entry is "plugin#upstream#is#empty"
    conf = {"rules": [{"weighted_upstreams": [{"weight": 1}, {"weight": 3}]}]}
    assert split_counts(conf, request(), 12) == {"route": 12}


def test_no_rules_or_empty_entries_mean_the_route_upstream():
    # t/plugin/traffic-split.t TEST 4-5 (`traffic-split: {}`) and TEST 6-7 (`[{}]`)
    assert split_counts({}, request(), 6) == {"route": 6}
    assert split_counts({"rules": [{"weighted_upstreams": [{}]}]}, request(), 6) == {"route": 6}


JACK = {
    "rules": [
        {
            "match": [{"vars": [["arg_name", "==", "jack"], ["arg_age", "!", "<", "16"]]}],
            "weighted_upstreams": [
                {"upstream": {"nodes": {"127.0.0.1:1981": 2}}, "weight": 2},
                {"weight": 1},
            ],
        }
    ]
}


def test_failed_match_keeps_the_route_upstream():
    # t/plugin/traffic-split.t TEST 8-9: age 14 < 16, so the negated comparison fails
    assert split_counts(JACK, request("/server_port?name=jack&age=14"), 6) == {"route": 6}


def test_passed_match_splits_two_thirds_to_the_plugin_upstream():
    # t/plugin/traffic-split.t TEST 10
    assert split_counts(JACK, request("/server_port?name=jack&age=16"), 6) == {
        "inline": 4,
        "route": 2,
    }


def test_any_match_entry_suffices_and_weights_2_2_1_split_over_five():
    # t/plugin/traffic-split.t TEST 11-13: second `vars` entry via `in` and negated `<`
    conf = {
        "rules": [
            {
                "match": [
                    {"vars": [["arg_name", "==", "jack"], ["arg_age", "~~", "^[1-9]{1,2}"]]},
                    {"vars": [["arg_name2", "in", ["jack", "rose"]], ["arg_age2", "!", "<", 18]]},
                ],
                "weighted_upstreams": [
                    {"upstream_id": "a", "weight": 2},
                    {"upstream_id": "b", "weight": 2},
                    {"weight": 1},
                ],
            }
        ]
    }
    assert split_counts(conf, request("/?name=jack&age=0"), 5) == {"route": 5}
    assert split_counts(conf, request("/?name=jack&age=22"), 5) == {"a": 2, "b": 2, "route": 1}
    assert split_counts(conf, request("/?name2=rose&age2=18"), 5) == {"a": 2, "b": 2, "route": 1}


@pytest.mark.parametrize(
    ("headers", "target", "expected"),
    [
        ({"X-Debug": "true"}, "/", "canary"),
        ({"x-debug": "TRUE"}, "/", "route"),
        ({"Cookie": "beta=1; other=2"}, "/", "canary"),
        ({}, "/?group=beta", "canary"),
        ({}, "/?group=alpha", "route"),
    ],
)
def test_header_cookie_and_query_matches(headers: dict, target: str, expected: str):
    # blue-green (http_release ==) and custom releases (arg_/cookie_ vars), as
    # docs/gateways/apisix.md says: a single canary entry takes every matching request
    def rule(*var):
        return {"match": [{"vars": [list(var)]}], "weighted_upstreams": [{"upstream_id": "canary"}]}

    conf = {
        "rules": [
            rule("http_x_debug", "==", "true"),
            rule("cookie_beta", "==", "1"),
            rule("arg_group", "in", ["beta", "gamma"]),
        ]
    }
    assert split_counts(conf, request(target, headers), 3) == {expected: 3}


def test_rules_are_tried_in_order_and_an_empty_match_list_keeps_the_verdict():
    # traffic-split.lua `_M.access`: `match_passed` starts true and survives an empty `match`
    variables = request("/?a=1")
    empty_first = {"rules": [{"match": []}, {"weighted_upstreams": [{"upstream_id": "x"}]}]}
    assert chosen_rule(empty_first, variables) == 0
    after_a_miss = {"rules": [{"match": [{"vars": [["arg_a", "==", "2"]]}]}, {"match": []}]}
    assert chosen_rule(after_a_miss, variables) is None


def test_override_replaces_weights_and_is_ignored_for_another_shape():
    # emulator knob (no APISIX counterpart): the observed split differs from the configured
    assert split_counts(CANARY_10, request(), 100, override=(30, 70)) == {
        "canary": 30,
        "route": 70,
    }
    assert split_counts(CANARY_10, request(), 100, override=(1, 1, 1)) == {
        "canary": 10,
        "route": 90,
    }


def test_inline_upstreams_are_separate_slots():
    conf = {
        "rules": [
            {
                "weighted_upstreams": [
                    {"upstream": {"nodes": {"a:1": 1}}, "weight": 1},
                    {"upstream": {"nodes": {"b:1": 1}}, "weight": 1},
                ]
            }
        ]
    }
    balancers = Balancers(seed=3)
    slots = {choose_split(conf, request(), balancers, ("r", 1)).slot for _ in range(4)}
    assert slots == {("inline", 0), ("inline", 1)}
    assert SplitChoice().slot == ROUTE_UPSTREAM


# --- nodes ------------------------------------------------------------------------------


def test_nodes_map_and_list_forms_and_default_ports():
    # schema_def.lua nodes_schema: `{"host:port": weight}` or `[{host, port, weight}]`
    assert [n.address("http") for n in upstream_nodes({"nodes": {"a.svc:8080": 1, "b": 2}})] == [
        "a.svc:8080",
        "b:80",
    ]
    listed = upstream_nodes({"nodes": [{"host": "c", "weight": 1}]})
    assert [n.address("https") for n in listed] == ["c:443"]


def test_only_the_highest_priority_nodes_serve():
    # t/node/priority-balancer: lower priorities are only for retries, which are not emulated
    upstream = {
        "nodes": [
            {"host": "backup", "port": 80, "weight": 100, "priority": -1},
            {"host": "main", "port": 80, "weight": 1, "priority": 0},
        ]
    }
    chosen = {pick_node(upstream, Balancers(), "u", 1).host for _ in range(5)}
    assert chosen == {"main"}


# --- lua-resty-expr ---------------------------------------------------------------------

VARS = request("/p?age=18&name=Jack&flag", {"X-Version": "v2", "Cookie": "k=v"})


@pytest.mark.parametrize(
    ("rule", "holds"),
    [
        ([["arg_age", "==", 18]], True),  # number on the right: compared as numbers
        ([["arg_age", "==", "18.0"]], False),  # string on the right: compared as strings
        ([["arg_name", "~=", "jack"]], True),
        ([["arg_missing", "~=", "x"]], True),
        ([["arg_age", ">", 17], ["arg_age", "<=", "18"]], True),
        ([["arg_name", ">", 1]], False),  # not a number: every ordering is false
        ([["arg_name", "~~", "^J"]], True),
        ([["arg_name", "~~", "^j"]], False),
        ([["arg_name", "~*", "^j"]], True),
        ([["arg_missing", "~~", ".*"]], False),
        ([["http_x_version", "in", ["v1", "v2"]]], True),
        ([["arg_age", "in", [18]]], False),  # `in` does not convert
        ([["http_x_version", "has", "v"]], False),  # plain variables are never lists
        ([["remote_addr", "ipmatch", ["127.0.0.0/8"]]], True),
        ([["arg_age", "!", "==", 18]], False),
        ([["cookie_k", "==", "v"]], True),
        ([["arg_name", "JACK"]], False),  # 2-item form: the value is lower-cased as the op
        ([["arg_flag", "==", "true"]], False),  # a bare `?flag` is boolean true
        (["OR", ["arg_name", "==", "x"], ["arg_age", "==", 18]], True),
        (["!AND", ["arg_name", "==", "Jack"], ["arg_age", "==", 18]], False),
        ([], True),
    ],
)
def test_expr_operators(rule: list, holds: bool):
    # api7/lua-resty-expr lib/resty/expr/v1.lua compare_funcs; t/v1.t sanity cases
    assert evaluate(rule, VARS) is holds


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (None, "missing argument rule"),
        ([["arg_name", 123, "jack"]], "invalid operator '123'"),  # traffic-split.t TEST 3
        ([["arg_name", "<>", "jack"]], "invalid operator '<>'"),
        ([["arg_name", "not", "==", "x"]], "bad 'not' expression"),
        (["AND", ["arg_name", "==", "x"]], "rule too short"),
    ],
)
def test_expr_compile_errors(rule, message: str):
    # lua-resty-expr `compile_expr` / `compile` error strings
    with pytest.raises(ExprError, match=f"^{message}$"):
        compile_vars(rule)
