"""The pure APISIX diff: ids, bodies, which calls in which order, and the state read back.

A tiny model of the Admin API (`Held`) applies the planned calls one by one with APISIX's
rules — PUT creates (canaryctl plans it only for a free id), PATCH merges as
`core.table.merge` does (the emulator's `merge_patch`), a route may only reference upstreams
that exist, an upstream in use may not be deleted — and after every call checks that no
request can reach a missing upstream, nor an upstream that routes neither before nor after.
"""

from __future__ import annotations

import copy
import itertools
import re

import pytest

from canaryctl.gateway.apisix import naming
from canaryctl.gateway.apisix.bodies import (
    APP_LABEL,
    MANAGED_BY,
    OWNER_LABEL,
    ApisixObjects,
    is_owned,
)
from canaryctl.gateway.apisix.diff import (
    DELETE,
    PATCH,
    PUT,
    ROUTES,
    UPSTREAMS,
    Call,
    calls_for,
    calls_for_objects,
)
from canaryctl.gateway.apisix.state import app_state, group, routed_split
from canaryctl.gateway.base import TerminalGatewayError
from canaryctl.gateway.model import AppSpec, AppState, Upstream
from canaryctl.testing.apisix.store import merge_patch

V1 = Upstream("demo", "error-page-v1", "error-page-v1.demo.svc.cluster.local", 80)
V2 = Upstream("demo", "error-page-v2", "error-page-v2.demo.svc.cluster.local", 80)
V3 = Upstream("demo", "error-page-v3", "error-page-v3.demo.svc.cluster.local", 8080)
V1_ID = naming.upstream_id("error-page", V1.key)
V2_ID = naming.upstream_id("error-page", V2.key)
ROUTE_ID = naming.route_id("error-page")
ID_PATTERN = re.compile(r"^[a-zA-Z0-9-_.]{1,64}$")  # schema_def.lua id_schema


class Held:
    """What an APISIX Admin API holds for one app, changed only by calls it would accept."""

    def __init__(self, name: str = "error-page") -> None:
        self.name = name
        self.routes: dict[str, dict] = {}
        self.upstreams: dict[str, dict] = {}
        self.history: list[tuple[set[str], set[str]]] = []  # what routed before / after a call

    def objects(self) -> ApisixObjects | None:
        route = self.routes.get(naming.route_id(self.name))
        if route is None and not self.upstreams:
            return None
        return ApisixObjects(self.name, route, tuple(copy.deepcopy(list(self.upstreams.values()))))

    def state(self) -> AppState | None:
        objects = self.objects()
        return None if objects is None else app_state(copy.deepcopy(objects))

    def perform(self, call: Call) -> None:
        store = self.routes if call.resource == ROUTES else self.upstreams
        before = self.routed()
        if call.verb == PUT:
            assert call.object_id not in store, "PUT over an existing object"
            store[call.object_id] = {**copy.deepcopy(call.body), "id": call.object_id}
        elif call.verb == PATCH:
            store[call.object_id] = merge_patch(store[call.object_id], copy.deepcopy(call.body))
        else:
            assert call.verb == DELETE
            if call.resource == UPSTREAMS:
                assert call.object_id not in self.referenced(), "upstream still in use"
            del store[call.object_id]
        assert self.referenced() <= set(self.upstreams), "a route references a missing upstream"
        self.history.append((before, self.routed()))

    def referenced(self) -> set[str]:
        ids = set()
        for route in self.routes.values():
            ids.add(route["upstream_id"])
            for rule in ((route.get("plugins") or {}).get("traffic-split") or {}).get("rules", []):
                ids |= {e["upstream_id"] for e in rule["weighted_upstreams"] if "upstream_id" in e}
        return ids

    def routed(self) -> set[str]:
        """The upstreams that get requests now."""
        route = self.routes.get(naming.route_id(self.name))
        if route is None:
            return set()
        canary_id, weight, _ = routed_split(route)
        routed = {canary_id} if canary_id and weight else set()
        return routed | ({route["upstream_id"]} if weight < 100 else set())


def run(held: Held, spec: AppSpec) -> list[Call]:
    """Plan from what `held` holds, perform every call, check each step; the calls."""
    held.history = []
    before = held.routed()
    calls = calls_for(held.state(), spec)
    for call in calls:
        held.perform(call)
    after = held.routed()
    for _, during in held.history:
        assert during <= before | after, f"traffic to a retiring upstream: {during}"
    return calls


def shape(calls: list[Call]) -> list[tuple[str, str]]:
    return [(c.verb, c.resource) for c in calls]


