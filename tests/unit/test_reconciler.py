"""The loop body, as sample-controller tests its syncHandler: seed the caches, reconcile, compare.

A real `ServiceStore` and `GatewayCache`, an in-memory gateway, a recording Event sink and a
recording status patcher (which also updates the store, as the watch echo would). Each case
states the gateway calls, Events and status patches one `reconcile(app)` must make.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from canaryctl import annotations as ann
from canaryctl.cache import ServiceStore
from canaryctl.gateway.base import TransientGatewayError
from canaryctl.gateway.cache import GatewayCache
from canaryctl.gateway.model import AppState, Upstream
from canaryctl.objects import Service, ServicePort
from canaryctl.reconciler import INDEXERS, NO_PROMETHEUS, Reconciler, ReconcileSettings, apps_of
from canaryctl.release.config import STEP_INTERVAL, STEPS
from canaryctl.release.state import CheckResult
from canaryctl.status import MemberStatus
from canaryctl.testing.memory_gateway import MemoryGateway

APP = "error-page"
T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def up(name: str, namespace: str = "demo") -> Upstream:
    return Upstream(namespace, name, f"{name}.{namespace}.svc.cluster.local", 80)


def svc(name: str, namespace: str = "demo", version: str = "1", **annotations: str) -> Service:
    return Service(
        namespace=namespace,
        name=name,
        uid=f"uid-{namespace}-{name}",
        resource_version=version,
        annotations=MappingProxyType(dict(annotations)),
        ports=(ServicePort("http", 80),),
    )


def stable(name: str = "v1", **more: str) -> Service:
    return svc(name, **{ann.APP: APP}, **more)


def canary(name: str = "v2", percent: str = "10", **more: str) -> Service:
    return svc(name, **{ann.APP: APP, ann.CANARY: "true", ann.PERCENT: percent}, **more)


@dataclass
class ScriptedAnalyzer:
    """Answers checks from a list, recording what it was asked (Prometheus' place in the loop)."""

    answers: list[CheckResult]
    asked: list[tuple[str, str, float]] = field(default_factory=list)

    def check(self, config, canary, stable, window_s, now) -> CheckResult:
        self.asked.append((canary.service, stable.service, window_s))
        return self.answers.pop(0)


class Harness:
    """A reconciler over real caches, an in-memory gateway and recording sinks."""

    def __init__(self, *services: Service, gateway: dict[str, AppState] | None = None, **options):
        self.store = ServiceStore(INDEXERS)
        for service in services:
            self.store.upsert(service)
        self.gateway = MemoryGateway(gateway)
        self.cache = GatewayCache()
        self.cache.replace(self.gateway.list_apps())
        self.gateway.calls.clear()
        self.events: list[tuple[str, str, str, str]] = []
        self.patches: list[tuple[str, dict | None]] = []
        self.now = T0
        analyzer = options.pop("analyzer", None)
        self.reconciler = Reconciler(
            self.store,
            self.cache,
            self.gateway,
            self,
            self.patch_status,
            analyzer,
            ReconcileSettings(**options),
            now=lambda: self.now,
        )

    # the Recorder protocol
    def normal(self, service: Service, reason: str, message: str) -> None:
        self.events.append(("Normal", service.key, reason, message))

    def warning(self, service: Service, reason: str, message: str) -> None:
        self.events.append(("Warning", service.key, reason, message))

    def patch_status(self, service: Service, value: str | None) -> None:
        self.patches.append((service.key, None if value is None else json.loads(value)))
        annotations = dict(service.annotations)
        if value is None:
            annotations.pop(ann.STATUS, None)
        else:
            annotations[ann.STATUS] = value
        version = str(int(service.resource_version) + 1)
        self.store.upsert(
            Service(
                service.namespace,
                service.name,
                service.uid,
                version,
                MappingProxyType(annotations),
                service.ports,
                service.type,
            )
        )

    def update(self, service: Service) -> None:
        """A user's change to a Service, keeping the status canaryctl wrote on it."""
        held = self.store.get(service.key)
        status = held.annotations.get(ann.STATUS) if held else None
        annotations = dict(service.annotations) | ({ann.STATUS: status} if status else {})
        version = str(int(held.resource_version) + 1) if held else "1"
        self.store.upsert(
            Service(
                service.namespace,
                service.name,
                service.uid,
                version,
                MappingProxyType(annotations),
                service.ports,
                service.type,
            )
        )

    def remove(self, key: str) -> None:
        self.store.delete(key)

    def reconcile(self, app: str = APP):
        self.gateway.calls.clear()
        self.events.clear()
        self.patches.clear()
        return self.reconciler.reconcile(app)

    def reasons(self) -> list[tuple[str, str, str]]:
        return [(kind, key, reason) for kind, key, reason, _ in self.events]

    def status(self, key: str) -> dict:
        return json.loads(self.store.get(key).annotations[ann.STATUS])


# --- the seed walk-through, call by call -------------------------------------------------------

WALKTHROUGH = [
    # (what the user did, gateway calls, Events, Services whose status is written)
    ("publish v1", [stable()], [("apply", APP)], [("Normal", "demo/v1", "Published")], ["demo/v1"]),
    (
        "v2 canary at 10 %",
        [stable(), canary(percent="10")],
        [("apply", APP)],
        [("Normal", "demo/v2", "CanaryAdded")],
        ["demo/v1", "demo/v2"],
    ),
    (
        "set 0 %",
        [stable(), canary(percent="0")],
        [("apply", APP)],
        [("Normal", "demo/v2", "CanaryWeightChanged")],
        ["demo/v1", "demo/v2"],
    ),
    (
        "set 100 %",
        [stable(), canary(percent="100")],
        [("apply", APP)],
        [("Normal", "demo/v2", "CanaryWeightChanged")],
        ["demo/v1", "demo/v2"],
    ),
    ("nothing changed", [stable(), canary(percent="100")], [], [], []),
]


def test_the_seed_walk_through_one_write_per_change_and_none_when_nothing_changed():
    harness = Harness()
    for what, services, calls, events, patched in WALKTHROUGH:
        for service in services:
            harness.update(service)
        harness.reconcile()
        assert harness.gateway.calls == calls, what
        assert harness.reasons() == events, what
        assert [key for key, _ in harness.patches] == patched, what
    assert harness.status("demo/v1")["appliedWeight"] == 0
    assert harness.status("demo/v2")["appliedWeight"] == 100

    harness.remove("demo/v1")  # the stable leaves at 100 %: v2 is promoted
    harness.reconcile()
    assert harness.gateway.apps[APP].stable == up("v2") and harness.gateway.apps[APP].canary is None
    assert harness.reasons() == [("Normal", "demo/v2", "Promoted")]
    assert harness.status("demo/v2")["phase"] == "Promoted"


def test_former_members_are_cleaned_up_and_lose_their_status():
    harness = Harness(stable(), canary())
    harness.reconcile()
    for key in ("demo/v1", "demo/v2"):
        service = harness.store.get(key)
        harness.update(svc(service.name))  # every canaryctl annotation removed by the user
    harness.reconcile()
    assert harness.gateway.calls == [("delete", APP)] and APP not in harness.gateway.apps
    assert sorted(harness.reasons()) == [
        ("Normal", "demo/v1", "CleanedUp"),
        ("Normal", "demo/v2", "CleanedUp"),
    ]
    assert sorted(harness.patches, key=lambda patch: patch[0]) == [
        ("demo/v1", None),
        ("demo/v2", None),
    ]
    harness.reconcile()
    assert (harness.gateway.calls, harness.events, harness.patches) == ([], [], [])


# --- warnings ------------------------------------------------------------------------------------


def test_a_warning_is_recorded_once_per_input_not_on_every_resync():
    harness = Harness(stable(), canary(percent="abc"))
    harness.reconcile()
    assert harness.reasons() == [("Warning", "demo/v2", "InvalidAnnotation")]
    assert harness.gateway.writes() == []
    assert harness.status("demo/v2")["phase"] == "Invalid"
    harness.reconcile()
    assert harness.events == [] and harness.patches == []  # a resync of the same bad input
    harness.update(canary(percent="150"))
    harness.reconcile()
    assert harness.reasons() == [("Warning", "demo/v2", "InvalidAnnotation")]
    assert '"150"' in harness.events[0][3]
    harness.update(canary(percent="20"))
    harness.reconcile()
    assert harness.gateway.writes() == [("apply", APP)]
    assert ("Warning", "demo/v2", "InvalidAnnotation") not in harness.reasons()


def test_a_foreign_app_is_never_written_and_every_member_is_told():
    foreign = AppState(APP, False, up("legacy"), None, 0)
    harness = Harness(stable(), gateway={APP: foreign})
    harness.reconcile()
    assert harness.gateway.writes() == []
    assert harness.reasons() == [("Warning", "demo/v1", "Conflict")]
    assert harness.status("demo/v1")["phase"] == "Conflict"


def test_a_stable_that_leaves_below_100_percent_keeps_the_gateway_and_warns():
    harness = Harness(stable(), canary(percent="30"))
    harness.reconcile()
    harness.remove("demo/v1")
    harness.reconcile()
    assert harness.gateway.writes() == []
    assert harness.reasons() == [("Warning", "demo/v2", "StableMissing")]
    assert harness.status("demo/v2")["appliedWeight"] == 30  # the gateway still routes 30 %


# --- scope ----------------------------------------------------------------------------------------


def test_a_scoped_controller_never_deletes_an_app_whose_services_it_cannot_see():
    theirs = AppState(APP, True, up("web", "team-b"), None, 0)
    harness = Harness(gateway={APP: theirs}, namespaces=["team-a"])
    harness.reconcile()
    assert harness.gateway.writes() == [] and APP in harness.gateway.apps


def test_an_unscoped_controller_deletes_an_app_without_members():
    harness = Harness(gateway={APP: AppState(APP, True, up("web", "team-b"), None, 0)})
    harness.reconcile()
    assert harness.gateway.writes() == [("delete", APP)]


# --- gateway failures ---------------------------------------------------------------------------


def test_a_failed_write_warns_every_member_and_the_next_reconcile_reads_first():
    harness = Harness(stable(), canary())
    harness.gateway.fail_next.append(TransientGatewayError("503 from the gateway"))
    with pytest.raises(TransientGatewayError):
        harness.reconcile()
    assert sorted(harness.reasons()) == [
        ("Warning", "demo/v1", "GatewayError"),
        ("Warning", "demo/v2", "GatewayError"),
    ]
    assert harness.patches == []  # nothing confirmed, nothing reported
    assert harness.cache.needs_read(APP, harness.now)
    harness.reconcile()
    assert harness.gateway.calls == [("read", APP), ("apply", APP)]
    assert not harness.cache.needs_read(APP, harness.now)


def test_a_write_that_lost_its_answer_is_verified_when_its_window_ends():
    harness = Harness(stable(), canary(percent="20"), suspect_window=60.0)
    harness.gateway.lose_answers = 1  # the write succeeded on a retry; the first may land later
    result = harness.reconcile()
    assert result.requeue_after == 60.0  # look again when the late write can no longer land
    harness.update(canary(percent="50"))
    harness.now = T0 + timedelta(seconds=10)
    harness.reconcile()
    assert harness.gateway.calls == [("read", APP), ("apply", APP)]  # read before writing
    harness.gateway.apps[APP] = AppState(APP, True, up("v1"), up("v2"), 20, owner="demo")
    harness.now = T0 + timedelta(seconds=30)  # the lost attempt (20 %) lands late
    assert harness.reconcile().requeue_after == 30.0
    assert harness.gateway.calls == []  # nothing to suspect before the window ends...
    harness.now = T0 + timedelta(seconds=60)
    result = harness.reconcile()
    assert harness.gateway.calls == [("read", APP), ("apply", APP)]  # ...then read, correct
    assert harness.gateway.apps[APP].weight == 50 and result.requeue_after is None


def test_dry_run_writes_nothing_but_still_warns():
    harness = Harness(stable(), canary(percent="abc"), svc("v3", **{ann.APP: APP}), dry_run=True)
    harness.reconcile()
    assert harness.gateway.calls == [] and harness.patches == []
    assert ("Warning", "demo/v2", "InvalidAnnotation") in harness.reasons()


# --- automated releases ---------------------------------------------------------------------------

AUTO = {STEPS: "20,50", STEP_INTERVAL: "60s"}


def test_an_automated_release_starts_at_its_first_step_and_asks_to_look_again():
    harness = Harness(stable(), canary(percent="10", **AUTO))
    result = harness.reconcile()
    assert harness.gateway.apps[APP].weight == 20
    assert harness.gateway.calls == [("apply", APP), ("read", APP)]  # the write, then read-back
    assert ("Normal", "demo/v2", "StepAdvanced") in harness.reasons()
    assert result.requeue_after == 60.0
    release = harness.status("demo/v2")["release"]
    assert (release["phase"], release["weight"]) == ("Progressing", 20)


def test_a_due_check_is_made_before_deciding_and_a_pass_moves_to_the_next_step():
    analyzer = ScriptedAnalyzer([CheckResult("pass", "error rate 0.0 % <= 1.0 %", 80, 60)])
    harness = Harness(stable(), canary(**AUTO), analyzer=analyzer)
    harness.reconcile()
    assert analyzer.asked == []  # no check before the step's interval has passed
    harness.now = T0 + timedelta(seconds=61)
    result = harness.reconcile()
    assert analyzer.asked == [("v2", "v1", 61.0)]
    assert harness.gateway.apps[APP].weight == 50
    assert result.requeue_after == 60.0
    assert harness.status("demo/v2")["release"]["lastCheck"]["result"] == "pass"


def test_without_prometheus_a_due_check_is_an_error_and_the_weight_is_held():
    harness = Harness(stable(), canary(**AUTO))
    harness.reconcile()
    harness.now = T0 + timedelta(seconds=61)
    harness.reconcile()
    assert harness.gateway.writes() == []
    assert [reason for _, _, reason in harness.reasons()] == ["AnalysisError"]
    assert NO_PROMETHEUS in harness.events[0][3]
    assert harness.status("demo/v2")["release"]["counts"]["error"] == 1


def test_a_weight_the_gateway_did_not_apply_is_a_warning_and_the_status_says_what_it_did():
    harness = Harness(stable(), canary(**AUTO))
    harness.gateway.skew[APP] = 5
    harness.reconcile()
    assert ("Warning", "demo/v2", "WeightMismatch") in harness.reasons()
    mismatch = next(e for e in harness.events if e[2] == "WeightMismatch")
    assert "applied 5 %" in mismatch[3] and "asked for 20 %" in mismatch[3]
    assert harness.status("demo/v2")["appliedWeight"] == 5
    assert harness.status("demo/v2")["desiredWeight"] == 20


def test_invalid_release_settings_hold_the_app_without_a_write():
    harness = Harness(stable(), canary(**{STEPS: "20,fifty"}))
    harness.reconcile()
    assert harness.gateway.writes() == []
    assert harness.reasons() == [("Warning", "demo/v2", "InvalidAnnotation")]


def test_a_release_that_ends_counts_its_outcome_once():
    from canaryctl import metrics

    counter = metrics.releases_total.labels("promoted")
    before = counter._value.get()
    harness = Harness(stable(), canary(**AUTO))
    harness.reconcile()
    harness.update(canary(**AUTO, **{"api7.cloud/canary-action": "promote@1"}))
    harness.reconcile()
    assert harness.gateway.apps[APP].weight == 100
    harness.reconcile()
    assert counter._value.get() == before + 1


# --- which apps an event concerns ---------------------------------------------------------------


def test_apps_of_covers_a_service_moving_between_apps():
    old, new = svc("a", **{ann.APP: "one"}), svc("a", **{ann.APP: "two"})
    assert apps_of(old, new) == ["one", "two"]
    assert apps_of(None, svc("b")) == []


def test_statuses_name_the_app_so_former_members_can_be_found():
    harness = Harness(stable())
    harness.reconcile()
    status = MemberStatus.parse(harness.store.get("demo/v1").annotations[ann.STATUS])
    assert status is not None and status.app == APP and status.role == "stable"
