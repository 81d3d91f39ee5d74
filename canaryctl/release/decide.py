"""What a release does next: pure functions of (settings, state, input, time), no I/O.

The controller feeds in what happened — a check result, a manual action, a hand-set
weight — together with the current time, and gets back a `Decision`: the new state (to
persist), the canary weight (to apply), Events (to record) and when to look again. Because
nothing here reads a clock or keeps memory, a controller restarted from the persisted state
decides exactly as one that never stopped.

Rules (the README's decision table):
- A release starts at the first step. A check is due one interval after the step started
  (the last weight change); after a check that did not advance, one interval after that
  check. The analysis window always starts at the step start. A check that arrives early,
  or when the release is not progressing, is ignored, so a step is never shortened.
- pass: go to the first step above the current weight; reaching 100 % ends the release as
  Succeeded (the canary becomes the default upstream when the stable Service leaves).
- fail: counted; at `failure_limit` failed checks in the step, roll back to 0 % (RolledBack),
  or, with `on-failure: pause`, pause at the current weight.
- no-data / error: the weight is held and the check counted; at `nodata_limit` / `error_limit`
  the release pauses and says why. They never roll back.
- Actions: promote -> 100 %, Succeeded; abort -> 0 %, Aborted; pause -> Paused at the current
  weight; resume (from Paused) -> the current weight is analysed for a full interval with
  fresh counts, then the release moves to the first step above it (at 0 % it goes to the first
  step, at 100 % it succeeds); retry (from RolledBack, Aborted or Paused) -> start over at the
  first step. An action that does not apply is reported (ActionIgnored) and changes nothing.
  Each `canary-action` value is handled once.
- Hand-set weight: changing the percentage annotation during a release sets that weight and
  pauses the release there ("weight set by hand to N %"), whatever the phase. `resume` then
  continues from N as above: N itself is analysed first, so a hand-set weight is never
  skipped over unanalysed. Removing the annotation changes nothing.
- Times are stored as whole seconds rounded up, so a step lasts at least its interval.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from canaryctl.release.config import Action, ReleaseConfig
from canaryctl.release.state import CheckResult, ReleaseState, whole_seconds_up

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to record on the canary Service.

    Reasons: StepAdvanced, AnalysisFailed, AnalysisNoData, AnalysisError, RolledBack, Paused,
    Resumed, Succeeded, Aborted, Retried, ManualWeight, ActionIgnored.
    """

    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    """The release's next state and what the controller should do about it."""

    state: ReleaseState
    events: tuple[Event, ...] = ()
    requeue_after: float | None = (
        None  # seconds until the next check is due; None: nothing scheduled
    )
    outcome: str | None = (
        None  # set when this decision ended the release: a metrics.RELEASE_RESULTS value
    )

    @property
    def weight(self) -> int:
        """The canary weight to apply on the gateway."""
        return self.state.weight

    def followed_by(self, later: Decision) -> Decision:
        """This decision and then `later` (which was computed from this one's state), as one."""
        return Decision(
            later.state,
            self.events + later.events,
            later.requeue_after,
            later.outcome or self.outcome,
        )


def start(config: ReleaseConfig, now: datetime, percent_seen: int | None = None) -> Decision:
    """A new release at the first step; `percent_seen` is the percentage annotation right now.

    A `canary-action` already on the Service predates the release: it is history, not a request.
    """
    fresh = ReleaseState(
        "Progressing",
        0,
        0,
        whole_seconds_up(now),
        percent_seen=percent_seen,
        last_action=config.action.value if config.action else None,
    )
    return _first_step(config, fresh, now, "release started", "StepAdvanced")


def check_due(config: ReleaseConfig, state: ReleaseState, now: datetime) -> float | None:
    """Seconds until the next analysis check is due (0: now); None when the release is not progressing."""
    if state.phase != "Progressing":
        return None
    anchor = state.step_started_at
    if state.last_check_at is not None and state.last_check_at > anchor:
        anchor = state.last_check_at
    due = anchor + timedelta(seconds=config.interval_s)
    return max(0.0, (due - now).total_seconds())


def window_s(state: ReleaseState, now: datetime) -> float:
    """The analysis window of a check at `now`: everything since the last weight change."""
    return max(0.0, (now - state.step_started_at).total_seconds())


def on_check(
    config: ReleaseConfig, state: ReleaseState, check: CheckResult, now: datetime
) -> Decision:
    """Apply one analysis check; ignored unless the release is progressing and the check is due."""
    if check_due(config, state, now) != 0:
        return _unchanged(config, state, now)
    checked = replace(state, last_check=check, last_check_at=whole_seconds_up(now))
    if check.result == "pass":
        return _go_above(
            config, checked, state.weight, now, f"analysis passed ({check.message})", "StepAdvanced"
        )
    if check.result == "fail":
        return _failed(config, checked, check, now)
    return _inconclusive(config, checked, check, now)