def assert_routes_as(held: Held, spec: AppSpec) -> None:
    state = held.state()
    assert state is not None and state.matches(spec) and state.conforms, state
    assert calls_for(state, spec) == []


# --- ids and names -----------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 10, 54, 55, 64, 100, 253])
def test_ids_always_fit_apisix_and_short_names_stay_readable(length):
    app = ("a" * (length - 1) + "z")[:length]
    route_id = naming.route_id(app)
    upstream_id = naming.upstream_id(app, "some-namespace/some-service")
    assert ID_PATTERN.match(route_id) and ID_PATTERN.match(upstream_id)
    assert (route_id == f"canaryctl-{app}") == (length <= 54)
    assert len(naming.upstream_name(app, "ns/svc")) <= naming.NAME_MAX
    assert len(naming.label_value(app)) <= naming.LABEL_MAX


@pytest.mark.parametrize(
    ("app", "key", "readable"),
    [
        ("error-page", "demo/web-v1", True),
        ("error-page", "demo/web_v1", True),  # "_" is an id character
        ("error.page", "demo/web", True),  # a dot in the app: the key still parses from the right
        ("error-page", "de.mo/web", False),
        ("error-page", "demo/w.eb", False),
        ("error-page", "demo/wéb", False),
        ("error page", "demo/web", False),
        ("error-page", "web", False),  # no namespace
    ],
)
def test_upstream_ids_are_readable_only_when_the_parts_read_back(app, key, readable):
    upstream_id = naming.upstream_id(app, key)
    namespace, _, service = key.rpartition("/")
    assert ID_PATTERN.match(upstream_id)
    assert (upstream_id == f"canaryctl-{app}.{namespace}.{service}") == readable


def test_ids_are_deterministic_and_distinct():
    names = ["error-page", "error-page.v", "a" * 253, "a" * 252 + "b", "b" + "a" * 252]
    route_ids = [naming.route_id(n) for n in names]
    assert route_ids == [naming.route_id(n) for n in names] and len(set(route_ids)) == len(names)
    keys = ["demo/error-page-v1", "demo/error-page-v2", "other/error-page-v1", "x" * 63 + "/y"]
    upstream_ids = {naming.upstream_id(n, k) for n in names for k in keys}
    assert len(upstream_ids) == len(names) * len(keys)
    # the readable forms parse from the right: app "a.b" + "c/d" is not app "a" + "b/c.d"-like
    assert naming.upstream_id("a.b", "c/d") != naming.upstream_id("a", "b.c/d")


def test_long_texts_are_cut_with_a_hash_of_the_whole():
    long_a, long_b = "x" * 80 + "a", "x" * 80 + "b"
    assert naming.label_value(long_a) != naming.label_value(long_b)
    assert len(naming.label_value(long_a)) == 64 and naming.label_value("demo") == "demo"


def test_the_name_filter_matches_only_the_apps_upstreams():
    pattern = re.compile(naming.upstream_name_filter("error-page"))
    assert pattern.search(naming.upstream_name("error-page", V1.key))
    assert not pattern.search(naming.upstream_name("error-page.v2", V1.key))
    assert not pattern.search(naming.upstream_name("error-pages", V1.key))


# --- what canaryctl writes ---------------------------------------------------------------------


def test_the_seed_walkthrough_call_by_call():
    held = Held()
    assert shape(run(held, AppSpec("error-page", V1, owner="demo"))) == [
        (PUT, UPSTREAMS),
        (PUT, ROUTES),
    ]
    route = held.routes[ROUTE_ID]
    assert route["hosts"] == ["error-page"] and route["uri"] == "/*"
    assert route["upstream_id"] == V1_ID and "plugins" not in route
    assert route["labels"] == {
        MANAGED_BY: "canaryctl",
        APP_LABEL: "error-page",
        OWNER_LABEL: "demo",
    }
    assert held.upstreams[V1_ID]["nodes"] == [{"host": V1.host, "port": 80, "weight": 1}]

    calls = run(held, AppSpec("error-page", V1, V2, 10, "demo"))
    assert shape(calls) == [(PUT, UPSTREAMS), (PATCH, ROUTES)]
    assert held.routes[ROUTE_ID]["plugins"]["traffic-split"] == {
        "rules": [{"weighted_upstreams": [{"upstream_id": V2_ID, "weight": 10}, {"weight": 90}]}]
    }
    for weight in (0, 100):
        spec = AppSpec("error-page", V1, V2, weight, "demo")
        [call] = run(held, spec)
        assert (call.verb, call.resource) == (PATCH, ROUTES)
        assert list(call.body) == ["plugins"]  # one write, nothing else in it
        assert_routes_as(held, spec)
    assert held.routed() == {V2_ID}  # 100 %: the rule stays, so 99 % is one PATCH away

    promoted = AppSpec("error-page", V2, owner="demo")
    calls = run(held, promoted)
    assert shape(calls) == [(PATCH, ROUTES), (DELETE, UPSTREAMS)]
    assert calls[0].body == {"upstream_id": V2_ID, "plugins": {"traffic-split": None}}
    assert calls[1].object_id == V1_ID and set(held.upstreams) == {V2_ID}
    assert_routes_as(held, promoted)


