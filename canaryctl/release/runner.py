"""One reconcile's worth of release automation for an application's canary, as pure functions.

The decision function (`canaryctl.decision`) asks two things of a canary that carries
`api7.cloud/canary-steps`: is an analysis check due now (so the reconciler queries Prometheus
before deciding, and only then), and, given the check if one was made, what happens next —
the weight to apply, the state to persist, the Events and when to look again. Both answers
come from the canary's annotations, its persisted state (inside its status annotation) and
the time; nothing here does I/O, so a restarted controller decides exactly as before.

A due check names everything the observe step must gather: the Prometheus check, and the hook
calls of the release (`pre` alone while the release waits for it; else `step`, and the
`promote` gate, which is asked only if `judgement.wants_gate` says the check would promote).
The rollback hook is not part of a check: a decision that rolls back carries it in `notify`,
and the reconciler sends it after the gateway write, without waiting for an answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from canaryctl.annotations import PERCENT, Invalid, parse_percent
from canaryctl.gateway.model import Upstream
from canaryctl.objects import Service
from canaryctl.release import actions, decide
from canaryctl.release.analysis import Target
from canaryctl.release.config import ReleaseConfig, parse_release
from canaryctl.release.hooks import HookCall, HookContext, context_of
from canaryctl.release.observations import HookKind
from canaryctl.release.state import CheckResult, ReleaseState


@dataclass(frozen=True)
class Release:
    """A canary's release as its Service describes it: settings, persisted state, percentage."""

    config: ReleaseConfig
    previous: ReleaseState | None  # None: the release has not started yet
    percent: int | None  # the percentage annotation as it is now (a change is a hand-set weight)
    context: HookContext | None = None  # what hook calls say about the release (None: no calls)

    def before_check(self, now: datetime) -> decide.Decision:
        """What the annotations alone decide now: start, a hand-set weight, a manual action."""
        if self.previous is None:
            return decide.start(self.config, now, self.percent)
        return actions.on_annotations(self.config, self.previous, self.percent, now)

    def advance(self, check: CheckResult | None, now: datetime) -> decide.Decision:
        """The release's next state: the annotations' decision, then `check` when one was due."""
        decision = self.before_check(now)
        if check is not None and decide.check_due(self.config, decision.state, now) == 0:
            decision = decision.followed_by(
                decide.on_check(self.config, decision.state, check, now)
            )
        rollback = self.call("rollback", decision.state)
        if rollback is not None and decide.tells_rollback(self.previous, decision):
            decision = replace(decision, notify=(rollback,))
        return decision

    def call(self, hook: HookKind, state: ReleaseState) -> HookCall | None:
        """The call to `hook` about `state`, when the release has that hook."""
        urls = {
            "pre": self.config.pre_hook,
            "step": self.config.step_hook,
            "promote": self.config.promote_gate,
            "rollback": self.config.rollback_hook,
        }
        url = urls[hook]
        if url is None or self.context is None:
            return None
        return HookCall(hook, url, self.config.hook_timeout_s, self.context, state)


@dataclass(frozen=True)
class CheckRequest:
    """An analysis check the reconciler must make before deciding: what to ask Prometheus."""

    config: ReleaseConfig
    canary: Target
    stable: Target
    window_s: float
    state: ReleaseState | None = None  # the release as the check finds it
    pre: HookCall | None = None  # set while the release waits for it: then nothing else is asked
    step: HookCall | None = None
    gate: HookCall | None = None  # asked only when the check would promote


def release_of(
    canary: Service, previous: ReleaseState | None, app: str = "", stable: Upstream | None = None
) -> Release | Invalid | None:
    """The canary's release; None when it does not ask for automation. Hook calls need the
    application's name and its `stable`."""
    config = parse_release(canary)
    if config is None or isinstance(config, Invalid):
        return config
    raw = canary.annotations.get(PERCENT)
    context = None
    if stable is not None:
        sides = (canary.namespace, canary.name), (stable.namespace, stable.service)
        context = context_of(app, *sides, len(config.steps))
    return Release(config, previous, None if raw is None else parse_percent(raw), context)


def check_request(
    release: Release, app: str, canary: Upstream, stable: Upstream, now: datetime
) -> CheckRequest | None:
    """The check to make now for `release`, or None when none is due."""
    state = release.before_check(now).state
    if decide.check_due(release.config, state, now) != 0:
        return None
    request = CheckRequest(
        release.config,
        _target(app, canary),
        _target(app, stable),
        decide.window_s(state, now),
        state,
    )
    if state.pending:
        return replace(request, pre=release.call("pre", state))
    return replace(request, step=release.call("step", state), gate=release.call("promote", state))


def _target(app: str, upstream: Upstream) -> Target:
    return Target(upstream.namespace, app, upstream.service, upstream.target, upstream.cluster_ip)
