"""What a release does next: pure functions of (settings, state, input, time), no I/O.

The controller feeds in what happened — a check result, a manual action, a hand-set
weight — together with the current time, and gets back a `Decision`: the new state (to
persist), the canary weight (to apply), Events (to record) and when to look again. Because
nothing here reads a clock or keeps memory, a controller restarted from the persisted state
decides exactly as one that never stopped.

Rules (the README's decision table; manual control is `canaryctl.release.actions`, how one
check counts — step hook, observed split, promote gate — is `canaryctl.release.judgement`):
- A release starts at the first step; with a pre-release hook it first waits at 0 % (no
  traffic) for the hook, asked at once: yes -> the first step; no -> Aborted at 0 %; no
  answer -> an error check (asked again after an interval, paused at `error_limit`).
- A check is due one interval after the step started
  (the last weight change); after a check that did not advance, one interval after that
  check. The analysis window always starts at the step start. A check that arrives early,
  or when the release is not progressing, is ignored, so a step is never shortened.
- pass: go to the first step above the current weight; reaching 100 % ends the release as
  Succeeded (the canary becomes the default upstream when the stable Service leaves).
- fail: counted; at `failure_limit` failed checks in the step, roll back to 0 % (RolledBack),
  or, with `on-failure: pause`, pause at the current weight.
- no-data / error: the weight is held and the check counted; at `nodata_limit` / `error_limit`
  the release pauses and says why. They never roll back.
- held: a check that passed but may not leave the step (the promote gate said no, or the
  observed split is off with `canary-on-split-mismatch: hold`) keeps the weight, counts
  nothing, and the next check comes an interval later. The reason is in the state and an
  Event (PromotionHeld, StepHeld).
- The rollback hook is told when the canary goes back to 0 % from a weight above it.
- Times are stored as whole seconds rounded up, so a step lasts at least its interval.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from canaryctl.release import judgement
from canaryctl.release.config import ReleaseConfig
from canaryctl.release.hooks import HookCall
from canaryctl.release.state import CheckResult, ReleaseState, whole_seconds_up

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to record on the canary Service.

    Reasons: StepAdvanced, AnalysisFailed, AnalysisNoData, AnalysisError, RolledBack, Paused,
    Resumed, Succeeded, Aborted, Retried, ManualWeight, ActionIgnored, StepHeld, PromotionHeld,
    SplitMismatch.
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
    notify: tuple[HookCall, ...] = ()  # hooks to tell once the decision is carried out

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
            self.notify + later.notify,
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
    return begin(config, fresh, now, "release started", "StepAdvanced")


def begin(
    config: ReleaseConfig,
    fresh: ReleaseState,
    now: datetime,
    why: str,
    reason: str,
    announce: bool = False,
) -> Decision:
    """A release (re)starting: at the first step, or at 0 % until the pre-release hook says yes.

    `announce`: say so in an Event even while waiting for the hook (a retry does; a start does
    not, as the hook's answer follows in the same reconcile).
    """
    if config.pre_hook is None:
        return first_step(config, fresh, now, why, reason)
    waiting = replace(fresh, weight=0, step=0, pending=True)
    message = f"{why}: asking the pre-release hook {config.pre_hook} before any traffic"
    events = (Event("Normal", reason, message),) if announce else ()
    return decided(config, waiting, now, *events)


def tells_rollback(before: ReleaseState | None, decision: Decision) -> bool:
    """Whether the rollback hook hears of `decision`: the canary went back to 0 % from traffic."""
    ended = decision.outcome in ("rolled_back", "aborted")
    return ended and before is not None and before.weight > 0


def check_due(config: ReleaseConfig, state: ReleaseState, now: datetime) -> float | None:
    """Seconds until the next check is due (0: now); None when the release is not progressing."""
    if state.phase != "Progressing":
        return None
    anchor = state.step_started_at
    if state.last_check_at is not None and state.last_check_at > anchor:
        anchor = state.last_check_at
    elif state.pending:  # the pre-release hook is asked at once
        return 0.0
    due = anchor + timedelta(seconds=config.interval_s)
    return max(0.0, (due - now).total_seconds())


def window_s(state: ReleaseState, now: datetime) -> float:
    """The analysis window of a check at `now`: everything since the last weight change."""
    return max(0.0, (now - state.step_started_at).total_seconds())


def on_check(
    config: ReleaseConfig, state: ReleaseState, check: CheckResult, now: datetime
) -> Decision:
    """Apply one check; ignored unless the release is progressing and the check is due."""
    if check_due(config, state, now) != 0:
        return unchanged(config, state, now)
    if state.pending:
        return _after_pre_hook(config, state, check, now)
    judged = judgement.judge(config, state, check)
    check = judged.check
    checked = replace(
        state,
        last_check=check,
        last_check_at=whole_seconds_up(now),
        split_mismatches=judged.mismatches,
        reason="",
    )
    warnings = (Event("Warning", "SplitMismatch", judged.warning),) if judged.warning else ()
    if check.result == "pass" and judged.hold:
        decision = _held(config, checked, judged.hold_reason, judged.hold, now)
    elif check.result == "pass":
        why = f"analysis passed ({check.message})"
        decision = go_above(config, checked, state.weight, now, why, "StepAdvanced")
    elif check.result == "fail":
        decision = _failed(config, checked, check, now)
    else:
        decision = _inconclusive(config, checked, check, now)
    return Decision(state, warnings).followed_by(decision)


# --- outcomes of checks ---------------------------------------------------------------------


def _after_pre_hook(
    config: ReleaseConfig, state: ReleaseState, check: CheckResult, now: datetime
) -> Decision:
    """The pre-release hook answered (or not): the first step, an abort at 0 %, or an error."""
    checked = replace(state, last_check=check, last_check_at=whole_seconds_up(now))
    if check.result == "pass":
        started = replace(checked, pending=False)
        return first_step(config, started, now, check.message, "StepAdvanced")
    if check.result != "fail":
        return _inconclusive(config, checked, check, now)
    why = f"aborted before any traffic: {check.message}"
    aborted = replace(checked, phase="Aborted", reason=why, pending=False)
    event = Event(
        "Warning",
        "Aborted",
        f"{check.message}: release aborted before any traffic, canary weight stays 0 %; "
        "retry asks the hook again",
    )
    return decided(config, aborted, now, event, outcome="aborted")


def _held(
    config: ReleaseConfig, state: ReleaseState, reason: str, why: str, now: datetime
) -> Decision:
    """A passing check that may not leave the step: the weight stays, nothing is counted."""
    held = replace(state, reason=why)
    message = f"{why}; checking again in {config.interval_s:g} s"
    return decided(config, held, now, Event("Normal", reason, message))


def first_step(
    config: ReleaseConfig, state: ReleaseState, now: datetime, why: str, reason: str
) -> Decision:
    """The schedule's first step: a match-only stage at 0 %, or the first weight."""
    if config.steps[0] != 0:
        return go_above(config, state, 0, now, why, reason)
    staged = replace(at_weight(config, state, 0, now), phase="Progressing", reason="")
    event = Event(
        "Normal",
        reason,
        f"{why}: only requests matching the canary's match go to it, weight 0 % "
        f"({step_name(config, staged)}); next check in {config.interval_s:g} s",
    )
    return decided(config, staged, now, event)


def go_above(
    config: ReleaseConfig, state: ReleaseState, weight: int, now: datetime, why: str, reason: str
) -> Decision:
    """Move to the first step above `weight`: the next step, or 100 % and Succeeded."""
    index = next(i for i, step in enumerate(config.steps) if step > weight or step == 100)
    moved = at_weight(config, state, config.steps[index], now)
    change = f"canary weight {state.weight} % -> {moved.weight} %"
    if moved.weight == 100:
        succeeded = replace(moved, phase="Succeeded", reason="")
        event = Event(
            "Normal",
            "Succeeded",
            f"{why}: {change}; release succeeded (the canary becomes the "
            "default upstream when the stable Service leaves)",
        )
        return decided(config, succeeded, now, event, outcome="succeeded")
    progressing = replace(moved, phase="Progressing", reason="")
    event = Event(
        "Normal",
        reason,
        f"{why}: {change} ({step_name(config, progressing)}); "
        f"next check in {config.interval_s:g} s",
    )
    return decided(config, progressing, now, event)


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
        return decided(config, counted, now, analysis)
    why = f"{failures} failed checks at {state.weight} %, last: {check.message}"
    if config.on_failure == "pause":
        paused = replace(counted, phase="Paused", reason=f"paused after {why}")
        return decided(
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
        at_weight(config, counted, 0, now),
        phase="RolledBack",
        failures=failures,
        reason=f"rolled back after {why}",
    )
    return decided(
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
        return decided(config, counted, now, analysis)
    why = f"{count} checks {what} at {state.weight} %, last: {check.message}"
    paused = replace(counted, phase="Paused", reason=f"paused after {why}")
    return decided(
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


# --- helpers --------------------------------------------------------------------------------


def at_weight(
    config: ReleaseConfig, state: ReleaseState, weight: int, now: datetime
) -> ReleaseState:
    """`state` with a new weight: the step clock restarts and the step's counts are cleared."""
    step = next((i for i, step in enumerate(config.steps) if step >= weight), len(config.steps) - 1)
    return replace(
        state,
        pending=state.pending and weight == 0,
        weight=weight,
        step=step,
        step_started_at=whole_seconds_up(now),
        failures=0,
        errors=0,
        no_data=0,
    )


def step_name(config: ReleaseConfig, state: ReleaseState) -> str:
    if config.steps[state.step] == state.weight:
        return f"step {state.step + 1} of {len(config.steps)}"
    return f"hand-set, before step {state.step + 1} of {len(config.steps)}"


def decided(
    config: ReleaseConfig,
    state: ReleaseState,
    now: datetime,
    *events: Event,
    outcome: str | None = None,
) -> Decision:
    return Decision(state, events, check_due(config, state, now), outcome)


def unchanged(config: ReleaseConfig, state: ReleaseState, now: datetime) -> Decision:
    return decided(config, state, now)
