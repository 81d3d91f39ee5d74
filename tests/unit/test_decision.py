"""The decision for one application: the seed walk-through, every hold, releases, and properties.

`decide` is pure, so each case is its inputs (member Services, the gateway's state, the time,
an analysis check) and the outcome it must give.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canaryctl import annotations as ann
from canaryctl.annotations import Invalid, parse_member
from canaryctl.decision import decide, due_check, read
from canaryctl.gateway.model import AppSpec, AppState, Upstream
from canaryctl.objects import Service, ServicePort
from canaryctl.outcome import AppInputs, Outcome
from canaryctl.release.config import STEPS
from canaryctl.release.state import CheckResult, ReleaseState
from canaryctl.status import MemberStatus

APP = "error-page"
DOMAIN = "cluster.local"
HTTP = ServicePort("http", 80)
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def svc(
    name: str,
    *,
    canary: str | None = None,
    percent: str | None = None,
    app: str | None = APP,
    ports: tuple[ServicePort, ...] = (HTTP,),
    type_: str = "ClusterIP",
    namespace: str = "demo",
    extra: dict[str, str] | None = None,
) -> Service:
    values = {ann.APP: app, ann.CANARY: canary, ann.PERCENT: percent, **(extra or {})}
    return Service(
        namespace=namespace,
        name=name,
        uid="uid-" + name,
        resource_version="1",
        annotations=MappingProxyType({k: v for k, v in values.items() if v is not None}),
        ports=ports,
        type=type_,
    )


def spec(stable: Upstream, canary: Upstream | None = None, weight: int = 0) -> AppSpec:
    """What the gateway should hold for the app owned by namespace `demo`."""
    return AppSpec(APP, stable, canary, weight, owner="demo")


def up(name: str, port: int = 80) -> Upstream:
    return Upstream("demo", name, f"{name}.demo.svc.cluster.local", port)


def plan(members, observed=None, *, former=(), check=None, now=NOW, app=APP) -> Outcome:
    inputs = AppInputs(
        app, tuple(members), observed, now, former_members=tuple(former), check=check
    )
    return decide(inputs)


def action(outcome: Outcome) -> str:
    """The gateway action, with "keep" split into "hold" (something is wrong) and "noop"."""
    if outcome.gateway == "keep":
        return "hold" if outcome.held and outcome.warnings else "noop"
    return outcome.gateway


def perfect_gateway(outcome: Outcome, before: AppState | None) -> AppState | None:
    """What a gateway that does exactly as asked holds after `outcome` is carried out."""
    if outcome.gateway == "apply":
        spec = outcome.spec
        weight = spec.weight if spec.canary else 0
        return AppState(spec.name, True, spec.stable, spec.canary, weight, owner=spec.owner)
    if outcome.gateway == "delete":
        return None
    return before


def with_statuses(members, outcome: Outcome) -> list[Service]:
    """The members as they are after `outcome`'s statuses were written on them."""
    written = []
    for service in members:
        annotations = dict(service.annotations)
        if service.key in outcome.statuses:
            status = outcome.statuses[service.key]
            annotations.pop(ann.STATUS, None)
            if status is not None:
                annotations[ann.STATUS] = status.render(NOW)
        written.append(replace(service, annotations=MappingProxyType(annotations)))
    return written


def reasons(items) -> list[tuple[str, str]]:
    return [(item.service_key, item.reason) for item in items]


def phases(outcome: Outcome) -> dict[str, tuple[str, int | None, str]]:
    return {
        key: (doc.role, doc.desired_weight, doc.phase)
        for key, doc in outcome.statuses.items()
        if doc is not None
    }


def owned(
    stable: Upstream | None, canary: Upstream | None = None, weight: int = 0, **kwargs
) -> AppState:
    return AppState(APP, True, stable, canary, weight, **{"owner": "demo", **kwargs})


# --- the seed walk-through ------------------------------------------------------------------


def step(members, state, former=()):
    """Decide, check that deciding again on the result is a no-op, return both."""
    result = plan(members, state, former=former)
    state = perfect_gateway(result, state)
    again = plan(members, state)
    assert (action(again), again.notices, again.warnings) == ("noop", (), ())
    return result, state


