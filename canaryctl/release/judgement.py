"""How one check counts: metrics, the step hook, the observed split and the promote gate.

`canaryctl.release.decide` applies a check; this module says what the check *is* once
everything observed for it is weighed, as pure functions of (settings, state, check):

- Step hook: its answer is part of the check. The check fails if the metrics or the hook
  fail; else it is in error if either is (a hook that does not answer is an error, never a
  failure); else it is what the metrics say (pass or no-data).
- Observed split: the canary's share of the application's requests over the window, from the
  gateway's own counters, against the configured weight ± `canary-split-tolerance` points.
  `outside` only when the share's bounds at the release's confidence (Wilson score) lie
  wholly outside the band; `within` when the share itself is inside it; otherwise, or with
  fewer requests than `canary-min-requests`, `unsure`: no judgement, never a false mismatch.
  Consecutive `outside` checks are counted (`within` resets, `unsure` leaves the count); at
  SPLIT_MISMATCH_CHECKS the mismatch is persistent: a `SplitMismatch` Warning. With
  `canary-on-split-mismatch: hold` a passing check whose split is `outside` does not leave the
  step (held, checked again after an interval); it is never a failure.
- Promote gate: asked only when the check passed and would take the release to 100 %
  (`wants_gate`, which the reconciler's observe step consults). Yes: promote. No: hold at the
  last step, asked again after each interval. No answer: the check is in error.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from statistics import NormalDist

from canaryctl.release.config import ReleaseConfig
from canaryctl.release.observations import HookKind, HookResult, SplitCheck
from canaryctl.release.state import CheckOutcome, CheckResult, ReleaseState
from canaryctl.release.statistics import Counts, whole, wilson_interval

SPLIT_MISMATCH_CHECKS = 2  # consecutive checks outside tolerance that make a mismatch persistent
HOOK_NAMES = {"pre": "pre-release hook", "step": "step hook", "promote": "promote gate"}


@dataclass(frozen=True)
class Judgement:
    """A check as the release counts it."""

    check: CheckResult  # result and message with the hooks and the judged split folded in
    mismatches: int  # consecutive checks with the split outside tolerance, this one included
    hold: str = ""  # why a passing check does not leave the step; "" when it may
    hold_reason: str = ""  # the Event reason of the hold: StepHeld or PromotionHeld
    reaches_gate: bool = False  # the check passed and would promote: the gate decides
    warning: str = ""  # a SplitMismatch Warning's message, when the mismatch became persistent


def judge(config: ReleaseConfig, state: ReleaseState, check: CheckResult) -> Judgement:
    """The check made at `state` (the release before it), with everything weighed."""
    judged = _before_gate(config, state, check)
    return _with_gate(state, judged) if judged.reaches_gate else judged


def wants_gate(config: ReleaseConfig, state: ReleaseState, check: CheckResult) -> bool:
    """Whether the promote gate must be asked about `check` (made without its answer yet)."""
    return _before_gate(config, state, check).reaches_gate


def answer(check: CheckResult, hook: HookKind) -> HookResult | None:
    """The answer of `hook` recorded in `check`, if it was asked."""
    return next((result for result in check.hooks if result.hook == hook), None)


def hook_text(result: HookResult) -> str:
    return f"{HOOK_NAMES.get(result.hook, result.hook + ' hook')} {result.message}"


# --- the parts ---------------------------------------------------------------------------------


def _before_gate(config: ReleaseConfig, state: ReleaseState, check: CheckResult) -> Judgement:
    combined = _with_step_hook(config, check)
    split = _judge_split(config, state, combined.split)
    if split is not None and split.verdict is not None:
        words = _words(split, config.min_requests)
        combined = replace(combined, split=split, message=f"{combined.message}; {words}")
    mismatches = _mismatches(config, state.split_mismatches, split)
    persistent = mismatches == SPLIT_MISMATCH_CHECKS and mismatches > state.split_mismatches
    warning = _mismatch_warning(config, split, mismatches) if persistent else ""
    judged = Judgement(combined, mismatches, warning=warning)
    if combined.result != "pass":
        return judged
    if split is not None and split.verdict == "outside" and config.on_split_mismatch == "hold":
        words = _words(split, config.min_requests)
        why = f"analysis passed, but {words}: weight held at {state.weight} %"
        return replace(judged, hold=why, hold_reason="StepHeld")
    promotes = next((step for step in config.steps if step > state.weight), 100) == 100
    return replace(judged, reaches_gate=promotes and config.promote_gate is not None)


def _with_step_hook(config: ReleaseConfig, check: CheckResult) -> CheckResult:
    """The metrics check and the step hook's answer, as one check."""
    if config.step_hook is None:
        return check
    hook = answer(check, "step")
    if hook is None:
        hook = HookResult("step", "error", f"{config.step_hook} was not asked")
    results = (check.result, hook.result)
    outcome: CheckOutcome = (
        "fail" if "fail" in results else "error" if "error" in results else check.result
    )
    parts = [check.message, hook_text(hook)]
    if hook.result == outcome and check.result != outcome:
        parts.reverse()  # the cause first
    return replace(check, result=outcome, message="; ".join(parts))