def test_removing_a_canary_unhooks_the_rule_before_deleting_its_upstream():
    held = Held()
    run(held, AppSpec("error-page", V1, V2, 30))
    calls = run(held, AppSpec("error-page", V1))
    assert shape(calls) == [(PATCH, ROUTES), (DELETE, UPSTREAMS)] and calls[1].object_id == V2_ID


def test_replacing_the_canary_creates_the_new_upstream_first():
    held = Held()
    run(held, AppSpec("error-page", V1, V2, 30))
    calls = run(held, AppSpec("error-page", V1, V3, 30))
    assert shape(calls) == [(PUT, UPSTREAMS), (PATCH, ROUTES), (DELETE, UPSTREAMS)]
    assert calls[0].object_id == naming.upstream_id("error-page", V3.key)


SPECS = [
    AppSpec("error-page", V1),
    AppSpec("error-page", V1, V2, 0),
    AppSpec("error-page", V1, V2, 10),
    AppSpec("error-page", V1, V2, 100),
    AppSpec("error-page", V2),
    AppSpec("error-page", V2, V3, 50),
    AppSpec("error-page", V3, V1, 100, "demo"),
    AppSpec("error-page", Upstream(V1.namespace, V1.service, V1.host, 8080)),
]


@pytest.mark.parametrize(("start", "end"), list(itertools.product([None, *SPECS], SPECS)))
def test_every_transition_converges_without_traffic_to_missing_upstreams(start, end):
    held = Held()
    if start is not None:
        run(held, start)
    run(held, end)
    assert_routes_as(held, end)
    wanted = {naming.upstream_id("error-page", u.key) for u in {end.stable, end.canary} if u}
    assert set(held.upstreams) == wanted  # nothing left behind


def test_a_foreign_route_is_refused():
    foreign = AppState("error-page", False, V1, None, 0, False, raw=ApisixObjects("error-page"))
    with pytest.raises(TerminalGatewayError, match="not created by canaryctl"):
        calls_for(foreign, AppSpec("error-page", V1))


# --- hand edits ----------------------------------------------------------------------------------


def published(spec: AppSpec) -> Held:
    held = Held()
    run(held, spec)
    return held


def test_unmanaged_plugins_and_labels_survive_a_weight_change():
    held = published(AppSpec("error-page", V1, V2, 10))
    route = held.routes[ROUTE_ID]
    route["plugins"]["limit-count"] = {"count": 10, "time_window": 60}
    route["labels"]["team"] = "web"
    route["priority"] = 7
    assert held.state().conforms  # what canaryctl does not manage is not its business
    run(held, AppSpec("error-page", V1, V2, 20))
    route = held.routes[ROUTE_ID]
    assert route["plugins"]["limit-count"] == {"count": 10, "time_window": 60}
    assert route["labels"]["team"] == "web" and route["priority"] == 7


@pytest.mark.parametrize(
    ("edit", "patched"),
    [
        (lambda r: r.update(hosts=["other"]), {"hosts": ["error-page"]}),
        (lambda r: r.update(methods=["GET"]), {"methods": None}),
        (lambda r: r.update(status=0), {"status": 1}),
        (lambda r: r["labels"].pop(APP_LABEL), {"labels": {APP_LABEL: "error-page"}}),
    ],
)
def test_a_hand_edited_route_does_not_conform_and_one_patch_restores_it(edit, patched):
    spec = AppSpec("error-page", V1)
    held = published(spec)
    edit(held.routes[ROUTE_ID])
    state = held.state()
    assert state.owned and not state.conforms and not state.matches(spec)
    [call] = run(held, spec)
    assert (call.verb, call.body) == (PATCH, patched)
    assert_routes_as(held, spec)


