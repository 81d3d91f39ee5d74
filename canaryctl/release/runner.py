"""One reconcile's worth of release automation for an application's canary, as pure functions.

The decision function (`canaryctl.decision`) asks two things of a canary that carries
`api7.cloud/canary-steps`: is an analysis check due now (so the reconciler queries Prometheus
before deciding, and only then), and, given the check if one was made, what happens next —
the weight to apply, the state to persist, the Events and when to look again. Both answers
come from the canary's annotations, its persisted state (inside its status annotation) and
the time; nothing here does I/O, so a restarted controller decides exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from canaryctl.annotations import PERCENT, Invalid, parse_percent
from canaryctl.gateway.model import Upstream
from canaryctl.objects import Service
from canaryctl.release import decide
from canaryctl.release.analysis import Target
from canaryctl.release.config import ReleaseConfig, parse_release
from canaryctl.release.state import CheckResult, ReleaseState


@dataclass(frozen=True)
class Release:
    """A canary's release as its Service describes it: settings, persisted state, percentage."""

    config: ReleaseConfig
    previous: ReleaseState | None  # None: the release has not started yet
    percent: int | None  # the percentage annotation as it is now (a change is a hand-set weight)

    def before_check(self, now: datetime) -> decide.Decision:
        """What the annotations alone decide now: start, a hand-set weight, a manual action."""
        if self.previous is None:
            return decide.start(self.config, now, self.percent)
        return decide.on_annotations(self.config, self.previous, self.percent, now)

    def advance(self, check: CheckResult | None, now: datetime) -> decide.Decision:
        """The release's next state: the annotations' decision, then `check` when one was due."""
        decision = self.before_check(now)
        if check is not None and decide.check_due(self.config, decision.state, now) == 0:
            decision = decision.followed_by(
                decide.on_check(self.config, decision.state, check, now)
            )
        return decision


@dataclass(frozen=True)
class CheckRequest:
    """An analysis check the reconciler must make before deciding: what to ask Prometheus."""

    config: ReleaseConfig
    canary: Target
    stable: Target
    window_s: float


def release_of(canary: Service, previous: ReleaseState | None) -> Release | Invalid | None:
    """The canary's release; None when it does not ask for automation."""
    config = parse_release(canary)
    if config is None or isinstance(config, Invalid):
        return config
    raw = canary.annotations.get(PERCENT)
    return Release(config, previous, None if raw is None else parse_percent(raw))


def check_request(
    release: Release, app: str, canary: Upstream, stable: Upstream, now: datetime
) -> CheckRequest | None:
    """The check to make now for `release`, or None when none is due."""
    state = release.before_check(now).state
    if decide.check_due(release.config, state, now) != 0:
        return None
    return CheckRequest(
        release.config, _target(app, canary), _target(app, stable), decide.window_s(state, now)
    )


def _target(app: str, upstream: Upstream) -> Target:
    return Target(upstream.namespace, app, upstream.service, upstream.target, upstream.cluster_ip)