def _with_gate(state: ReleaseState, judged: Judgement) -> Judgement:
    """The promote gate's answer: yes promotes, no holds, nothing is an error."""
    check = judged.check
    gate = answer(check, "promote") or HookResult("promote", "error", "was not asked")
    said = replace(check, message=f"{check.message}; {hook_text(gate)}")
    if gate.result == "pass":
        return replace(judged, check=said)
    if gate.result == "fail":
        why = f"{hook_text(gate)}: holding at {state.weight} %, the last step before 100 %"
        return replace(judged, check=said, hold=why, hold_reason="PromotionHeld")
    errored = replace(said, result="error", message=f"{hook_text(gate)}; {check.message}")
    return replace(judged, check=errored, reaches_gate=False)


def _judge_split(
    config: ReleaseConfig, state: ReleaseState, split: SplitCheck | None
) -> SplitCheck | None:
    """`split` with its verdict against the weight the window ran at."""
    if split is None or config.split_tolerance is None:
        return split
    tolerance, expected = config.split_tolerance, state.weight
    judged = replace(split, expected=expected, tolerance=tolerance, verdict="unsure")
    canary = whole(split.canary_requests)
    total = canary + whole(split.stable_requests)
    if total < config.min_requests:
        return judged
    z = NormalDist().inv_cdf(config.confidence)
    low, high = (100 * bound for bound in wilson_interval(Counts(canary, total), z))
    judged = replace(judged, low=round(low, 2), high=round(high, 2))
    if low > expected + tolerance or high < expected - tolerance:
        return replace(judged, verdict="outside")
    share = 100 * canary / total
    return replace(judged, verdict="within") if abs(share - expected) <= tolerance else judged


def _mismatches(config: ReleaseConfig, before: int, split: SplitCheck | None) -> int:
    if config.split_tolerance is None:
        return 0
    verdict = split.verdict if split is not None else None
    return before + 1 if verdict == "outside" else 0 if verdict == "within" else before


def _words(split: SplitCheck, minimum: int) -> str:
    """ "the canary served 41.2 % of 600 requests, outside 20 % ± 5 (at least 37.3 %)" """
    total = whole(split.canary_requests) + whole(split.stable_requests)
    band = f"{split.expected} % ± {split.tolerance:g}"
    if split.low is None:  # too few requests
        return f"split not judged: {total} requests to the application, fewer than {minimum}"
    served = f"the canary served {split.share or 0.0:.1f} % of {total} requests"
    if split.verdict == "within":
        return f"{served} (configured {band})"
    if split.verdict == "outside":
        bound = (
            f"at least {split.low:.1f} %"
            if split.low > (split.expected or 0)
            else f"at most {split.high:.1f} %"
        )
        return f"{served}, outside {band} ({bound})"
    return f"{served}, off {band} but not surely ({split.low:.1f} to {split.high:.1f} %)"


def _mismatch_warning(config: ReleaseConfig, split: SplitCheck | None, checks: int) -> str:
    assert split is not None
    held = "; the step is held" if config.on_split_mismatch == "hold" else ""
    return (
        f"the data plane does not split as configured: {_words(split, config.min_requests)} in "
        f"{checks} "
        f"consecutive checks{held}"
    )