def test_seed_walk_through():
    v1 = svc("error-page-v1")
    first, state = step([v1], None)
    assert (action(first), first.spec) == ("apply", spec(up("error-page-v1")))
    assert reasons(first.notices) == [("demo/error-page-v1", "Published")]
    assert phases(first) == {"demo/error-page-v1": ("stable", 100, "Stable")}

    canary10, state = step([v1, svc("error-page-v2", canary="true", percent="10")], state)
    assert canary10.spec == spec(up("error-page-v1"), up("error-page-v2"), 10)
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
    assert (action(promoted), promoted.spec) == ("apply", spec(up("error-page-v2")))
    assert reasons(promoted.notices) == [("demo/error-page-v2", "Promoted")]
    assert phases(promoted) == {"demo/error-page-v2": ("stable", 100, "Promoted")}

    v3, state = step([v2, svc("error-page-v3", canary="true", percent="50")], state)
    assert v3.spec == spec(up("error-page-v2"), up("error-page-v3"), 50)
    assert reasons(v3.notices) == [("demo/error-page-v3", "CanaryAdded")]
    assert phases(v3) == {
        "demo/error-page-v2": ("stable", 50, "Stable"),
        "demo/error-page-v3": ("canary", 50, "Canary"),
    }

    left = [svc("error-page-v2", app=None), svc("error-page-v3", app=None)]
    gone, state = step([], state, former=left)
    assert (action(gone), gone.spec) == ("delete", None)
    assert gone.statuses == {"demo/error-page-v2": None, "demo/error-page-v3": None}
    assert reasons(gone.notices) == [
        ("demo/error-page-v2", "CleanedUp"),
        ("demo/error-page-v3", "CleanedUp"),
    ]
    assert state is None


def test_restart_with_a_running_canary_changes_nothing():
    running = owned(up("v1"), up("v2"), 25)
    result = plan([svc("v1"), svc("v2", canary="true", percent="25")], running)
    assert (action(result), result.notices, result.warnings) == ("noop", (), ())
    assert result.spec == spec(up("v1"), up("v2"), 25)
    assert phases(result) == {
        "demo/v1": ("stable", 75, "Stable"),
        "demo/v2": ("canary", 25, "Canary"),
    }


def test_publishing_stable_and_canary_at_once_announces_both():
    result = plan([svc("v1"), svc("v2", canary="true", percent="5")])
    assert reasons(result.notices) == [("demo/v1", "Published"), ("demo/v2", "CanaryAdded")]


def test_canary_left_removes_its_rule():
    result = plan([svc("v1")], owned(up("v1"), up("v2"), 10))
    assert (action(result), result.spec) == ("apply", spec(up("v1")))
    assert reasons(result.notices) == [("demo/v1", "CanaryRemoved")]


def test_canary_replaced_by_another():
    result = plan([svc("v1"), svc("v3", canary="true", percent="5")], owned(up("v1"), up("v2"), 10))
    assert result.spec == spec(up("v1"), up("v3"), 5)
    assert reasons(result.notices) == [("demo/v1", "CanaryRemoved"), ("demo/v3", "CanaryAdded")]


def test_stable_replaced_by_another_service():
    result = plan([svc("v3")], owned(up("v1")))
    assert result.spec == spec(up("v3"))
    assert reasons(result.notices) == [("demo/v3", "StableChanged")]


def test_port_change_retargets_the_upstream():
    result = plan([svc("v1", ports=(ServicePort("http", 8080),))], owned(up("v1")))
    assert result.spec.stable == up("v1", 8080)
    assert reasons(result.notices) == [("demo/v1", "UpstreamChanged")]


def test_gateway_drift_is_corrected():
    result = plan([svc("v1")], owned(up("v1"), conforms=False))
    assert action(result) == "apply"
    assert reasons(result.notices) == [("demo/v1", "DriftCorrected")]


def test_canary_weight_ignored_in_gateway_when_no_canary_is_wanted():
    assert action(plan([svc("v1")], owned(up("v1"), None, 0))) == "noop"


def automated(name: str, steps: str, release: ReleaseState | None, percent: str = "10") -> Service:
    """A canary with `canary-steps` and (unless None) a persisted release state."""
    extra = {STEPS: steps}
    if release is not None:
        status = MemberStatus("canary", APP, release.weight, "Canary", "", release=release)
        extra[ann.STATUS] = status.render(NOW)
    return svc(name, canary="true", percent=percent, extra=extra)


def running(weight: int, started: datetime = NOW, phase: str = "Progressing") -> ReleaseState:
    return ReleaseState(phase, 0, weight, started, percent_seen=10)  # type: ignore[arg-type]


def test_an_automated_release_chooses_the_weight_not_the_percentage():
    canary = automated("v2", "25,50", running(25))
    result = plan([svc("v1"), canary], owned(up("v1"), up("v2"), 10))
    assert result.spec.weight == 25 and result.verify_weight
    assert reasons(result.notices) == [("demo/v2", "CanaryWeightChanged")]
    assert result.statuses["demo/v2"].release == running(25)
    assert result.requeue_after == 60.0  # the default step interval, counted from the step start


