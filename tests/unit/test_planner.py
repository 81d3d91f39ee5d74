"""Per-application planning: the seed walk-through, every hold, and plan properties."""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canaryctl import annotations as ann
from canaryctl.annotations import parse_member
from canaryctl.gateway.model import AppSpec, AppState, Upstream
from canaryctl.objects import Service, ServicePort
from canaryctl.planner import AppPlan, plan_app

APP = "error-page"
DOMAIN = "cluster.local"
HTTP = ServicePort("http", 80)


def svc(
    name: str,
    *,
    canary: str | None = None,
    percent: str | None = None,
    app: str = APP,
    ports: tuple[ServicePort, ...] = (HTTP,),
    type_: str = "ClusterIP",
    namespace: str = "demo",
) -> Service:
    values = {ann.APP: app, ann.CANARY: canary, ann.PERCENT: percent}
    return Service(
        namespace=namespace,
        name=name,
        uid="uid-" + name,
        resource_version="1",
        annotations=MappingProxyType({k: v for k, v in values.items() if v is not None}),
        ports=ports,
        type=type_,
    )


def up(name: str, port: int = 80) -> Upstream:
    return Upstream("demo", name, f"{name}.demo.svc.cluster.local", port)


def plan(members, observed=None, **kwargs) -> AppPlan:
    return plan_app(APP, members, observed, DOMAIN, **kwargs)


def perfect_gateway(plan_: AppPlan, before: AppState | None) -> AppState | None:
    """What a gateway that does exactly as asked holds after `plan_` is carried out."""
    if plan_.action == "apply":
        spec = plan_.spec
        return AppState(
            spec.name, True, spec.stable, spec.canary, spec.weight if spec.canary else 0
        )
    if plan_.action == "delete":
        return None
    return before


def reasons(items) -> list[tuple[str, str]]:
    return [(item.service_key, item.reason) for item in items]


def phases(plan_: AppPlan) -> dict[str, tuple[str, int | None, str]]:
    return {key: (doc.role, doc.desired_weight, doc.phase) for key, doc in plan_.statuses.items()}


def owned(
    stable: Upstream | None, canary: Upstream | None = None, weight: int = 0, **kwargs
) -> AppState:
    return AppState(APP, True, stable, canary, weight, **kwargs)


# --- the seed walk-through ------------------------------------------------------------------


def step(members, state):
    """Plan, check that re-planning the result is a no-op, and return the plan and the new state."""
    result = plan(members, state)
    state = perfect_gateway(result, state)
    again = plan(members, state)
    assert (again.action, again.notices, again.warnings) == ("noop", [], [])
    return result, state


def test_seed_walk_through():
    v1 = svc("error-page-v1")
    first, state = step([v1], None)
    assert (first.action, first.spec) == ("apply", AppSpec(APP, up("error-page-v1")))
    assert reasons(first.notices) == [("demo/error-page-v1", "Published")]
    assert phases(first) == {"demo/error-page-v1": ("stable", 100, "Stable")}

    canary10, state = step([v1, svc("error-page-v2", canary="true", percent="10")], state)
    assert canary10.spec == AppSpec(APP, up("error-page-v1"), up("error-page-v2"), 10)
    assert reasons(canary10.notices) == [("demo/error-page-v2", "CanaryAdded")]
    assert phases(canary10) == {
        "demo/error-page-v1": ("stable", 90, "Stable"),
        "demo/error-page-v2": ("canary", 10, "Canary"),
    }

    paused, state = step([v1, svc("error-page-v2", canary="true", percent="0")], state)
    assert paused.spec.weight == 0 and paused.spec.canary == up("error-page-v2")
    assert reasons(paused.notices) == [("demo/error-page-v2", "CanaryWeightChanged")]
    assert "10 % -> 0 %" in paused.notices[0].message

    full, state = step([v1, svc("error-page-v2", canary="true", percent="100")], state)
    assert full.spec.weight == 100
    assert reasons(full.notices) == [("demo/error-page-v2", "CanaryWeightChanged")]

    v2 = svc("error-page-v2", canary="true", percent="100")
    promoted, state = step([v2], state)
    assert (promoted.action, promoted.spec) == ("apply", AppSpec(APP, up("error-page-v2")))
    assert reasons(promoted.notices) == [("demo/error-page-v2", "Promoted")]
    assert phases(promoted) == {"demo/error-page-v2": ("stable", 100, "Promoted")}

    v3, state = step([v2, svc("error-page-v3", canary="true", percent="50")], state)
    assert v3.spec == AppSpec(APP, up("error-page-v2"), up("error-page-v3"), 50)
    assert reasons(v3.notices) == [("demo/error-page-v3", "CanaryAdded")]
    assert phases(v3) == {
        "demo/error-page-v2": ("stable", 50, "Stable"),
        "demo/error-page-v3": ("canary", 50, "Canary"),
    }

    gone, state = step([], state)
    assert (gone.action, gone.spec, gone.statuses) == ("delete", None, {})
    assert reasons(gone.notices) == [("", "CleanedUp")]
    assert state is None