def on_action(
    config: ReleaseConfig, state: ReleaseState, action: Action, now: datetime
) -> Decision:
    """Apply a manual command, once per distinct `canary-action` value."""
    if action.value == state.last_action:
        return _unchanged(config, state, now)
    handled = replace(state, last_action=action.value)
    allowed, act = _ACTIONS[action.verb]
    if state.phase not in allowed:
        hint = " (use retry to start over)" if action.verb == "resume" and state.finished else ""
        event = Event(
            "Normal",
            "ActionIgnored",
            f"{action.verb} ignored: the release is {state.phase} at {state.weight} %{hint}",
        )
        return _decided(config, handled, now, event)
    return act(config, handled, now)


def on_manual_weight(
    config: ReleaseConfig, state: ReleaseState, percent: int | None, now: datetime
) -> Decision:
    """A changed percentage annotation: that weight, by hand, and the release paused there."""
    if percent == state.percent_seen:
        return _unchanged(config, state, now)
    if percent is None:
        return _unchanged(config, replace(state, percent_seen=None), now)
    paused = replace(
        _at_weight(config, state, percent, now),
        phase="Paused",
        percent_seen=percent,
        reason=f"weight set by hand to {percent} %",
    )
    event = Event(
        "Normal",
        "ManualWeight",
        f"canary weight set by hand to {percent} % (was {state.weight} %): "
        f"release paused; resume continues from {percent} %",
    )
    return _decided(config, paused, now, event)


def on_annotations(
    config: ReleaseConfig, state: ReleaseState, percent: int | None, now: datetime
) -> Decision:
    """Everything the Service's annotations ask for: a hand-set weight first, then the action."""
    decision = on_manual_weight(config, state, percent, now)
    if config.action is None:
        return decision
    return decision.followed_by(on_action(config, decision.state, config.action, now))


# --- outcomes of checks ---------------------------------------------------------------------


def _first_step(
    config: ReleaseConfig, state: ReleaseState, now: datetime, why: str, reason: str
) -> Decision:
    """The schedule's first step: a match-only stage at 0 %, or the first weight."""
    if config.steps[0] != 0:
        return _go_above(config, state, 0, now, why, reason)
    staged = replace(_at_weight(config, state, 0, now), phase="Progressing", reason="")
    event = Event(
        "Normal",
        reason,
        f"{why}: only requests matching the canary's match go to it, weight 0 % "
        f"({_step_name(config, staged)}); next check in {config.interval_s:g} s",
    )
    return _decided(config, staged, now, event)


def _go_above(
    config: ReleaseConfig, state: ReleaseState, weight: int, now: datetime, why: str, reason: str
) -> Decision:
    """Move to the first step above `weight`: the next step, or 100 % and Succeeded."""
    index = next(i for i, step in enumerate(config.steps) if step > weight or step == 100)
    moved = _at_weight(config, state, config.steps[index], now)
    change = f"canary weight {state.weight} % -> {moved.weight} %"
    if moved.weight == 100:
        succeeded = replace(moved, phase="Succeeded", reason="")
        event = Event(
            "Normal",
            "Succeeded",
            f"{why}: {change}; release succeeded (the canary becomes the "
            "default upstream when the stable Service leaves)",
        )
        return _decided(config, succeeded, now, event, outcome="succeeded")
    progressing = replace(moved, phase="Progressing", reason="")
    event = Event(
        "Normal",
        reason,
        f"{why}: {change} ({_step_name(config, progressing)}); "
        f"next check in {config.interval_s:g} s",
    )
    return _decided(config, progressing, now, event)


def _failed(
    config: ReleaseConfig, state: ReleaseState, check: CheckResult, now: datetime
) -> Decision:
    failures = state.failures + 1
    counted = replace(state, failures=failures)
    analysis = Event(
        "Warning",
        "AnalysisFailed",
        f"analysis failed: {check.message} "
        f"(failed check {failures} of {config.failure_limit} at {state.weight} %)",
    )
    if failures < config.failure_limit:
        return _decided(config, counted, now, analysis)
    why = f"{failures} failed checks at {state.weight} %, last: {check.message}"
    if config.on_failure == "pause":
        paused = replace(counted, phase="Paused", reason=f"paused after {why}")
        return _decided(
            config,
            paused,
            now,
            analysis,
            Event(
                "Warning",
                "Paused",
                f"release paused at {state.weight} % after {why}; resume, promote, abort or retry",
            ),
        )
    rolled_back = replace(
        _at_weight(config, counted, 0, now),
        phase="RolledBack",
        failures=failures,
        reason=f"rolled back after {why}",
    )
    return _decided(
        config,
        rolled_back,
        now,
        analysis,
        Event(
            "Warning",
            "RolledBack",
            f"canary weight {state.weight} % -> 0 % after {why}; retry starts the release again",
        ),
        outcome="rolled_back",
    )