def test_a_release_weight_outside_0_to_100_never_reaches_the_gateway():
    canary = automated("v2", "25,50", running(25))
    broken = json.loads(canary.annotations[ann.STATUS])
    broken["release"]["weight"] = 101
    tampered = svc(
        "v2", canary="true", percent="10", extra={STEPS: "25,50", ann.STATUS: json.dumps(broken)}
    )
    result = plan([svc("v1"), tampered], owned(up("v1"), up("v2"), 10))
    # an unreadable release state is no state: the release starts over at its first step
    assert result.spec.weight == 25 and result.statuses["demo/v2"].release.step_started_at == NOW


def test_a_due_check_is_asked_for_and_its_result_decides_the_step():
    canary = automated("v2", "25,50", running(25, started=datetime(2026, 6, 1, 11, 58, tzinfo=UTC)))
    members = [svc("v1"), canary]
    state = owned(up("v1"), up("v2"), 25)
    request = due_check(AppInputs(APP, tuple(members), state, NOW))
    assert request is not None and request.window_s == 120.0
    assert (request.canary.service, request.stable.service) == ("v2", "v1")
    assert request.canary.target == "v2.demo.svc.cluster.local:80"
    passed = plan(members, state, check=CheckResult("pass", "error rate 0.0 % <= 1.0 %", 100))
    assert passed.spec.weight == 50
    assert [e.reason for e in passed.notices] == ["CanaryWeightChanged", "StepAdvanced"]


def test_no_check_is_due_for_a_manual_canary_or_on_hold():
    assert due_check(AppInputs(APP, (svc("v1"), svc("v2", canary="true")), None, NOW)) is None
    bad = automated("v2", "25,50", running(25, started=datetime(2026, 6, 1, 11, 0, tzinfo=UTC)))
    held = (svc("v1"), svc("v3"), bad)  # two stables: on hold, nothing to analyse
    assert due_check(AppInputs(APP, held, None, NOW)) is None


def test_invalid_release_settings_hold_and_keep_the_release_state():
    canary = automated("v2", "25,fifty", running(25))
    result = plan([svc("v1"), canary], owned(up("v1"), up("v2"), 25))
    assert (action(result), result.spec) == ("hold", None)
    assert reasons(result.warnings) == [("demo/v2", "InvalidAnnotation")]
    assert STEPS in result.warnings[0].message and '"25,fifty"' in result.warnings[0].message
    assert result.statuses["demo/v2"].release == running(25)


# --- promotion and a missing stable ---------------------------------------------------------


def test_stable_leaving_below_100_holds_and_warns():
    result = plan([svc("v2", canary="true", percent="30")], owned(up("v1"), up("v2"), 30))
    assert (action(result), result.spec, result.notices) == ("hold", None, ())
    [warning] = result.warnings
    assert (warning.service_key, warning.reason) == ("demo/v2", "StableMissing")
    assert (
        "30 %" in warning.message
        and "set api7.cloud/published-service-canary-percentage=100" in warning.message
    )
    assert phases(result) == {"demo/v2": ("canary", None, "Holding")}


def test_a_kept_route_the_implementation_rejects_is_surfaced_while_the_stable_is_missing():
    problem = "traefik.io/gateway-controller reports ResolvedRefs=False (BackendNotFound)"
    observed = owned(up("v1"), up("v2"), 30, problem=problem, problem_reason="BackendNotFound")
    result = plan([svc("v2", canary="true", percent="30")], observed)
    assert action(result) == "hold"
    assert reasons(result.warnings) == [
        ("demo/v2", "StableMissing"),
        ("demo/v2", "RouteNotAccepted"),
    ]
    assert problem in result.warnings[1].message
    status = result.statuses["demo/v2"]
    assert status is not None and "left while canary" in status.message
    assert problem in status.message


def test_asking_100_after_the_stable_left_promotes():
    result = plan([svc("v2", canary="true", percent="100")], owned(up("v1"), up("v2"), 30))
    assert result.spec == spec(up("v2"))
    assert reasons(result.notices) == [("demo/v2", "Promoted")]


def test_an_automated_release_that_reached_100_is_promoted_when_the_stable_leaves():
    canary = automated("v2", "25,50", running(100, phase="Succeeded"), percent="30")
    result = plan([canary], owned(up("v1"), up("v2"), 100))
    assert result.spec == spec(up("v2"))


def test_promotion_follows_the_gateway_weight_not_a_later_lower_percentage():
    result = plan([svc("v2", canary="true", percent="40")], owned(up("v1"), up("v2"), 100))
    assert result.spec == spec(up("v2"))


@pytest.mark.parametrize("observed", [None, owned(up("v1")), owned(up("v1"), up("v9"), 100)])
def test_a_canary_with_no_stable_holds_and_warns(observed):
    result = plan([svc("v2", canary="true", percent="100")], observed)
    assert (action(result), result.spec) == ("hold", None)
    [warning] = result.warnings
    assert (warning.service_key, warning.reason) == ("demo/v2", "StableMissing")
    assert "has no stable" in warning.message


