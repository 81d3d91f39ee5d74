"""Per-application series the Grafana dashboard draws (manifests/grafana/canaryctl.json).

The reconciler already exports desired vs applied weight; this adds, per namespace/app, what a
release looks like over time: its phase (one-hot) and step, every check's classification and
the last value and threshold of each judged metric, and which gateway upstream target plays
which role — so the dashboard can join the gateway's own request series (labelled by `node`,
the upstream's host:port) to "stable" and "canary" without knowing Service names.

Labels stay bounded: namespace/app as everywhere, plus phase, metric name, check result and
role (two per app). What an application exported is remembered, so series of a canary that
left, or of an application that was deleted, are removed rather than left frozen.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import Gauge

from canaryctl import metrics
from canaryctl.objects import Service
from canaryctl.outcome import Outcome
from canaryctl.release.analysis import Target
from canaryctl.release.config import STEPS, parse_steps
from canaryctl.release.state import CHECK_OUTCOMES, PHASES, CheckResult, ReleaseState


@dataclass
class _Exported:
    """The label values one application's series were last exported with."""

    namespace: str
    upstreams: dict[str, str] = field(default_factory=dict)  # role -> node
    release: bool = False
    checked: set[str] = field(default_factory=set)  # metric names with a value
    weights: tuple[Gauge, Gauge] | None = None  # desired and applied weight, once exported


class AppMetrics:
    """Sets and removes the per-application series; safe to call from several workers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._apps: dict[str, _Exported] = {}

    def export(self, outcome: Outcome, services: Mapping[str, Service]) -> None:
        """Bring `outcome.app`'s series in line with what the reconcile decided."""
        with self._lock:
            if outcome.gateway == "delete":
                self._forget(outcome.app)
                return
            spec = outcome.spec
            if spec is None:
                return  # on hold: the last exported picture stays
            namespace = (spec.canary or spec.stable).namespace
            exported = self._entry(outcome.app, namespace)
            roles = {"stable": spec.stable.target}
            if spec.canary is not None:
                roles["canary"] = spec.canary.target
            self._set_upstreams(outcome.app, exported, roles)
            canary = services.get(spec.canary.key) if spec.canary else None
            status = outcome.statuses.get(canary.key) if canary else None
            release = status.release if status else None
            self._set_release(outcome.app, exported, release, canary)

    def export_weights(self, app: str, namespace: str, desired: int, applied: int) -> None:
        """Desired vs applied canary weight (the reconciler has the applied state). Set on
        every weight change, so the two series are looked up once and then kept."""
        with self._lock:
            exported = self._entry(app, namespace)
            if exported.weights is None:
                exported.weights = (
                    metrics.canary_weight.labels(namespace, app),
                    metrics.canary_applied_weight.labels(namespace, app),
                )
            exported.weights[0].set(desired)
            exported.weights[1].set(applied)

    def record_check(self, canary: Target, check: CheckResult) -> None:
        """Count one check of `canary`'s release and keep each judged metric's numbers."""
        with self._lock:
            exported = self._entry(canary.app, canary.namespace)
            labels = (canary.namespace, canary.app)
            metrics.release_checks_total.labels(*labels, check.result).inc()
            for metric in check.metrics:
                metrics.analysis_value.labels(*labels, metric.name).set(metric.value)
                metrics.analysis_threshold.labels(*labels, metric.name).set(metric.threshold)
                exported.checked.add(metric.name)

    # --- helpers (lock held) -------------------------------------------------------------------

    def _entry(self, app: str, namespace: str) -> _Exported:
        exported = self._apps.get(app)
        if exported is None or exported.namespace != namespace:
            self._forget(app)
            exported = self._apps[app] = _Exported(namespace)
        return exported

    def _set_upstreams(self, app: str, exported: _Exported, roles: dict[str, str]) -> None:
        for role, node in list(exported.upstreams.items()):
            if roles.get(role) != node:
                _remove(metrics.upstream_info, exported.namespace, app, role, node)
                del exported.upstreams[role]
        for role, node in roles.items():
            if exported.upstreams.get(role) != node:  # set once: a weight change keeps them
                metrics.upstream_info.labels(exported.namespace, app, role, node).set(1)
                exported.upstreams[role] = node

    def _set_release(
        self, app: str, exported: _Exported, release: ReleaseState | None, canary: Service | None
    ) -> None:
        labels = (exported.namespace, app)
        if release is None or canary is None:
            if exported.release:
                self._remove_release(app, exported)
            return
        if not exported.release:  # check counters at 0 from the release's start: rate() works
            for result in CHECK_OUTCOMES:  # from its first check (apps without one have none)
                metrics.release_checks_total.labels(*labels, result)
        for phase in PHASES:
            metrics.release_phase.labels(*labels, phase).set(1 if phase == release.phase else 0)
        metrics.release_step.labels(*labels).set(release.step + 1)
        steps = parse_steps(canary.annotations.get(STEPS, "").strip())
        if steps is not None:
            metrics.release_steps.labels(*labels).set(len(steps))
        exported.release = True

    def _remove_release(self, app: str, exported: _Exported) -> None:
        labels = (exported.namespace, app)
        for phase in PHASES:
            _remove(metrics.release_phase, *labels, phase)
        _remove(metrics.release_step, *labels)
        _remove(metrics.release_steps, *labels)
        exported.release = False

    def _forget(self, app: str) -> None:
        exported = self._apps.pop(app, None)
        if exported is None:
            return
        labels = (exported.namespace, app)
        self._remove_release(app, exported)
        if exported.weights is not None:
            _remove(metrics.canary_weight, *labels)
            _remove(metrics.canary_applied_weight, *labels)
        for role, node in exported.upstreams.items():
            _remove(metrics.upstream_info, *labels, role, node)
        for name in exported.checked:
            _remove(metrics.analysis_value, *labels, name)
            _remove(metrics.analysis_threshold, *labels, name)
        for result in CHECK_OUTCOMES:
            _remove(metrics.release_checks_total, *labels, result)


def _remove(family, *labels: str) -> None:
    try:
        family.remove(*labels)
    except KeyError:
        pass  # never exported


APP_METRICS = AppMetrics()
