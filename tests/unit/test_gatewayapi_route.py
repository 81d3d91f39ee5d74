"""The Gateway API backend's pure parts: the route body, a route's state, the writes planned."""

from __future__ import annotations

import copy

import pytest

from canaryctl.gateway.base import TerminalGatewayError
from canaryctl.gateway.gatewayapi.plan import plan
from canaryctl.gateway.gatewayapi.route import GROUP, route_body
from canaryctl.gateway.gatewayapi.state import app_state, editors, route_problem, view_of
from canaryctl.gateway.model import AppSpec, AppState, ParentRef, Upstream
from canaryctl.testing.routefollower import SmoothRoundRobin

PARENT = ParentRef("infra", "gw")


def upstream(service: str, namespace: str = "shop") -> Upstream:
    return Upstream(namespace, service, f"{service}.{namespace}.svc.cluster.local", 80)


V1, V2 = upstream("web-v1"), upstream("web-v2")


def stored(spec: AppSpec, parent: ParentRef = PARENT, **metadata) -> dict:
    """A route as the apiserver returns it after canaryctl applied `spec`."""
    body = copy.deepcopy(route_body(spec, parent))
    body["metadata"].update({"uid": "u-1", "resourceVersion": "7", "generation": 1, **metadata})
    body["metadata"].setdefault(
        "managedFields",
        [{"manager": "canaryctl", "operation": "Apply", "fieldsV1": {"f:spec": {"f:rules": {}}}}],
    )
    return body


def state_of(route: dict, parent: ParentRef = PARENT):
    return app_state((view_of(route),), parent, "cluster.local")


# the body -------------------------------------------------------------------------------------


def test_body_has_one_match_everything_rule_with_both_weights_and_every_default_explicit():
    body = route_body(AppSpec("web", V1, V2, 10, owner="shop"), PARENT)
    assert body["metadata"] == {
        "name": "web",
        "namespace": "shop",
        "labels": {"app.kubernetes.io/managed-by": "canaryctl"},
        "annotations": {"api7.cloud/application": "web", "api7.cloud/owner-namespace": "shop"},
    }
    assert body["spec"] == {
        "parentRefs": [{"group": GROUP, "kind": "Gateway", "namespace": "infra", "name": "gw"}],
        "hostnames": ["web"],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [
                    {"group": "", "kind": "Service", "name": "web-v1", "port": 80, "weight": 90},
                    {"group": "", "kind": "Service", "name": "web-v2", "port": 80, "weight": 10},
                ],
            }
        ],
    }


@pytest.mark.parametrize("percent, weights", [(0, [100, 0]), (100, [0, 100]), (37, [63, 37])])
def test_weights_are_100_minus_p_and_p(percent, weights):
    refs = route_body(AppSpec("web", V1, V2, percent), PARENT)["spec"]["rules"][0]["backendRefs"]
    assert [ref["weight"] for ref in refs] == weights


def test_promoted_app_routes_only_the_former_canary():
    refs = route_body(AppSpec("web", V2), PARENT)["spec"]["rules"][0]["backendRefs"]
    assert [(ref["name"], ref["weight"]) for ref in refs] == [("web-v2", 100)]


@pytest.mark.parametrize(
    "text, parsed",
    [
        ("infra/gw", ParentRef("infra", "gw")),
        (" infra/gw/https \n", ParentRef("infra", "gw", "https")),
        ("gw", None),
        ("infra/", None),
        ("Infra/gw", None),
        ("infra/gw/https/extra", None),
        ("a" * 64 + "/gw", None),
    ],
)
def test_parent_refs_parse_strictly(text, parsed):
    assert ParentRef.parse(text) == parsed


# state from a route --------------------------------------------------------------------------


def test_a_route_as_written_reads_back_as_the_spec_it_was_written_for():
    spec = AppSpec("web", V1, V2, 10, owner="shop")
    state = state_of(stored(spec))
    assert state.owned and state.conforms and state.matches(spec)
    assert (state.stable, state.canary, state.weight, state.owner) == (V1, V2, 10, "shop")


def test_weight_is_the_canary_share_of_whatever_the_route_holds():
    route = stored(AppSpec("web", V1, V2, 10))
    refs = route["spec"]["rules"][0]["backendRefs"]
    refs[0]["weight"], refs[1]["weight"] = 1, 3
    state = state_of(route)
    assert state.weight == 75 and not state.conforms  # not how canaryctl writes 75 %


def test_edits_by_another_field_manager_are_named_and_break_conformance():
    route = stored(AppSpec("web", V1, V2, 10))
    route["metadata"]["managedFields"].append(
        {"manager": "kubectl-patch", "operation": "Update", "fieldsV1": {"f:spec": {"f:rules": {}}}}
    )
    state = state_of(route)
    assert state.edited_by == ("kubectl-patch",) and not state.conforms


