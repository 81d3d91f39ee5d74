"""One reconcile's worth of release automation for an application's canary.

The reconciler calls `ReleaseRunner.step` after planning roles: it reads the canary's
release annotations and its persisted state (inside the status annotation), feeds the pure
`decide` functions what happened (hand-set weight, manual action, an analysis check when
one is due) and returns the weight to apply, the state to persist, the Events and when to
look again. The only I/O here is the Prometheus query, made only when a check is due.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from canaryctl import metrics
from canaryctl.annotations import PERCENT, STATUS, Problem, parse_percent
from canaryctl.gateway.model import AppSpec, Upstream
from canaryctl.objects import Service
from canaryctl.release import decide
from canaryctl.release.analysis import Analyzer, Target
from canaryctl.release.config import ReleaseConfig, parse_release
from canaryctl.release.state import CheckResult, ReleaseState

NO_PROMETHEUS = "no Prometheus configured: start the controller with --prometheus-url"


@dataclass(frozen=True)
class ReleaseStep:
    """What the automation wants for the canary `canary_key` after this reconcile."""

    canary_key: str
    decision: decide.Decision
    requeue_after: float | None

    @property
    def weight(self) -> int:
        return self.decision.weight


class ReleaseRunner:
    """Drives automated releases; `analyzer` is None when no Prometheus is configured."""

    def __init__(self, analyzer: Analyzer | None):
        self.analyzer = analyzer

    def step(
        self, app: str, canary: Service, spec: AppSpec, now: datetime
    ) -> ReleaseStep | list[Problem] | None:
        """Advance the canary's release; None when it does not ask for automation."""
        config = parse_release(canary)
        if config is None or isinstance(config, list):
            return config
        previous = persisted_state(canary.annotations)
        percent = _percent_annotation(canary)
        decision = (
            decide.start(config, now, percent)
            if previous is None
            else decide.on_annotations(config, previous, percent, now)
        )
        if decide.check_due(config, decision.state, now) == 0:
            check = self._check(config, app, spec, decision.state, now)
            decision = decision.followed_by(decide.on_check(config, decision.state, check, now))
        if decision.outcome:
            metrics.releases_total.labels(decision.outcome).inc()
        return ReleaseStep(canary.key, decision, decide.check_due(config, decision.state, now))

    def _check(
        self, config: ReleaseConfig, app: str, spec: AppSpec, state: ReleaseState, now: datetime
    ) -> CheckResult:
        if self.analyzer is None:
            metrics.analysis_checks_total.labels("error").inc()
            return CheckResult("error", NO_PROMETHEUS)
        canary, stable = _target(app, spec.canary), _target(app, spec.stable)
        return self.analyzer.check(config, canary, stable, decide.window_s(state, now), now)


def persisted_state(annotations: Mapping[str, str]) -> ReleaseState | None:
    """The release state canaryctl last wrote into the Service's status annotation."""
    try:
        status = json.loads(annotations.get(STATUS) or "null")
    except ValueError:
        return None
    return ReleaseState.from_dict(status.get("release")) if isinstance(status, dict) else None


def _percent_annotation(view: Service) -> int | None:
    raw = view.annotations.get(PERCENT)
    return None if raw is None else parse_percent(raw)


def _target(app: str, upstream: Upstream) -> Target:
    namespace, service = upstream.namespace, upstream.service
    return Target(namespace, app, service, f"{upstream.host}:{upstream.port}")