def _inconclusive(
    config: ReleaseConfig, state: ReleaseState, check: CheckResult, now: datetime
) -> Decision:
    """no-data or error: hold the weight, count, and pause at the limit."""
    no_data = check.result == "no_data"
    count = (state.no_data if no_data else state.errors) + 1
    limit = config.nodata_limit if no_data else config.error_limit
    counted = replace(state, no_data=count) if no_data else replace(state, errors=count)
    what = "without enough data" if no_data else "in error"
    analysis = Event(
        "Warning",
        "AnalysisNoData" if no_data else "AnalysisError",
        f"{'no data' if no_data else 'analysis error'}: {check.message} "
        f"(check {count} of {limit} {what} at {state.weight} %; weight held)",
    )
    if count < limit:
        return _decided(config, counted, now, analysis)
    why = f"{count} checks {what} at {state.weight} %, last: {check.message}"
    paused = replace(counted, phase="Paused", reason=f"paused after {why}")
    return _decided(
        config,
        paused,
        now,
        analysis,
        Event(
            "Warning",
            "Paused",
            f"release paused at {state.weight} % after {why}; "
            "resume once the metrics are back, or promote, abort or retry",
        ),
    )


# --- manual actions -------------------------------------------------------------------------


def _promote(config: ReleaseConfig, state: ReleaseState, now: datetime) -> Decision:
    promoted = replace(
        _at_weight(config, state, 100, now), phase="Succeeded", reason="promoted by hand"
    )
    event = Event(
        "Normal", "Succeeded", f"promoted by hand: canary weight {state.weight} % -> 100 %"
    )
    return _decided(config, promoted, now, event, outcome="promoted")


def _abort(config: ReleaseConfig, state: ReleaseState, now: datetime) -> Decision:
    aborted = replace(_at_weight(config, state, 0, now), phase="Aborted", reason="aborted by hand")
    event = Event("Warning", "Aborted", f"aborted by hand: canary weight {state.weight} % -> 0 %")
    return _decided(config, aborted, now, event, outcome="aborted")


def _pause(config: ReleaseConfig, state: ReleaseState, now: datetime) -> Decision:
    paused = replace(state, phase="Paused", reason="paused by hand")
    return _decided(
        config,
        paused,
        now,
        Event("Normal", "Paused", f"release paused by hand at {state.weight} %"),
    )


def _resume(config: ReleaseConfig, state: ReleaseState, now: datetime) -> Decision:
    if state.weight in (0, 100):  # nothing to analyse at 0 %, nothing left to do at 100 %
        return _go_above(config, state, state.weight, now, "resumed", "Resumed")
    resumed = replace(_at_weight(config, state, state.weight, now), phase="Progressing", reason="")
    event = Event(
        "Normal",
        "Resumed",
        f"resumed at {state.weight} % ({_step_name(config, resumed)}); "
        f"next check in {config.interval_s:g} s",
    )
    return _decided(config, resumed, now, event)


def _retry(config: ReleaseConfig, state: ReleaseState, now: datetime) -> Decision:
    fresh = ReleaseState(
        "Progressing",
        0,
        state.weight,
        whole_seconds_up(now),
        percent_seen=state.percent_seen,
        last_action=state.last_action,
    )
    return _first_step(config, fresh, now, "release restarted", "Retried")


_ACTIONS = {
    "promote": (("Progressing", "Paused", "RolledBack", "Aborted"), _promote),
    "abort": (("Progressing", "Paused", "Succeeded"), _abort),
    "pause": (("Progressing",), _pause),
    "resume": (("Paused",), _resume),
    "retry": (("Paused", "RolledBack", "Aborted"), _retry),
}


# --- helpers --------------------------------------------------------------------------------


def _at_weight(
    config: ReleaseConfig, state: ReleaseState, weight: int, now: datetime
) -> ReleaseState:
    """`state` with a new weight: the step clock restarts and the step's counts are cleared."""
    step = next((i for i, step in enumerate(config.steps) if step >= weight), len(config.steps) - 1)
    return replace(
        state,
        weight=weight,
        step=step,
        step_started_at=whole_seconds_up(now),
        failures=0,
        errors=0,
        no_data=0,
    )


def _step_name(config: ReleaseConfig, state: ReleaseState) -> str:
    if config.steps[state.step] == state.weight:
        return f"step {state.step + 1} of {len(config.steps)}"
    return f"hand-set, before step {state.step + 1} of {len(config.steps)}"


def _decided(
    config: ReleaseConfig,
    state: ReleaseState,
    now: datetime,
    *events: Event,
    outcome: str | None = None,
) -> Decision:
    return Decision(state, events, check_due(config, state, now), outcome)


def _unchanged(config: ReleaseConfig, state: ReleaseState, now: datetime) -> Decision:
    return _decided(config, state, now)
