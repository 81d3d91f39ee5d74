"""The per-application series behind the Grafana dashboard: set, moved and removed."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

from canaryctl import metrics
from canaryctl.app_metrics import AppMetrics
from canaryctl.gateway.model import AppSpec, Upstream
from canaryctl.objects import Service, ServicePort
from canaryctl.outcome import Outcome
from canaryctl.release.analysis import Target
from canaryctl.release.config import STEPS
from canaryctl.release.state import CheckResult, MetricCheck, ReleaseState
from canaryctl.status import MemberStatus

T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
NS = "metrics-ns"


def upstream(name: str) -> Upstream:
    return Upstream(NS, name, f"{name}.{NS}.svc.cluster.local", 80)


def canary_service(name: str = "v2") -> Service:
    annotations = MappingProxyType({STEPS: "10,50"})
    return Service(NS, name, "uid", "1", annotations, (ServicePort("http", 80),))


def serving(app: str, release: ReleaseState | None, canary: str | None = "v2") -> Outcome:
    spec = AppSpec(app, upstream("v1"), upstream(canary) if canary else None, 10, NS)
    statuses = {}
    if canary:
        statuses[f"{NS}/{canary}"] = MemberStatus("canary", app, 10, "Canary", "", release=release)
    return Outcome(app, "apply", spec, statuses=statuses)


def value(name: str, **labels: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels)


def test_a_release_exports_phase_step_and_roles():
    app, series = "shop-a", AppMetrics()
    release = ReleaseState("Progressing", 1, 50, T0)
    series.export(serving(app, release), {f"{NS}/v2": canary_service()})
    labels = {"namespace": NS, "app": app}
    assert value("canaryctl_release_phase", **labels, phase="Progressing") == 1
    assert value("canaryctl_release_phase", **labels, phase="RolledBack") == 0
    assert value("canaryctl_release_step", **labels) == 2
    assert value("canaryctl_release_steps", **labels) == 3
    node = f"v2.{NS}.svc.cluster.local:80"
    assert value("canaryctl_upstream_info", **labels, role="canary", node=node) == 1
    assert value("canaryctl_release_checks_total", **labels, result="fail") == 0


def test_checks_keep_their_value_and_threshold():
    app, series = "shop-b", AppMetrics()
    check = CheckResult("fail", "", 80, 10, (MetricCheck("error_rate", 9.5, 1.0, False),))
    series.record_check(Target(NS, app, "v2", "v2:80"), check)
    labels = {"namespace": NS, "app": app}
    assert value("canaryctl_release_checks_total", **labels, result="fail") == 1
    assert value("canaryctl_analysis_value", **labels, metric="error_rate") == 9.5
    assert value("canaryctl_analysis_threshold", **labels, metric="error_rate") == 1.0


def test_series_of_a_departed_canary_and_a_deleted_app_are_removed():
    app, series = "shop-c", AppMetrics()
    services = {f"{NS}/v2": canary_service()}
    series.export(serving(app, ReleaseState("Progressing", 0, 10, T0)), services)
    check = CheckResult("pass", "", 80, 10, (MetricCheck("latency_p99", 120, 500, True),))
    series.record_check(Target(NS, app, "v2", "v2:80"), check)
    labels = {"namespace": NS, "app": app}
    canary_node = f"v2.{NS}.svc.cluster.local:80"
    series.export(serving(app, None, canary=None), services)
    assert value("canaryctl_upstream_info", **labels, role="canary", node=canary_node) is None
    assert value("canaryctl_release_step", **labels) is None
    stable_node = f"v1.{NS}.svc.cluster.local:80"
    assert value("canaryctl_upstream_info", **labels, role="stable", node=stable_node) == 1
    series.export_weights(app, NS, 10, 10)  # as the reconciler sets them
    series.export(Outcome(app, "delete"), {})
    assert value("canaryctl_upstream_info", **labels, role="stable", node=stable_node) is None
    assert value("canaryctl_canary_weight", **labels) is None
    assert value("canaryctl_canary_applied_weight", **labels) is None
    assert value("canaryctl_analysis_value", **labels, metric="latency_p99") is None
    assert value("canaryctl_release_checks_total", **labels, result="pass") is None


def test_a_hold_leaves_the_last_picture():
    app, series = "shop-d", AppMetrics()
    series.export(serving(app, ReleaseState("Paused", 0, 10, T0)), {f"{NS}/v2": canary_service()})
    series.export(Outcome(app, "keep", held="two stables"), {})
    assert value("canaryctl_release_phase", namespace=NS, app=app, phase="Paused") == 1


def test_weights_follow_each_change_and_come_back_after_a_delete():
    app, series = "shop-e", AppMetrics()
    labels = {"namespace": NS, "app": app}
    for desired, applied in ((10, 0), (30, 30)):
        series.export_weights(app, NS, desired, applied)
        assert value("canaryctl_canary_weight", **labels) == desired
        assert value("canaryctl_canary_applied_weight", **labels) == applied
    series.export(Outcome(app, "delete"), {})
    assert value("canaryctl_canary_weight", **labels) is None
    series.export_weights(app, NS, 5, 5)  # published again: new series, not the removed ones
    assert value("canaryctl_canary_weight", **labels) == 5
    assert value("canaryctl_canary_applied_weight", **labels) == 5