def test_promoted_canary_stays_stable_when_its_flag_is_removed():
    assert action(plan([svc("v2")], owned(up("v2")))) == "noop"


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
    assert (action(result), result.spec, result.notices) == ("hold", None, ())
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
    result = plan(members, app=app)
    assert action(result) == "hold"
    assert reasons(result.warnings) == [
        ("demo/v1", "InvalidAnnotation"),
        ("demo/v2", "InvalidAnnotation"),
    ]
    assert all(ann.APP in w.message and "DNS-1123" in w.message for w in result.warnings)


def test_two_stables_hold_and_warn_both_naming_each_other():
    result = plan([svc("v1"), svc("v2"), svc("v3", canary="true", percent="5")], owned(up("v1")))
    assert (action(result), result.spec) == ("hold", None)
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
    assert (action(result), result.spec) == ("hold", None)
    assert reasons(result.warnings) == [("demo/v2", "Conflict"), ("demo/v3", "Conflict")]
    assert all("demo/v2 and demo/v3" in w.message for w in result.warnings)
    assert result.statuses["demo/v1"].phase == "Holding"


def test_foreign_app_of_the_same_name_is_left_alone_with_a_warning_on_every_member():
    foreign = AppState(APP, False, up("legacy"), None, 0)
    result = plan([svc("v1"), svc("v2", canary="true")], foreign)
    assert (action(result), result.spec) == ("hold", None)
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
    assert plan([], observed) == Outcome(APP, "keep")


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
checks = st.one_of(
    st.none(), st.sampled_from([CheckResult("pass", "ok", 50), CheckResult("fail", "bad", 50)])
)
members_strategy = st.lists(
    st.builds(
        lambda name, canary, percent, ports, steps: svc(
            name, canary=canary, percent=percent, ports=ports, extra={STEPS: steps} if steps else {}
        ),
        st.sampled_from(NAMES),
        st.sampled_from([None, "true", "false", "yes"]),
        st.one_of(st.none(), st.integers(0, 100).map(str), st.sampled_from(["abc", "150", "-1"])),
        st.sampled_from(PORT_SETS),
        st.sampled_from([None, "10,50", "oops"]),
    ),
    max_size=3,
    unique_by=lambda service: service.name,
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


def any_invalid(members) -> bool:
    return any(isinstance(parse_member(service, DOMAIN), Invalid) for service in members)


@settings(max_examples=400, deadline=None)
@given(members=members_strategy, observed=observed_strategy, check=checks)
def test_outcomes_are_deterministic_and_safe(members, observed, check):
    result = plan(members, observed, check=check)
    assert result == plan(list(reversed(members)), observed, check=check)
    assert set(result.statuses) == {service.key for service in members}
    if members:
        assert action(result) != "delete"
    if any_invalid(members):
        assert action(result) == "hold"
    if observed is not None and not observed.owned:
        assert action(result) in ("noop", "hold")
    if action(result) == "hold":
        assert result.spec is None and result.warnings and not result.notices and result.held
    if action(result) == "apply" or (action(result) == "noop" and members):
        assert result.spec is not None and 0 <= result.spec.weight <= 100 and not result.warnings
    if action(result) != "apply":
        assert [n.reason for n in result.notices] in ([], ["CleanedUp"])


@settings(max_examples=300, deadline=None)
@given(members=members_strategy, observed=observed_strategy, check=checks)
def test_a_reading_made_before_the_check_decides_as_one_made_after(members, observed, check):
    """The reconciler reads the members once, before a check is made (the due check needs the
    reading), and hands that reading to decide: nothing in it may depend on the check."""
    inputs = AppInputs(APP, tuple(members), observed, NOW)
    checked = replace(inputs, check=check)
    assert read(inputs) == read(checked)
    assert decide(checked, read(inputs)) == decide(checked, read(checked)) == decide(checked)
    assert due_check(inputs, read(inputs)) == due_check(inputs)


@settings(max_examples=400, deadline=None)
@given(members=members_strategy, observed=observed_strategy)
def test_a_perfect_gateway_makes_the_next_outcome_a_noop(members, observed):
    first = plan(members, observed)
    state = perfect_gateway(first, observed)
    second = plan(with_statuses(members, first), state)
    if action(first) in ("apply", "delete", "noop"):
        assert (action(second), second.notices, second.spec) == ("noop", (), first.spec)
    else:
        assert second == first
    assert second.statuses == first.statuses


@given(members=members_strategy, observed=observed_strategy)
def test_every_write_announces_what_it_changes(members, observed):
    result = plan(members, observed)
    if action(result) == "apply":
        assert result.notices
        keys = {service.key for service in members}
        assert all(notice.service_key in keys for notice in result.notices)
