"""Release decisions: schedule, checks, limits, manual control, restart safety (property-based)."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canaryctl.release.actions import on_action, on_annotations, on_manual_weight
from canaryctl.release.config import Action, ReleaseConfig
from canaryctl.release.decide import Decision, check_due, on_check, start, window_s
from canaryctl.release.state import CheckResult, MetricCheck, ReleaseState

T0 = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
CONFIG = ReleaseConfig(
    steps=(5, 10, 25, 50, 100), interval_s=60, failure_limit=2, error_limit=3, nodata_limit=3
)
PASS = CheckResult(
    "pass",
    "error rate 0.0 % <= 1.0 % over 60 s (120 requests)",
    120.0,
    60,
    (MetricCheck("error_rate", 0.0, 1.0, True),),
)
FAIL = CheckResult(
    "fail",
    "error rate 30.0 % > 1.0 % over 60 s (120 requests)",
    120.0,
    60,
    (MetricCheck("error_rate", 30.0, 1.0, False),),
)
NO_DATA = CheckResult(
    "no_data", "3 requests to the canary over 60 s, fewer than the minimum 20", 3.0, 60
)
ERROR = CheckResult(
    "error",
    "metrics query failed: cannot reach Prometheus at http://prom:9090: Connection refused",
    0.0,
    60,
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def reasons(decision: Decision) -> list[str]:
    return [event.reason for event in decision.events]


def progressing(config: ReleaseConfig = CONFIG) -> ReleaseState:
    """A release started before `config.action` was written (so the action is new to it)."""
    return start(replace(config, action=None), T0).state


def test_an_action_already_on_the_service_when_the_release_starts_is_history():
    config = replace(CONFIG, action=Action("pause", "pause@old"))
    state = start(config, T0).state
    assert state.last_action == "pause@old"
    assert on_annotations(config, state, None, at(1)).state.phase == "Progressing"


def check_at_due(
    state: ReleaseState, check: CheckResult, config: ReleaseConfig = CONFIG
) -> Decision:
    """Deliver `check` exactly when it is due."""
    anchor = max(state.step_started_at, state.last_check_at or state.step_started_at)
    return on_check(config, state, check, anchor + timedelta(seconds=config.interval_s))


# --- start and schedule ---------------------------------------------------------------------


def test_start_is_the_first_step_and_schedules_the_first_check():
    decision = start(CONFIG, at(0.25), percent_seen=10)
    state = decision.state
    assert (state.phase, state.step, state.weight, decision.weight) == ("Progressing", 0, 5, 5)
    assert state.step_started_at == at(1)  # rounded up: never shortens the step
    assert state.percent_seen == 10
    assert decision.requeue_after == pytest.approx(60.75)
    assert reasons(decision) == ["StepAdvanced"]
    assert "canary weight 0 % -> 5 % (step 1 of 5)" in decision.events[0].message


def test_a_schedule_of_only_100_succeeds_at_once():
    decision = start(ReleaseConfig(steps=(100,)), T0)
    assert (decision.state.phase, decision.weight, decision.outcome) == (
        "Succeeded",
        100,
        "succeeded",
    )


def test_check_is_due_one_interval_after_the_step_started():
    state = progressing()
    assert check_due(CONFIG, state, at(0)) == 60
    assert check_due(CONFIG, state, at(59.5)) == 0.5
    assert check_due(CONFIG, state, at(60)) == 0
    assert check_due(CONFIG, state, at(600)) == 0


def test_an_early_check_is_ignored_so_a_step_is_never_shortened():
    state = progressing()
    decision = on_check(CONFIG, state, PASS, at(59))
    assert decision.state == state and decision.events == () and decision.requeue_after == 1


def test_after_an_inconclusive_check_the_next_is_an_interval_later_windowed_from_the_step_start():
    state = on_check(CONFIG, progressing(), NO_DATA, at(60.5)).state
    assert state.last_check_at == at(61)
    assert check_due(CONFIG, state, at(61)) == 60
    assert check_due(CONFIG, state, at(121)) == 0
    assert window_s(state, at(121)) == 121


def test_checks_only_while_progressing():
    paused = replace(progressing(), phase="Paused")
    assert check_due(CONFIG, paused, at(1000)) is None
    assert on_check(CONFIG, paused, PASS, at(1000)).state == paused


# --- check outcomes -------------------------------------------------------------------------


def test_a_pass_advances_one_step_and_restarts_the_clock():
    decision = on_check(CONFIG, progressing(), PASS, at(60))
    state = decision.state
    assert (state.phase, state.step, state.weight) == ("Progressing", 1, 10)
    assert (
        state.step_started_at == at(60)
        and state.last_check == PASS
        and state.last_check_at == at(60)
    )
    assert decision.requeue_after == 60
    assert reasons(decision) == ["StepAdvanced"]
    assert decision.events[0].message == (
        "analysis passed (error rate 0.0 % <= 1.0 % over 60 s (120 requests)): "
        "canary weight 5 % -> 10 % (step 2 of 5); next check in 60 s"
    )


def test_passing_every_step_ends_at_100_succeeded():
    state, weights = progressing(), [5]
    while state.phase == "Progressing":
        decision = check_at_due(state, PASS)
        state = decision.state
        weights.append(decision.weight)
    assert weights == [5, 10, 25, 50, 100]
    assert (state.phase, decision.outcome, reasons(decision)) == (
        "Succeeded",
        "succeeded",
        ["Succeeded"],
    )
    assert decision.requeue_after is None


def test_a_failure_below_the_limit_holds_the_weight_and_counts():
    decision = check_at_due(progressing(), FAIL)
    assert (decision.state.phase, decision.weight, decision.state.failures) == ("Progressing", 5, 1)
    assert reasons(decision) == ["AnalysisFailed"] and decision.events[0].type == "Warning"
    assert "error rate 30.0 % > 1.0 %" in decision.events[0].message
    assert "failed check 1 of 2" in decision.events[0].message
    assert decision.requeue_after == 60


def test_at_the_failure_limit_the_release_rolls_back_to_zero_and_says_why():
    state = check_at_due(check_at_due(progressing(), PASS).state, FAIL).state
    decision = check_at_due(state, FAIL)
    assert (decision.state.phase, decision.weight, decision.outcome) == (
        "RolledBack",
        0,
        "rolled_back",
    )
    assert reasons(decision) == ["AnalysisFailed", "RolledBack"]
    assert decision.events[1].message.startswith(
        "canary weight 10 % -> 0 % after 2 failed checks at 10 %, last: error rate 30.0 % > 1.0 %"
    )
    assert "error rate 30.0 % > 1.0 %" in decision.state.reason
    assert decision.requeue_after is None


def test_failure_policy_pause_holds_the_weight_instead():
    config = replace(CONFIG, on_failure="pause")
    state = check_at_due(progressing(config), FAIL, config).state
    decision = check_at_due(state, FAIL, config)
    assert (decision.state.phase, decision.weight, decision.outcome) == ("Paused", 5, None)
    assert reasons(decision) == ["AnalysisFailed", "Paused"]
    assert decision.state.reason.startswith("paused after 2 failed checks at 5 %")


@pytest.mark.parametrize(
    "check, reason, counter, label",
    [
        (NO_DATA, "AnalysisNoData", "no_data", "without enough data"),
        (ERROR, "AnalysisError", "errors", "in error"),
    ],
)
def test_no_data_and_errors_hold_the_weight_then_pause_with_a_clear_reason(
    check, reason, counter, label
):
    state = progressing()
    for count in (1, 2):
        decision = check_at_due(state, check)
        state = decision.state
        assert (state.phase, state.weight, getattr(state, counter)) == ("Progressing", 5, count)
        assert reasons(decision) == [reason]
    decision = check_at_due(state, check)
    assert (decision.state.phase, decision.weight) == ("Paused", 5)
    assert reasons(decision) == [reason, "Paused"]
    assert decision.state.reason == f"paused after 3 checks {label} at 5 %, last: {check.message}"


@given(st.lists(st.sampled_from([NO_DATA, ERROR, PASS]), max_size=30))
def test_outages_and_quiet_traffic_never_roll_back(checks):
    state = progressing()
    for check in checks:
        if state.phase != "Progressing":
            break
        previous = state.weight
        state = check_at_due(state, check).state
        assert state.phase != "RolledBack" and state.weight >= previous


def test_counts_reset_on_the_next_step():
    state = check_at_due(
        check_at_due(check_at_due(progressing(), FAIL).state, NO_DATA).state, ERROR
    ).state
    assert (state.failures, state.no_data, state.errors) == (1, 1, 1)
    state = check_at_due(state, PASS).state
    assert (state.weight, state.failures, state.no_data, state.errors) == (10, 0, 0, 0)


# --- manual actions -------------------------------------------------------------------------


def act(state: ReleaseState, verb: str, seconds: float = 30, stamp: str = "") -> Decision:
    return on_action(CONFIG, state, Action(verb, verb + stamp), at(seconds))


def test_promote_jumps_to_100_and_succeeds():
    decision = act(progressing(), "promote")
    assert (decision.state.phase, decision.weight, decision.outcome) == (
        "Succeeded",
        100,
        "promoted",
    )
    assert reasons(decision) == ["Succeeded"] and decision.state.last_action == "promote"


def test_abort_goes_to_zero_and_stops():
    decision = act(check_at_due(progressing(), PASS).state, "abort", 90)
    assert (decision.state.phase, decision.weight, decision.outcome) == ("Aborted", 0, "aborted")
    assert decision.events[0].message == "aborted by hand: canary weight 10 % -> 0 %"
    assert check_due(CONFIG, decision.state, at(10_000)) is None


def test_pause_holds_and_resume_restarts_the_step_with_a_full_interval():
    paused = act(check_at_due(progressing(), FAIL).state, "pause", 70).state
    assert (paused.phase, paused.weight, paused.reason) == ("Paused", 5, "paused by hand")
    decision = act(paused, "resume", 500)
    resumed = decision.state
    assert (resumed.phase, resumed.weight, resumed.step, resumed.failures) == (
        "Progressing",
        5,
        0,
        0,
    )
    assert resumed.step_started_at == at(500) and decision.requeue_after == 60
    assert reasons(decision) == ["Resumed"]


def test_retry_starts_over_after_a_rollback():
    rolled_back = check_at_due(check_at_due(progressing(), FAIL).state, FAIL).state
    decision = act(rolled_back, "retry", 500)
    assert (decision.state.phase, decision.weight, decision.state.step) == ("Progressing", 5, 0)
    assert decision.state.failures == 0 and decision.state.last_check is None
    assert reasons(decision) == ["Retried"] and decision.requeue_after == 60


@pytest.mark.parametrize(
    "phase, verb",
    [
        ("Progressing", "resume"),
        ("Progressing", "retry"),
        ("Succeeded", "promote"),
        ("Succeeded", "pause"),
        ("RolledBack", "abort"),
        ("RolledBack", "resume"),
        ("Aborted", "pause"),
        ("Paused", "pause"),
    ],
)
def test_an_action_that_does_not_apply_is_reported_and_changes_nothing(phase, verb):
    state = replace(progressing(), phase=phase)
    decision = act(state, verb)
    assert decision.state == replace(state, last_action=verb)
    assert reasons(decision) == ["ActionIgnored"]
    assert f"{verb} ignored: the release is {phase}" in decision.events[0].message


def test_each_action_value_is_handled_once_and_a_new_stamp_repeats_it():
    rolled_back = check_at_due(check_at_due(progressing(), FAIL).state, FAIL).state
    retried = act(rolled_back, "retry", 200, "@1").state
    rolled_back_again = check_at_due(check_at_due(retried, FAIL).state, FAIL).state
    assert act(rolled_back_again, "retry", 400, "@1").state == rolled_back_again  # already handled
    assert act(rolled_back_again, "retry", 400, "@2").state.phase == "Progressing"


# --- hand-set weights -----------------------------------------------------------------------


def test_a_hand_set_weight_pauses_the_release_there():
    state = check_at_due(progressing(), PASS).state  # at 10 %
    decision = on_manual_weight(CONFIG, state, 30, at(90))
    assert (decision.state.phase, decision.weight, decision.state.percent_seen) == (
        "Paused",
        30,
        30,
    )
    assert decision.state.reason == "weight set by hand to 30 %"
    assert reasons(decision) == ["ManualWeight"]
    assert "release paused; resume continues from 30 %" in decision.events[0].message


def test_resume_after_a_hand_set_weight_analyses_it_then_goes_to_the_first_step_above():
    manual = on_manual_weight(CONFIG, progressing(), 30, at(10)).state
    resumed = act(manual, "resume", 100).state
    assert (resumed.phase, resumed.weight, resumed.step_started_at) == ("Progressing", 30, at(100))
    assert check_due(CONFIG, resumed, at(100)) == 60
    following = check_at_due(resumed, PASS).state
    assert following.weight == 50


@pytest.mark.parametrize("percent, weight, phase", [(0, 5, "Progressing"), (100, 100, "Succeeded")])
def test_resume_from_the_ends(percent, weight, phase):
    manual = on_manual_weight(CONFIG, progressing(), percent, at(10)).state
    decision = act(manual, "resume", 100)
    assert (decision.state.phase, decision.weight) == (phase, weight)


def test_an_unchanged_or_removed_percentage_changes_nothing():
    state = start(CONFIG, T0, percent_seen=10).state
    assert on_manual_weight(CONFIG, state, 10, at(5)).state == state
    removed = on_manual_weight(CONFIG, state, None, at(5))
    assert removed.state == replace(state, percent_seen=None) and removed.events == ()


def test_a_hand_set_weight_after_the_release_ended_pauses_it_too():
    succeeded = act(progressing(), "promote").state
    decision = on_manual_weight(CONFIG, succeeded, 40, at(100))
    assert (decision.state.phase, decision.weight) == ("Paused", 40)


def test_annotations_apply_the_weight_then_the_action():
    config = replace(CONFIG, action=Action("resume", "resume@x"))
    decision = on_annotations(config, progressing(config), 30, at(10))
    assert reasons(decision) == ["ManualWeight", "Resumed"]
    assert (decision.state.phase, decision.weight, decision.state.last_action) == (
        "Progressing",
        30,
        "resume@x",
    )
    again = on_annotations(config, decision.state, 30, at(20))
    assert again.state == decision.state and again.events == ()


# --- restart safety -------------------------------------------------------------------------

OUTCOMES = {"pass": PASS, "fail": FAIL, "no_data": NO_DATA, "error": ERROR}


def run_release(
    config: ReleaseConfig,
    outcomes: list[str],
    lateness: list[float],
    crashes: dict[int, tuple[float, float]],
) -> list[tuple[datetime, int, str]]:
    """Drive a release with checks answered from `outcomes`: (time, weight, phase) at each change.

    The controller checks `lateness[i]` seconds after check i is due.
    `crashes[i] = (fraction, downtime)`: before check i, the controller dies `fraction` of the way
    to the due time and comes back `downtime` seconds later with only the persisted state (a JSON
    round trip).
    """
    now = at(0.3)
    decision = start(config, now)
    trace = [(now, decision.weight, decision.state.phase)]
    state = decision.state
    for index, outcome in enumerate(outcomes):
        wait = check_due(config, state, now)
        if wait is None:
            break
        if index in crashes:
            fraction, downtime = crashes[index]
            now += timedelta(seconds=wait * fraction + downtime)
            state = ReleaseState.from_dict(json.loads(json.dumps(state.to_dict())))
            wait = check_due(config, state, now)
        now += timedelta(seconds=wait + lateness[index % len(lateness)])
        decision = on_check(config, state, OUTCOMES[outcome], now)
        if decision.weight != state.weight or decision.state.phase != state.phase:
            trace.append((now, decision.weight, decision.state.phase))
        state = decision.state
    return trace


@settings(max_examples=150, deadline=None)
@given(
    outcomes=st.lists(st.sampled_from(list(OUTCOMES)), min_size=1, max_size=25),
    lateness=st.lists(st.floats(0, 0.9), min_size=1, max_size=5),
    crash_points=st.dictionaries(
        st.integers(0, 24), st.tuples(st.floats(0, 1), st.floats(0, 500)), max_size=5
    ),
    interval=st.sampled_from([1, 5, 60, 90.5]),
)
def test_a_restarted_controller_never_skips_repeats_or_shortens_a_step(
    outcomes, lateness, crash_points, interval
):
    config = replace(CONFIG, interval_s=interval)
    uninterrupted = run_release(config, outcomes, lateness, {})
    instant_restarts = run_release(
        config, outcomes, lateness, dict.fromkeys(crash_points, (0.0, 0.0))
    )
    interrupted = run_release(config, outcomes, lateness, crash_points)
    assert instant_restarts == uninterrupted
    assert [change[1:] for change in interrupted] == [change[1:] for change in uninterrupted]
    for (earlier, _, phase), (later, _, _) in itertools.pairwise(interrupted):
        if phase == "Progressing":
            assert (later - earlier).total_seconds() >= interval
    downtime = sum(d for i, (_, d) in crash_points.items() if i < len(outcomes))
    slack = timedelta(
        seconds=downtime + len(crash_points) + 1
    )  # plus rounding to whole seconds per delay
    assert uninterrupted[-1][0] <= interrupted[-1][0] <= uninterrupted[-1][0] + slack