def test_restart_with_a_running_canary_changes_nothing():
    running = owned(up("v1"), up("v2"), 25)
    result = plan([svc("v1"), svc("v2", canary="true", percent="25")], running)
    assert (result.action, result.notices, result.warnings) == ("noop", [], [])
    assert result.spec == AppSpec(APP, up("v1"), up("v2"), 25)
    assert phases(result) == {
        "demo/v1": ("stable", 75, "Stable"),
        "demo/v2": ("canary", 25, "Canary"),
    }


def test_publishing_stable_and_canary_at_once_announces_both():
    result = plan([svc("v1"), svc("v2", canary="true", percent="5")])
    assert reasons(result.notices) == [("demo/v1", "Published"), ("demo/v2", "CanaryAdded")]


def test_canary_left_removes_its_rule():
    result = plan([svc("v1")], owned(up("v1"), up("v2"), 10))
    assert (result.action, result.spec) == ("apply", AppSpec(APP, up("v1")))
    assert reasons(result.notices) == [("demo/v1", "CanaryRemoved")]


def test_canary_replaced_by_another():
    result = plan([svc("v1"), svc("v3", canary="true", percent="5")], owned(up("v1"), up("v2"), 10))
    assert result.spec == AppSpec(APP, up("v1"), up("v3"), 5)
    assert reasons(result.notices) == [("demo/v1", "CanaryRemoved"), ("demo/v3", "CanaryAdded")]


def test_stable_replaced_by_another_service():
    result = plan([svc("v3")], owned(up("v1")))
    assert result.spec == AppSpec(APP, up("v3"))
    assert reasons(result.notices) == [("demo/v3", "StableChanged")]


def test_port_change_retargets_the_upstream():
    result = plan([svc("v1", ports=(ServicePort("http", 8080),))], owned(up("v1")))
    assert result.spec.stable == up("v1", 8080)
    assert reasons(result.notices) == [("demo/v1", "UpstreamChanged")]


def test_gateway_drift_is_corrected():
    result = plan([svc("v1")], owned(up("v1"), conforms=False))
    assert result.action == "apply"
    assert reasons(result.notices) == [("demo/v1", "DriftCorrected")]


def test_canary_weight_ignored_in_gateway_when_no_canary_is_wanted():
    assert plan([svc("v1")], owned(up("v1"), None, 0)).action == "noop"


def test_weight_override_replaces_the_percentage():
    result = plan(
        [svc("v1"), svc("v2", canary="true", percent="10")],
        owned(up("v1"), up("v2"), 10),
        weight_override=25,
    )
    assert result.spec.weight == 25
    assert reasons(result.notices) == [("demo/v2", "CanaryWeightChanged")]


@pytest.mark.parametrize("weight", [-1, 101])
def test_weight_override_out_of_range_is_a_programming_error(weight):
    with pytest.raises(ValueError):
        plan([svc("v1")], weight_override=weight)


# --- promotion and a missing stable ---------------------------------------------------------


def test_stable_leaving_below_100_holds_and_warns():
    result = plan([svc("v2", canary="true", percent="30")], owned(up("v1"), up("v2"), 30))
    assert (result.action, result.spec, result.notices) == ("hold", None, [])
    [warning] = result.warnings
    assert (warning.service_key, warning.reason) == ("demo/v2", "StableMissing")
    assert (
        "30 %" in warning.message
        and "set api7.cloud/published-service-canary-percentage=100" in warning.message
    )
    assert phases(result) == {"demo/v2": ("canary", None, "Holding")}


def test_asking_100_after_the_stable_left_promotes():
    result = plan([svc("v2", canary="true", percent="100")], owned(up("v1"), up("v2"), 30))
    assert result.spec == AppSpec(APP, up("v2"))
    assert reasons(result.notices) == [("demo/v2", "Promoted")]


def test_automation_asking_100_after_the_stable_left_promotes():
    result = plan(
        [svc("v2", canary="true", percent="30")], owned(up("v1"), up("v2"), 30), weight_override=100
    )
    assert result.spec == AppSpec(APP, up("v2"))


def test_promotion_follows_the_gateway_weight_not_a_later_lower_percentage():
    result = plan([svc("v2", canary="true", percent="40")], owned(up("v1"), up("v2"), 100))
    assert result.spec == AppSpec(APP, up("v2"))


