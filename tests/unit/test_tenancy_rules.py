"""Tenancy, decided: no namespace can take another's traffic, and none can block it.

Each case is a row of the attack table: Services from other namespaces claiming an application,
squatting a name, freezing an app with a second stable, controllers with different scopes sharing
a gateway; plus the owner's grants, name bindings and bounds on echoed values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

from canaryctl import annotations as ann
from canaryctl.decision import decide
from canaryctl.gateway.model import AppSpec, AppState, Upstream
from canaryctl.objects import Service, ServicePort
from canaryctl.outcome import AppInputs, Outcome
from canaryctl.tenancy import BINDING, GRANT

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def svc(key: str, created: str = "2026-01-01T00:00:00Z", **annotations: str) -> Service:
    namespace, name = key.split("/")
    return Service(
        namespace,
        name,
        "uid-" + key,
        "1",
        MappingProxyType(annotations),
        (ServicePort("http", 80),),
        created=created,
    )


def stable(key: str, app: str = "shop", **more: str) -> Service:
    return svc(key, **{ann.APP: app}, **more)


def canary(key: str, percent: str, app: str = "shop", **more: str) -> Service:
    return svc(key, **{ann.APP: app, ann.CANARY: "true", ann.PERCENT: percent}, **more)


def up(key: str) -> Upstream:
    namespace, name = key.split("/")
    return Upstream(namespace, name, f"{name}.{namespace}.svc.cluster.local", 80)


def owned(stable_key: str, canary_key: str | None = None, weight: int = 0, owner="prod"):
    return AppState(
        "shop", True, up(stable_key), canary_key and up(canary_key), weight, owner=owner
    )


def decide_for(members, observed=None, app="shop", **options) -> Outcome:
    return decide(AppInputs(app, tuple(members), observed, NOW, **options))


def warned(outcome: Outcome) -> set[tuple[str, str]]:
    return {(w.service_key, w.reason) for w in outcome.warnings}


def test_an_intruder_canary_gets_no_traffic_and_the_owner_is_told():
    # evil/x publishes shop as a canary at 100 % while prod/web-v1 owns shop
    outcome = decide_for([stable("prod/web-v1"), canary("evil/x", "100")], owned("prod/web-v1"))
    assert outcome.gateway == "keep" and outcome.spec == AppSpec(
        "shop", up("prod/web-v1"), owner="prod"
    )
    assert warned(outcome) == {("evil/x", "Forbidden"), ("prod/web-v1", "ClaimRefused")}
    refused = next(w for w in outcome.warnings if w.reason == "Forbidden")
    assert "belongs to namespace prod" in refused.message and GRANT in refused.message
    told = next(w for w in outcome.warnings if w.reason == "ClaimRefused")
    assert "evil/x" in told.message
    assert outcome.statuses["evil/x"].phase == "Forbidden"
    assert outcome.statuses["prod/web-v1"].message.endswith("receives all requests")


def test_when_the_owner_leaves_the_intruder_is_not_promoted():
    # the gateway routed only prod's stable; prod deletes it while evil/x claims 100 %
    outcome = decide_for([canary("evil/x", "100")], owned("prod/web-v1"))
    assert outcome.gateway == "delete"  # prod's application goes away, as prod asked
    assert outcome.requeue_after is not None  # the name is free: look again at once
    after = decide_for([canary("evil/x", "100")], None)  # evil's own app now: a lone canary
    assert after.gateway == "keep" and after.held and after.spec is None
    assert ("evil/x", "StableMissing") in warned(after)


def test_first_come_owns_a_new_name_unless_names_are_bound():
    squat = stable("evil/squat", app="bank", created="2026-01-01T00:00:00Z")
    real = stable("prod/bank-v1", app="bank", created="2026-01-02T00:00:00Z")
    first_come = decide_for([squat, real], app="bank")
    assert first_come.spec.owner == "evil"  # without bindings the first publisher wins...
    bound = decide_for([squat, real], app="bank", bindings={"prod": ("bank", "bank-*")})
    assert bound.spec == AppSpec("bank", up("prod/bank-v1"), owner="prod")  # ...with them, not
    assert ("evil/squat", "Forbidden") in warned(bound)
    forbidden = next(w for w in bound.warnings if w.service_key == "evil/squat")
    assert BINDING in forbidden.message and "Namespace evil" in forbidden.message


def test_a_second_stable_or_canary_from_elsewhere_never_freezes_the_owner():
    members = [
        stable("prod/web-v1"),
        canary("prod/web-v2", "60"),
        stable("evil/a"),
        canary("evil/b", "5"),
    ]
    outcome = decide_for(members, owned("prod/web-v1", "prod/web-v2", 50))
    assert outcome.gateway == "apply" and outcome.spec.weight == 60
    assert outcome.spec.canary == up("prod/web-v2")
    assert {("evil/a", "Forbidden"), ("evil/b", "Forbidden")} <= warned(outcome)


def test_a_scoped_controller_never_writes_another_namespaces_app():
    # controller B watches only team-b; team-b/x publishes team-a's app
    outcome = decide_for(
        [stable("team-b/x")],
        owned("team-a/web", owner="team-a"),
        watched_namespaces=frozenset({"team-b"}),
    )
    assert outcome.gateway == "keep" and "team-a" in outcome.held
    assert warned(outcome) == {("team-b/x", "Forbidden")}


def test_the_owner_can_grant_another_namespace():
    granted = stable("prod/web-v1", **{GRANT: "team-b"})
    outcome = decide_for([granted, canary("team-b/v2", "20")], owned("prod/web-v1"))
    assert outcome.spec == AppSpec("shop", up("prod/web-v1"), up("team-b/v2"), 20, "prod")
    assert not outcome.warnings


def test_a_backend_without_cross_namespace_routing_refuses_granted_members():
    granted = stable("prod/web-v1", **{GRANT: "team-b"})
    outcome = decide_for(
        [granted, canary("team-b/v2", "20")], owned("prod/web-v1"), cross_namespace=False
    )
    assert outcome.spec.canary is None
    refused = next(w for w in outcome.warnings if w.reason == "Forbidden")
    assert "ReferenceGrant" in refused.message


def test_an_invalid_grant_is_invalid_input():
    outcome = decide_for([stable("prod/web-v1", **{GRANT: "Team_B"})], owned("prod/web-v1"))
    assert outcome.gateway == "keep" and outcome.held
    [warning] = outcome.warnings
    assert warning.reason == "InvalidAnnotation" and GRANT in warning.message


def test_an_app_written_before_owners_were_recorded_gets_its_owner_once():
    legacy = owned("prod/web-v1", owner="")
    outcome = decide_for([stable("prod/web-v1")], legacy)
    assert outcome.gateway == "apply" and outcome.spec.owner == "prod"
    assert [n.reason for n in outcome.notices] == ["OwnerRecorded"]


def test_huge_values_are_cut_before_they_reach_statuses_events_or_logs():
    app = "a" * 250_000
    outcome = decide_for([stable("prod/web", app=app)], app=app)
    assert all(len(w.message) <= 1024 for w in outcome.warnings)
    status = outcome.statuses["prod/web"]
    assert len(status.app) <= 253 and len(status.message) <= 1024
    assert len(status.render(NOW)) < 2000
