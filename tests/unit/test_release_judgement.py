"""Release judgement beyond metrics, as tables: pre hook, step hook, promote gate, rollback
notice, observed split. Each case runs the pure rules (`release.runner.Release.advance`, which
the decision calls) from the state a release is in, with the check its observe step made."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from canaryctl.gateway.model import Upstream
from canaryctl.release.actions import on_action
from canaryctl.release.config import Action, ReleaseConfig
from canaryctl.release.decide import Decision, check_due, start
from canaryctl.release.hooks import context_of
from canaryctl.release.judgement import SPLIT_MISMATCH_CHECKS, judge, wants_gate
from canaryctl.release.observations import HookResult, SplitCheck
from canaryctl.release.runner import Release, check_request
from canaryctl.release.state import CheckResult, ReleaseState

T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
HOOKS = "http://hooks.tools.svc:8080"
CONFIG = ReleaseConfig(steps=(5, 25, 50, 100), interval_s=60, error_limit=3)
CONTEXT = context_of("error-page", ("demo", "error-page-v2"), ("demo", "error-page-v1"), 4)
CANARY = Upstream("demo", "error-page-v2", "error-page-v2.demo.svc.cluster.local", 80)
STABLE = Upstream("demo", "error-page-v1", "error-page-v1.demo.svc.cluster.local", 80)

METRICS_PASS = CheckResult("pass", "error rate 0.0 % <= 1.0 % over 60 s (600 requests)", 600, 60)
METRICS_FAIL = CheckResult("fail", "error rate 30.0 % > 1.0 % over 60 s (600 requests)", 600, 60)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def hook(kind: str, result: str, status: int | None = None) -> HookResult:
    said = f"answered HTTP {status}" if status else "no answer within 10 s (9 attempts): timed out"
    return HookResult(kind, result, f"{HOOKS}/{kind} {said}", status)  # type: ignore[arg-type]


def with_hooks(check: CheckResult, *answers: HookResult) -> CheckResult:
    return replace(check, hooks=answers)


def reasons(decision: Decision) -> list[str]:
    return [event.reason for event in decision.events]


def release(config: ReleaseConfig, previous: ReleaseState | None) -> Release:
    return Release(config, previous, None, CONTEXT)


def at_weight(weight: int, config: ReleaseConfig = CONFIG, **fields) -> ReleaseState:
    """A progressing release whose step at `weight` started at T0."""
    step = config.steps.index(weight)
    return ReleaseState("Progressing", step, weight, T0, **fields)


def checked(config: ReleaseConfig, state: ReleaseState, check: CheckResult) -> Decision:
    """`check` delivered when it is due, as the reconciler delivers it."""
    due = check_due(config, state, T0)
    assert due is not None
    now = T0 + timedelta(seconds=due) if state.pending else due_at(config, state)
    return release(config, state).advance(check, now)


def due_at(config: ReleaseConfig, state: ReleaseState) -> datetime:
    anchor = max(state.step_started_at, state.last_check_at or state.step_started_at)
    return anchor + timedelta(seconds=config.interval_s)


# --- pre-release hook -------------------------------------------------------------------------

PRE = replace(CONFIG, pre_hook=f"{HOOKS}/pre")


def test_a_release_with_a_pre_hook_waits_at_0_percent_and_asks_it_at_once():
    waiting = start(PRE, T0)
    assert (waiting.state.weight, waiting.state.pending, waiting.events) == (0, True, ())
    request = check_request(release(PRE, None), "error-page", CANARY, STABLE, T0)
    assert request is not None and request.pre is not None
    assert (request.step, request.gate) == (None, None)  # only the pre hook, nothing else
    assert request.pre.payload()["weight"] == 0 and request.pre.payload()["hook"] == "pre"


@pytest.mark.parametrize(
    "answer, phase, weight, events, outcome",
    [
        (hook("pre", "pass", 200), "Progressing", 5, ["StepAdvanced"], None),
        (hook("pre", "fail", 412), "Aborted", 0, ["Aborted"], "aborted"),
        (hook("pre", "error"), "Progressing", 0, ["AnalysisError"], None),
    ],
)
def test_the_pre_hooks_answer(answer, phase, weight, events, outcome):
    check = CheckResult(answer.result, f"pre-release hook {answer.message}", hooks=(answer,))
    decision = release(PRE, None).advance(check, T0)
    assert (decision.state.phase, decision.weight, reasons(decision)) == (phase, weight, events)
    assert decision.outcome == outcome and decision.notify == ()  # no traffic: nothing to tell
    assert decision.state.pending == (answer.result == "error")
    assert decision.state.last_check == check


def test_a_failed_pre_hook_aborts_before_any_step_and_retry_asks_it_again():
    no = hook("pre", "fail", 412)
    aborted = release(PRE, None).advance(CheckResult("fail", no.message, hooks=(no,)), T0).state
    assert "StepAdvanced" not in reasons(release(PRE, None).advance(CheckResult("fail", ""), T0))
    retried = on_action(PRE, aborted, Action("retry", "retry@1"), at(5))
    assert (retried.state.phase, retried.weight, retried.state.pending) == ("Progressing", 0, True)
    assert reasons(retried) == ["Retried"] and "pre-release hook" in retried.events[0].message
    assert check_due(PRE, retried.state, at(5)) == 0


def test_an_unreachable_pre_hook_is_asked_again_each_interval_then_pauses_and_resume_asks():
    state = start(PRE, T0).state
    error = CheckResult("error", "pre-release hook: no answer", hooks=(hook("pre", "error"),))
    for count in range(1, PRE.error_limit + 1):
        decision = checked(PRE, state, error)
        state = decision.state
        assert (state.weight, state.errors) == (0, count)
    assert state.phase == "Paused" and "Paused" in reasons(decision)
    resumed = on_action(PRE, state, Action("resume", "resume@1"), at(1000))
    assert (resumed.state.phase, resumed.state.pending, resumed.weight) == ("Progressing", True, 0)
    assert check_due(PRE, resumed.state, at(1000)) == 0


# --- step hook --------------------------------------------------------------------------------

STEP = replace(CONFIG, step_hook=f"{HOOKS}/step")


@pytest.mark.parametrize(
    "metrics, answer, result, events",
    [
        (METRICS_PASS, hook("step", "pass", 200), "pass", ["StepAdvanced"]),
        (METRICS_PASS, hook("step", "fail", 500), "fail", ["AnalysisFailed"]),
        (METRICS_FAIL, hook("step", "pass", 200), "fail", ["AnalysisFailed"]),
        (METRICS_PASS, hook("step", "error"), "error", ["AnalysisError"]),  # hanging: not a fail
        (METRICS_FAIL, hook("step", "error"), "fail", ["AnalysisFailed"]),
    ],
)
def test_the_step_hook_counts_as_part_of_the_check(metrics, answer, result, events):
    decision = checked(STEP, at_weight(5), with_hooks(metrics, answer))
    assert decision.state.last_check.result == result and reasons(decision) == events
    assert answer.message in decision.state.last_check.message
    if result == "error":  # held and counted as an error, never as a failure
        assert (decision.weight, decision.state.failures, decision.state.errors) == (5, 0, 1)


def test_a_hook_that_failed_is_named_first_in_the_message():
    no = hook("step", "fail", 500)
    message = judge(STEP, at_weight(5), with_hooks(METRICS_PASS, no)).check.message
    assert message.startswith(f"step hook {no.message}")


# --- promote gate -----------------------------------------------------------------------------

GATE = replace(CONFIG, promote_gate=f"{HOOKS}/promote")


def test_the_gate_is_wanted_only_when_a_passing_check_would_promote():
    assert wants_gate(GATE, at_weight(50), METRICS_PASS)
    assert not wants_gate(GATE, at_weight(25), METRICS_PASS)  # the next step is not 100 %
    assert not wants_gate(GATE, at_weight(50), METRICS_FAIL)
    assert not wants_gate(CONFIG, at_weight(50), METRICS_PASS)  # no gate configured
    request = check_request(release(GATE, at_weight(50)), "error-page", CANARY, STABLE, at(60))
    assert request is not None and request.gate is not None and request.gate.hook == "promote"


def test_a_gate_that_says_no_holds_at_the_last_step_and_is_asked_again_each_interval():
    held = checked(GATE, at_weight(50), with_hooks(METRICS_PASS, hook("promote", "fail", 409)))
    state = held.state
    assert (state.phase, state.weight, reasons(held)) == ("Progressing", 50, ["PromotionHeld"])
    assert "holding at 50 %" in state.reason and "HTTP 409" in held.events[0].message
    assert (state.failures, state.errors, state.no_data) == (0, 0, 0)  # a hold counts nothing
    assert held.requeue_after == 60 and check_due(GATE, state, at(120)) == 0
    yes = checked(GATE, state, with_hooks(METRICS_PASS, hook("promote", "pass", 200)))
    assert (yes.state.phase, yes.weight, yes.outcome) == ("Succeeded", 100, "succeeded")
    assert yes.state.reason == ""


def test_a_gate_that_does_not_answer_is_an_error_check():
    decision = checked(GATE, at_weight(50), with_hooks(METRICS_PASS, hook("promote", "error")))
    assert decision.state.last_check.result == "error" and reasons(decision) == ["AnalysisError"]
    assert (decision.weight, decision.state.errors) == (50, 1)


# --- rollback hook ----------------------------------------------------------------------------

ROLLBACK = replace(CONFIG, rollback_hook=f"{HOOKS}/rollback", failure_limit=1)


def test_the_rollback_hook_is_told_after_a_rollback_with_the_release_context():
    decision = checked(ROLLBACK, at_weight(25), METRICS_FAIL)
    assert decision.state.phase == "RolledBack" and len(decision.notify) == 1
    payload = decision.notify[0].payload()
    assert payload["hook"] == "rollback" and payload["phase"] == "RolledBack"
    assert (payload["app"], payload["namespace"]) == ("error-page", "demo")
    assert (payload["canary"], payload["stable"], payload["weight"]) == (
        "error-page-v2",
        "error-page-v1",
        0,
    )
    assert payload["lastCheck"]["result"] == "fail" and payload["steps"] == 4


def test_the_rollback_hook_hears_of_an_abort_by_hand_but_not_of_a_pass():
    aborted = on_action(ROLLBACK, at_weight(25), Action("abort", "abort@1"), at(1))
    assert aborted.outcome == "aborted"
    config = replace(ROLLBACK, action=Action("abort", "abort@1"))
    assert release(config, at_weight(25)).advance(None, at(1)).notify != ()
    assert checked(ROLLBACK, at_weight(25), METRICS_PASS).notify == ()


# --- observed split ---------------------------------------------------------------------------


def split_check(canary: float, stable: float) -> CheckResult:
    return replace(METRICS_PASS, split=SplitCheck(canary, stable))


@pytest.mark.parametrize(
    "weight, canary, stable, verdict",
    [
        (25, 150, 450, "within"),  # 25.0 %
        (25, 180, 420, "within"),  # 30.0 %: at the edge of 25 ± 5
        (25, 300, 300, "outside"),  # 50 %: surely not 25 ± 5
        (25, 0, 600, "outside"),  # the canary gets nothing at all
        (25, 190, 410, "unsure"),  # 31.7 %: off, but 30 % is within its bounds
        (25, 5, 10, "unsure"),  # 15 requests: fewer than the minimum 20, no judgement
        (5, 0, 100, "within"),  # 0 % of 100 at 5 % ± 5
    ],
)
def test_the_observed_split_against_the_weight(weight, canary, stable, verdict):
    judged = judge(CONFIG, at_weight(weight), split_check(canary, stable))
    split = judged.check.split
    assert split is not None and split.verdict == verdict
    assert (split.expected, split.tolerance) == (weight, 5.0)
    assert judged.mismatches == (1 if verdict == "outside" else 0)
    assert judged.check.result == "pass" and not judged.hold  # a mismatch is never a failure


def test_too_few_requests_leave_the_mismatch_count_as_it_was():
    state = at_weight(25, split_mismatches=1)
    assert judge(CONFIG, state, split_check(2, 10)).mismatches == 1
    assert judge(CONFIG, state, split_check(150, 450)).mismatches == 0  # within resets
    assert judge(CONFIG, state, METRICS_PASS).mismatches == 1  # not measured: unchanged


def test_a_persistent_mismatch_warns_and_in_warn_mode_the_release_goes_on():
    first = checked(CONFIG, at_weight(5), split_check(60, 40))  # 60 % at 5 %
    assert reasons(first) == ["StepAdvanced"] and first.state.split_mismatches == 1
    second = checked(CONFIG, first.state, split_check(300, 300))  # 50 % at 25 %
    assert reasons(second) == ["SplitMismatch", "StepAdvanced"]
    assert second.events[0].type == "Warning"
    assert f"{SPLIT_MISMATCH_CHECKS} consecutive checks" in second.events[0].message
    assert "50.0 % of 600 requests" in second.events[0].message
    assert second.state.last_check.split.verdict == "outside"


def test_in_hold_mode_a_mismatched_step_is_held_not_failed_until_the_split_is_right():
    hold = replace(CONFIG, on_split_mismatch="hold")
    first = checked(hold, at_weight(25), split_check(300, 300))
    assert (first.weight, reasons(first), first.state.failures) == (25, ["StepHeld"], 0)
    assert "weight held at 25 %" in first.state.reason
    second = checked(hold, first.state, split_check(600, 600))
    assert reasons(second) == ["SplitMismatch", "StepHeld"] and second.weight == 25
    assert "the step is held" in second.events[0].message
    third = checked(hold, second.state, split_check(400, 1200))  # 25 %: right again
    assert reasons(third) == ["StepAdvanced"] and third.weight == 50
    assert third.state.split_mismatches == 0


def test_the_split_is_not_judged_when_turned_off():
    judged = judge(replace(CONFIG, split_tolerance=None), at_weight(25), split_check(300, 300))
    assert judged.check.split == SplitCheck(300, 300) and judged.mismatches == 0


def test_a_failing_check_records_the_split_but_still_fails():
    check = replace(METRICS_FAIL, split=SplitCheck(150, 450))
    decision = checked(replace(CONFIG, failure_limit=5), at_weight(25), check)
    assert reasons(decision) == ["AnalysisFailed"]
    assert decision.state.last_check.split.verdict == "within"
    assert "the canary served 25.0 % of 600 requests" in decision.events[0].message


# --- persisted state --------------------------------------------------------------------------


def test_new_fields_round_trip_and_old_documents_read_as_before():
    check = CheckResult(
        "pass",
        "m",
        600,
        60,
        split=SplitCheck(150.5, 449.5, 25, 5.0, "within", 21.9, 28.4),
        hooks=(HookResult("step", "pass", "ok", 200, 2, 0.25),),
    )
    state = replace(at_weight(25), last_check=check, last_check_at=T0, split_mismatches=1)
    assert ReleaseState.from_dict(state.to_dict()) == state
    pending = replace(start(PRE, T0).state)
    assert ReleaseState.from_dict(pending.to_dict()) == pending and pending.to_dict()["pending"]
    plain = replace(at_weight(25), last_check=METRICS_PASS, last_check_at=T0).to_dict()
    assert "pending" not in plain and "splitMismatch" not in plain["counts"]
    assert "split" not in plain["lastCheck"] and "hooks" not in plain["lastCheck"]