def test_fields_canaryctl_does_not_own_are_not_edits():
    entries = [
        {"manager": "kubectl-label", "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}}},
        {"manager": "gw-controller", "subresource": "status", "fieldsV1": {"f:status": {}}},
        {"manager": "canaryctl", "operation": "Apply", "fieldsV1": {"f:spec": {}}},
    ]
    assert editors(entries) == ()
    ours = {"f:metadata": {"f:annotations": {"f:api7.cloud/application": {}}}}
    assert editors([{"manager": "someone", "fieldsV1": ours}]) == ("someone",)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r["spec"]["rules"][0].update(filters=[{"type": "RequestHeaderModifier"}]),
        lambda r: r["spec"]["rules"].append({"backendRefs": []}),
        lambda r: r["spec"].update(hostnames=["web", "www"]),
        lambda r: r["spec"]["parentRefs"][0].update(name="other"),
        lambda r: r["metadata"]["annotations"].pop("api7.cloud/application"),
        lambda r: r["metadata"]["labels"].clear(),
    ],
)
def test_anything_else_in_the_route_breaks_conformance(change):
    route = stored(AppSpec("web", V1, V2, 10))
    change(route)
    assert not state_of(route).conforms


def test_defaults_filled_in_by_the_apiserver_are_no_difference():
    route = stored(AppSpec("web", V1, V2, 10))
    for ref in route["spec"]["rules"][0]["backendRefs"]:
        del ref["group"], ref["kind"]
    del route["spec"]["parentRefs"][0]["group"]
    assert state_of(route).conforms


def test_the_requested_parent_is_recorded_and_checked_against_the_route():
    spec = AppSpec("web", V1, parent="edge/gw2")
    state = state_of(stored(spec, ParentRef("edge", "gw2")))
    assert state.parent == "edge/gw2" and state.conforms and state.matches(spec)
    assert not state.matches(AppSpec("web", V1))  # annotation removed: back to the default
    moved_default = state_of(stored(AppSpec("web", V1)), ParentRef("infra", "new-gw"))
    assert not moved_default.conforms  # the controller's default parent changed


def test_backends_that_do_not_record_parents_ignore_the_annotation():
    api7_like = AppState("web", True, V1, None, 0)  # parent_recorded False
    assert api7_like.matches(AppSpec("web", V1, parent="edge/gw2"))


def status(generation: int, accepted: str = "False") -> dict:
    condition = {"type": "Accepted", "status": accepted, "reason": "NoMatchingParent"}
    condition |= {"message": "no listener", "observedGeneration": generation}
    parent = {"parentRef": {"namespace": "infra", "name": "gw"}, "controllerName": "x.io/gw"}
    return {"parents": [{**parent, "conditions": [condition]}]}


def test_a_current_not_accepted_condition_is_the_problem_a_stale_one_is_not():
    route = stored(AppSpec("web", V1), generation=3)
    assert route_problem({**route, "status": status(3)}) == (
        "x.io/gw reports Accepted=False (NoMatchingParent) on parent infra/gw: no listener",
        "NoMatchingParent",
    )
    assert route_problem({**route, "status": status(2)}) == ("", "")
    assert route_problem({**route, "status": status(3, accepted="True")}) == ("", "")


# planned writes -------------------------------------------------------------------------------


def test_create_is_not_forced_an_update_of_our_route_is():
    created = plan(None, AppSpec("web", V1), PARENT)
    assert created.namespace == "shop" and not created.force and created.stale == ()
    current = state_of(stored(AppSpec("web", V1)))
    assert plan(current, AppSpec("web", V1, V2, 5), PARENT).force


def test_an_app_moving_namespace_is_created_there_and_the_old_route_deleted():
    current = state_of(stored(AppSpec("web", V1)))
    moved = plan(current, AppSpec("web", upstream("web-v1", "store")), PARENT)
    assert moved.namespace == "store" and not moved.force
    assert [view.key for view in moved.stale] == ["shop/web"]


def test_foreign_routes_and_cross_namespace_members_are_refused():
    foreign = stored(AppSpec("web", V1))
    foreign["metadata"]["labels"] = {}
    with pytest.raises(TerminalGatewayError, match="not created by canaryctl"):
        plan(state_of(foreign), AppSpec("web", V1), PARENT)
    with pytest.raises(TerminalGatewayError, match="ReferenceGrant"):
        plan(None, AppSpec("web", V1, upstream("web-v2", "other"), 10), PARENT)


# the test kit's data plane -------------------------------------------------------------------


@pytest.mark.parametrize("weights", [[90, 10], [50, 50], [0, 100], [3, 1]])
def test_smooth_round_robin_gives_exact_shares_in_every_full_cycle(weights):
    spread = SmoothRoundRobin(weights)
    picks = [spread.pick() for _ in range(sum(weights) * 2)]
    assert [picks.count(index) for index in range(len(weights))] == [2 * w for w in weights]


def test_smooth_round_robin_with_no_weight_picks_nothing():
    assert SmoothRoundRobin([0, 0]).pick() is None


def test_the_parent_annotation_is_validated_like_every_other_annotation():
    from types import MappingProxyType

    from canaryctl.annotations import APP, PARENT, Invalid, Member, parse_member
    from canaryctl.objects import Service, ServicePort

    def service(parent: str) -> Service:
        annotations = MappingProxyType({APP: "web", PARENT: parent})
        return Service("shop", "web-v1", "u", "1", annotations, (ServicePort("http", 80),))

    member = parse_member(service(" edge/gw2/https "), "cluster.local")
    assert isinstance(member, Member) and member.parent == "edge/gw2/https"
    invalid = parse_member(service("gw2"), "cluster.local")
    assert isinstance(invalid, Invalid)
    assert invalid.message.startswith(f'annotation {PARENT}="gw2" is invalid: accepted values')
    assert "NAMESPACE/NAME[/SECTION]" in invalid.message
