"""Manual control of a release: `canary-action` verbs and a hand-set weight, as pure functions.

People stay in charge of an automated release. `canaryctl.release.runner` applies what the
canary's annotations ask for before any check (`on_annotations`): a changed percentage first,
then a new `canary-action` value. The rules (the README's manual-control table):

- promote -> 100 %, Succeeded; abort -> 0 %, Aborted; pause -> Paused at the current weight;
  resume (from Paused) -> the current weight is analysed for a full interval with fresh
  counts, then the release moves to the first step above it (at 0 % it goes to the first
  step — through the pre-release hook when there is one and it has not said yes yet —, at
  100 % it succeeds); retry (from RolledBack, Aborted or Paused) -> start over, as a new
  release does. An action that does not apply is reported (ActionIgnored) and changes
  nothing. Each `canary-action` value is handled once.
- Hand-set weight: changing the percentage annotation during a release sets that weight and
  pauses the release there ("weight set by hand to N %"), whatever the phase. `resume` then
  continues from N: N itself is analysed first, so a hand-set weight is never skipped over
  unanalysed. Removing the annotation changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from canaryctl.release.config import Action, ReleaseConfig
from canaryctl.release.decide import (
    Decision,
    Event,
    at_weight,
    begin,
    decided,
    go_above,
    step_name,
    unchanged,
)
from canaryctl.release.state import ReleaseState, whole_seconds_up


def on_action(
    config: ReleaseConfig, state: ReleaseState, action: Action, now: datetime
) -> Decision:
    """Apply a manual command, once per distinct `canary-action` value."""
    if action.value == state.last_action:
        return unchanged(config, state, now)
    handled = replace(state, last_action=action.value)
    allowed, act = _ACTIONS[action.verb]
    if state.phase not in allowed:
        hint = " (use retry to start over)" if action.verb == "resume" and state.finished else ""
        event = Event(
            "Normal",
            "ActionIgnored",
            f"{action.verb} ignored: the release is {state.phase} at {state.weight} %{hint}",
        )
        return decided(config, handled, now, event)
    return act(config, handled, now)


def on_manual_weight(
    config: ReleaseConfig, state: ReleaseState, percent: int | None, now: datetime
) -> Decision:
    """A changed percentage annotation: that weight, by hand, and the release paused there."""
    if percent == state.percent_seen:
        return unchanged(config, state, now)
    if percent is None:
        return unchanged(config, replace(state, percent_seen=None), now)
    paused = replace(
        at_weight(config, state, percent, now),
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
    return decided(config, paused, now, event)


def on_annotations(
    config: ReleaseConfig, state: ReleaseState, percent: int | None, now: datetime
) -> Decision:
    """Everything the Service's annotations ask for: a hand-set weight first, then the action."""
    decision = on_manual_weight(config, state, percent, now)
    waiting = decision.state.pending and decision.state.phase == "Progressing"
    if waiting and config.pre_hook is None:  # the pre-release hook was removed while waiting
        started = replace(decision.state, pending=False)
        decision = decision.followed_by(
            go_above(config, started, 0, now, "pre-release hook removed", "StepAdvanced")
        )
    if config.action is None:
        return decision
    return decision.followed_by(on_action(config, decision.state, config.action, now))


# --- the verbs -------------------------------------------------------------------------------


def _promote(config: ReleaseConfig, state: ReleaseState, now: datetime) -> Decision:
    promoted = replace(
        at_weight(config, state, 100, now), phase="Succeeded", reason="promoted by hand"
    )
    event = Event(
        "Normal", "Succeeded", f"promoted by hand: canary weight {state.weight} % -> 100 %"
    )
    return decided(config, promoted, now, event, outcome="promoted")


def _abort(config: ReleaseConfig, state: ReleaseState, now: datetime) -> Decision:
    aborted = replace(at_weight(config, state, 0, now), phase="Aborted", reason="aborted by hand")
    event = Event("Warning", "Aborted", f"aborted by hand: canary weight {state.weight} % -> 0 %")
    return decided(config, aborted, now, event, outcome="aborted")


def _pause(config: ReleaseConfig, state: ReleaseState, now: datetime) -> Decision:
    paused = replace(state, phase="Paused", reason="paused by hand")
    return decided(
        config,
        paused,
        now,
        Event("Normal", "Paused", f"release paused by hand at {state.weight} %"),
    )


def _resume(config: ReleaseConfig, state: ReleaseState, now: datetime) -> Decision:
    if state.pending and config.pre_hook is not None:  # no yes yet: ask again, still at 0 %
        waiting = replace(at_weight(config, state, 0, now), phase="Progressing", reason="")
        asking = f"resumed: asking the pre-release hook {config.pre_hook}"
        event = Event("Normal", "Resumed", asking)
        return decided(config, waiting, now, event)
    if state.weight in (0, 100):  # nothing to analyse at 0 %, nothing left to do at 100 %
        return go_above(config, state, state.weight, now, "resumed", "Resumed")
    resumed = replace(at_weight(config, state, state.weight, now), phase="Progressing", reason="")
    event = Event(
        "Normal",
        "Resumed",
        f"resumed at {state.weight} % ({step_name(config, resumed)}); "
        f"next check in {config.interval_s:g} s",
    )
    return decided(config, resumed, now, event)


def _retry(config: ReleaseConfig, state: ReleaseState, now: datetime) -> Decision:
    fresh = ReleaseState(
        "Progressing",
        0,
        state.weight,
        whole_seconds_up(now),
        percent_seen=state.percent_seen,
        last_action=state.last_action,
    )
    return begin(config, fresh, now, "release restarted", "Retried", announce=True)


_ACTIONS = {
    "promote": (("Progressing", "Paused", "RolledBack", "Aborted"), _promote),
    "abort": (("Progressing", "Paused", "Succeeded"), _abort),
    "pause": (("Progressing",), _pause),
    "resume": (("Paused",), _resume),
    "retry": (("Paused", "RolledBack", "Aborted"), _retry),
}