@pytest.mark.parametrize("observed", [None, owned(up("v1")), owned(up("v1"), up("v9"), 100)])
def test_a_canary_with_no_stable_holds_and_warns(observed):
    result = plan([svc("v2", canary="true", percent="100")], observed)
    assert (result.action, result.spec) == ("hold", None)
    [warning] = result.warnings
    assert (warning.service_key, warning.reason) == ("demo/v2", "StableMissing")
    assert "has no stable" in warning.message


def test_promoted_canary_stays_stable_when_its_flag_is_removed():
    assert plan([svc("v2")], owned(up("v2"))).action == "noop"


# --- bad input ------------------------------------------------------------------------------

BAD_MEMBERS = {
    "percentage abc": (
        svc("v2", canary="true", percent="abc"),
        ann.PERCENT,
        "abc",
        "integers 0-100",
    ),
    "percentage 150": (
        svc("v2", canary="true", percent="150"),
        ann.PERCENT,
        "150",
        "integers 0-100",
    ),
    "percentage -1": (svc("v2", canary="true", percent="-1"), ann.PERCENT, "-1", "integers 0-100"),
    "percentage 10.5": (
        svc("v2", canary="true", percent="10.5"),
        ann.PERCENT,
        "10.5",
        "integers 0-100",
    ),
    "canary flag yes": (svc("v2", canary="yes", percent="10"), ann.CANARY, "yes", "true or false"),
    "no ports": (svc("v2", canary="true", ports=()), ann.APP, APP, "at least one TCP port"),
    "ExternalName": (
        svc("v2", canary="true", ports=(), type_="ExternalName"),
        ann.APP,
        APP,
        "Services of type ClusterIP, NodePort or LoadBalancer",
    ),
}


@pytest.mark.parametrize(
    "bad, annotation, value, accepted", BAD_MEMBERS.values(), ids=BAD_MEMBERS.keys()
)
def test_invalid_member_holds_the_app_and_warns_naming_annotation_value_and_accepted(
    bad, annotation, value, accepted
):
    running = owned(up("v1"), up("v2"), 10)
    result = plan([svc("v1"), bad], running)
    assert (result.action, result.spec, result.notices) == ("hold", None, [])
    [warning] = result.warnings
    assert (warning.service_key, warning.reason) == ("demo/v2", "InvalidAnnotation")
    assert f"annotation {annotation}={json.dumps(value)}" in warning.message
    assert accepted in warning.message
    assert phases(result) == {
        "demo/v1": ("none", None, "Holding"),
        "demo/v2": ("none", None, "Invalid"),
    }
    assert "demo/v2" in result.statuses["demo/v1"].message


def test_every_problem_of_a_member_is_warned():
    result = plan([svc("v2", canary="yes", percent="abc")])
    assert reasons(result.warnings) == [("demo/v2", "InvalidAnnotation")] * 2
    assert result.statuses["demo/v2"].message.count("accepted values are") == 2


@pytest.mark.parametrize("app", ["", "Error_Page"])
def test_invalid_app_name_holds_and_warns_every_member(app):
    members = [svc("v1", app=app), svc("v2", app=app, canary="true")]
    result = plan_app(app, members, None, DOMAIN)
    assert result.action == "hold"
    assert reasons(result.warnings) == [
        ("demo/v1", "InvalidAnnotation"),
        ("demo/v2", "InvalidAnnotation"),
    ]
    assert all(ann.APP in w.message and "DNS-1123" in w.message for w in result.warnings)


def test_two_stables_hold_and_warn_both_naming_each_other():
    result = plan([svc("v1"), svc("v2"), svc("v3", canary="true", percent="5")], owned(up("v1")))
    assert (result.action, result.spec) == ("hold", None)
    assert reasons(result.warnings) == [("demo/v1", "Conflict"), ("demo/v2", "Conflict")]
    assert all("demo/v1 and demo/v2" in w.message for w in result.warnings)
    assert phases(result) == {
        "demo/v1": ("none", None, "Conflict"),
        "demo/v2": ("none", None, "Conflict"),
        "demo/v3": ("none", None, "Holding"),
    }


def test_two_canaries_hold_and_warn_both_naming_each_other():
    members = [
        svc("v1"),
        svc("v2", canary="true", percent="5"),
        svc("v3", canary="true", percent="5"),
    ]
    result = plan(members, owned(up("v1"), up("v2"), 5))
    assert (result.action, result.spec) == ("hold", None)
    assert reasons(result.warnings) == [("demo/v2", "Conflict"), ("demo/v3", "Conflict")]
    assert all("demo/v2 and demo/v3" in w.message for w in result.warnings)
    assert result.statuses["demo/v1"].phase == "Holding"