def test_hand_set_split_weights_are_read_as_routed_and_rewritten():
    held = published(AppSpec("error-page", V1, V2, 10))
    held.routes[ROUTE_ID]["plugins"]["traffic-split"]["rules"][0]["weighted_upstreams"] = [
        {"upstream_id": V2_ID, "weight": 1},
        {"weight": 1},
    ]
    state = held.state()
    assert (state.canary, state.weight, state.conforms) == (V2, 50, False)
    run(held, AppSpec("error-page", V1, V2, 10))
    assert_routes_as(held, AppSpec("error-page", V1, V2, 10))


def test_a_rule_with_a_match_sends_no_ordinary_traffic():
    held = published(AppSpec("error-page", V1, V2, 10))
    rules = held.routes[ROUTE_ID]["plugins"]["traffic-split"]["rules"]
    rules[0]["match"] = [{"vars": [["http_x_canary", "==", "1"]]}]
    assert (held.state().weight, held.state().conforms) == (0, False)


def test_map_form_nodes_are_patched_in_their_own_form():
    held = published(AppSpec("error-page", V1))
    held.upstreams[V1_ID]["nodes"] = {"old-host.demo:80": 1}
    assert held.state().stable.host == "old-host.demo"  # read as routed: no longer the spec
    assert not held.state().matches(AppSpec("error-page", V1))
    [call] = run(held, AppSpec("error-page", V1))
    assert call.body == {"nodes": {"old-host.demo:80": None, f"{V1.host}:80": 1}}
    assert held.upstreams[V1_ID]["nodes"] == {f"{V1.host}:80": 1}
    assert_routes_as(held, AppSpec("error-page", V1))


def test_the_owner_label_follows_the_spec():
    held = published(AppSpec("error-page", V1, owner="team-a"))
    assert held.state().owner == "team-a"
    run(held, AppSpec("error-page", V1))
    assert OWNER_LABEL not in held.routes[ROUTE_ID]["labels"] and held.state().owner == ""


# --- state and grouping --------------------------------------------------------------------------


def test_upstreams_without_a_route_are_a_half_made_app():
    held = Held()
    upstream_only = calls_for_objects(None, AppSpec("error-page", V1, owner="demo"))[0]
    held.perform(upstream_only)
    state = held.state()
    assert (state.owned, state.stable, state.conforms, state.owner) == (True, None, False, "demo")
    assert shape(run(held, AppSpec("error-page", V1))) == [(PATCH, UPSTREAMS), (PUT, ROUTES)]


def test_group_places_listed_objects_by_their_ids():
    held = published(AppSpec("error-page", V1, V2, 10))
    other = published(AppSpec("shop", V3))
    foreign_route = {"id": naming.route_id("legacy"), "desc": "legacy", "uri": "/*"}
    stray = {"id": "hand-made", "desc": "error-page", "labels": {MANAGED_BY: "canaryctl"}}
    routes = [*held.routes.values(), *other.routes.values(), foreign_route, stray]
    upstreams = [*held.upstreams.values(), *other.upstreams.values()]
    apps = group(routes, upstreams)
    assert set(apps) == {"error-page", "shop", "legacy"}
    assert {u["id"] for u in apps["error-page"].upstreams} == {V1_ID, V2_ID}
    assert app_state(apps["error-page"]).matches(AppSpec("error-page", V1, V2, 10))
    assert not is_owned(apps["legacy"].route) and not app_state(apps["legacy"]).owned


def test_group_keeps_route_less_upstreams_under_their_exact_app_name():
    held = Held("shop")
    held.perform(calls_for_objects(None, AppSpec("shop", V1))[0])
    long_name = "a" * 100
    orphan = Held(long_name)
    orphan.perform(calls_for_objects(None, AppSpec(long_name, V1))[0])
    apps = group([], [*held.upstreams.values(), *orphan.upstreams.values()])
    assert set(apps) == {"shop"}  # a cut label cannot name the app: left for read_app
    assert apps["shop"].route is None and len(apps["shop"].upstreams) == 1


def test_conformity_is_planned_only_when_first_asked(count_calls):
    import canaryctl.gateway.apisix.state as state_module

    plans = count_calls(state_module, "calls_for_objects")
    state = published(AppSpec("error-page", V1, V2, 10)).state()
    assert plans == []  # reading the objects does not plan them again
    assert not state.matches(AppSpec("error-page", V1, V2, 20))  # the weight alone decides
    assert plans == []
    assert state.matches(AppSpec("error-page", V1, V2, 10)) and state.conforms
    assert len(plans) == 1  # planned once, then remembered