def test_foreign_app_of_the_same_name_is_left_alone_with_a_warning_on_every_member():
    foreign = AppState(APP, False, up("legacy"), None, 0)
    result = plan([svc("v1"), svc("v2", canary="true")], foreign)
    assert (result.action, result.spec) == ("hold", None)
    assert reasons(result.warnings) == [("demo/v1", "Conflict"), ("demo/v2", "Conflict")]
    assert result.warnings[0].message == (
        "an application named error-page already exists in the gateway and "
        "is not managed by canaryctl; leaving it alone"
    )
    assert {doc.phase for doc in result.statuses.values()} == {"Conflict"}


def test_foreign_app_and_invalid_member_are_both_reported():
    result = plan([svc("v1", canary="yes")], AppState(APP, False, up("legacy"), None, 0))
    assert reasons(result.warnings) == [("demo/v1", "InvalidAnnotation"), ("demo/v1", "Conflict")]
    assert result.statuses["demo/v1"].phase == "Invalid"


@pytest.mark.parametrize("observed", [None, AppState(APP, False, up("legacy"), None, 0)])
def test_no_members_and_nothing_of_ours_is_a_noop(observed):
    assert plan([], observed) == AppPlan(APP, "noop", None, [], [], {})


def test_member_order_does_not_matter():
    members = [svc("v1"), svc("v2", canary="true", percent="10"), svc("v3", canary="yes")]
    assert plan(members) == plan(list(reversed(members)))


# --- properties -----------------------------------------------------------------------------

NAMES = ["v1", "v2", "v3"]
PORT_SETS = [
    (HTTP,),
    (),
    (ServicePort("web", 8080), ServicePort("metrics", 9090)),
    (ServicePort("http", 8000), ServicePort("metrics", 9090)),
]
members_strategy = st.lists(
    st.builds(
        lambda name, canary, percent, ports: svc(name, canary=canary, percent=percent, ports=ports),
        st.sampled_from(NAMES),
        st.sampled_from([None, "true", "false", "yes"]),
        st.one_of(st.none(), st.integers(0, 100).map(str), st.sampled_from(["abc", "150", "-1"])),
        st.sampled_from(PORT_SETS),
    ),
    max_size=3,
    unique_by=lambda view: view.name,
)
upstreams = st.one_of(
    st.none(), st.sampled_from([up(n) for n in NAMES] + [up("v1", 8000), up("legacy")])
)
observed_strategy = st.one_of(
    st.none(),
    st.builds(
        AppState,
        st.just(APP),
        st.booleans(),
        upstreams,
        upstreams,
        st.integers(0, 100),
        st.booleans(),
    ),
)
overrides = st.one_of(st.none(), st.integers(0, 100))


def any_invalid(members) -> bool:
    return any(isinstance(parse_member(view, DOMAIN), list) for view in members)


@settings(max_examples=400, deadline=None)
@given(members=members_strategy, observed=observed_strategy, override=overrides)
def test_plans_are_deterministic_and_safe(members, observed, override):
    result = plan(members, observed, weight_override=override)
    assert result == plan(list(reversed(members)), observed, weight_override=override)
    assert set(result.statuses) == {view.key for view in members}
    if members:
        assert result.action != "delete"
    if any_invalid(members):
        assert result.action == "hold"
    if observed is not None and not observed.owned:
        assert result.action in ("noop", "hold")
    if result.action == "hold":
        assert result.spec is None and result.warnings and not result.notices
    if result.action == "apply" or (result.action == "noop" and members):
        assert result.spec is not None and 0 <= result.spec.weight <= 100 and not result.warnings
    if result.action != "apply":
        assert [n.reason for n in result.notices] in ([], ["CleanedUp"])


@settings(max_examples=400, deadline=None)
@given(members=members_strategy, observed=observed_strategy, override=overrides)
def test_a_perfect_gateway_makes_the_next_plan_a_noop(members, observed, override):
    first = plan(members, observed, weight_override=override)
    state = perfect_gateway(first, observed)
    second = plan(members, state, weight_override=override)
    if first.action in ("apply", "delete", "noop"):
        assert (second.action, second.notices, second.spec) == ("noop", [], first.spec)
    else:
        assert second == first
    assert second.statuses == first.statuses


@given(members=members_strategy, observed=observed_strategy)
def test_every_applied_plan_announces_what_it_changes(members, observed):
    result = plan(members, observed)
    if result.action == "apply":
        assert result.notices
        keys = {view.key for view in members}
        assert all(notice.service_key in keys for notice in result.notices)
