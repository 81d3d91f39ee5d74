"""Where a release stands, in a form that survives a controller restart exactly.

The state lives on the canary Service, inside the `api7.cloud/canary-status` annotation
under the key `release`, so a controller killed at any moment resumes where it was: same
step, same step start, same counts. `to_dict()` / `from_dict()` round-trip exactly; any
missing or malformed input reads as None ("no release yet"), never as an exception.

Times are whole UTC seconds (`2024-06-01T12:00:05Z`); `canaryctl.release.decide` rounds
them up before storing, so rounding never makes a step shorter.

Fields added later (the observed split and hook answers of a check, the split-mismatch count,
`pending`) are written only when set, so an unchanged release keeps the exact document an
older controller wrote, and documents without them read as before.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from canaryctl.release.observations import HookResult, SplitCheck
from canaryctl.timestamps import format_utc, parse_utc

Phase = Literal["Progressing", "Paused", "Succeeded", "RolledBack", "Aborted"]
PHASES: tuple[Phase, ...] = ("Progressing", "Paused", "Succeeded", "RolledBack", "Aborted")
FINISHED: tuple[Phase, ...] = ("Succeeded", "RolledBack", "Aborted")
CheckOutcome = Literal["pass", "fail", "no_data", "error"]
CHECK_OUTCOMES: tuple[CheckOutcome, ...] = (
    "pass",
    "fail",
    "no_data",
    "error",
)  # = metrics.CHECK_RESULTS


@dataclass(frozen=True)
class Evidence:
    """The test behind a metric judged with compare=statistical (`canaryctl.release.statistics`).

    Shares and bounds are percent of requests: bad requests (5xx, or slower than `slower_than_ms`)
    on each side, and one-sided bounds at `confidence` on canary minus stable, in points.
    """

    verdict: CheckOutcome  # pass, fail or no_data (inconclusive)
    method: str  # "fisher" (exact) or "z"
    p_value: float  # one-sided: chance of a canary this bad if it were like the stable
    low: float
    high: float
    canary_bad: int
    canary_requests: int
    stable_bad: int
    stable_requests: int
    confidence: float
    min_effect: float  # percentage points
    slower_than_ms: float | None = None  # latency: the bucket bound above which a request is slow


@dataclass(frozen=True)
class MetricCheck:
    """One judged metric: its value, the limit it had to stay at or below, and the verdict."""

    name: str  # "error_rate" (percent), "latency_p99" (milliseconds) or "slow_requests" (percent)
    value: float
    threshold: float
    passed: bool
    stable: float | None = (
        None  # the stable's value the threshold was derived from (compare=stable)
    )
    evidence: Evidence | None = None  # compare=statistical only


@dataclass(frozen=True)
class CheckResult:
    """One analysis check of the canary, classified."""

    result: CheckOutcome
    message: str  # for people: values, thresholds, window and request count
    requests: float = 0.0  # canary requests in the window, as Prometheus estimated them
    window_s: int = 0
    metrics: tuple[MetricCheck, ...] = ()
    split: SplitCheck | None = None  # the application's requests by who served them
    hooks: tuple[HookResult, ...] = ()  # the hooks asked for this check, in order


@dataclass(frozen=True)
class ReleaseState:
    """One canary's release. `weight` is the canary share canaryctl wants on the gateway."""

    phase: Phase
    # index into the schedule of the current step, or of the next one above a hand-set weight
    step: int
    weight: int
    step_started_at: datetime  # last weight change: analysis windows start here
    failures: int = 0  # checks of the current step, by outcome
    errors: int = 0
    no_data: int = 0
    last_check: CheckResult | None = None
    last_check_at: datetime | None = None
    reason: str = (
        ""  # why the release is not progressing (paused, rolled back, ...); "" while progressing
    )
    percent_seen: int | None = (
        None  # the percentage annotation as last seen: a change is a hand-set weight
    )
    last_action: str | None = None  # the last `canary-action` value handled
    split_mismatches: int = 0  # consecutive checks whose observed split was outside tolerance
    pending: bool = False  # waiting for the pre-release hook's yes: weight 0, nothing analysed

    def __post_init__(self) -> None:
        for moment in (self.step_started_at, self.last_check_at):
            if moment is not None and (moment.tzinfo is None or moment.microsecond):
                raise ValueError(
                    f"release times must be timezone-aware whole seconds, got {moment!r}"
                )

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (compact keys as users read them in the status annotation)."""
        counts = {"fail": self.failures, "error": self.errors, "noData": self.no_data}
        if self.split_mismatches:
            counts["splitMismatch"] = self.split_mismatches
        data = {
            "phase": self.phase,
            "step": self.step,
            "weight": self.weight,
            "stepStartedAt": _format_time(self.step_started_at),
            "counts": counts,
            "lastCheck": None
            if self.last_check is None
            else check_to_dict(self.last_check, self.last_check_at),
            "reason": self.reason,
            "percentSeen": self.percent_seen,
            "lastAction": self.last_action,
        }
        return data | ({"pending": True} if self.pending else {})

    @classmethod
    def from_dict(cls, data: Any) -> ReleaseState | None:
        """The state `to_dict` wrote, or None when `data` is missing or malformed in any way."""
        try:
            return _state_from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def whole_seconds_up(moment: datetime) -> datetime:
    """`moment` in UTC, rounded up to a whole second."""
    if moment.tzinfo is None:
        raise ValueError("release times must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc if not utc.microsecond else utc.replace(microsecond=0) + timedelta(seconds=1)


def _format_time(moment: datetime | None) -> str | None:
    return None if moment is None else format_utc(moment)


def _parse_time(text: Any) -> datetime:
    return parse_utc(_typed(text, str))


def _typed(value: Any, kind: type) -> Any:
    """`value` when it is exactly of `kind` (bool is not an int here), else TypeError."""
    if type(value) is not kind:
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _number(value: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise TypeError("expected a finite number")
    return float(value)


def _count(value: Any) -> int:
    if _typed(value, int) < 0:
        raise ValueError("counts are never negative")
    return value


def _optional(value: Any, read) -> Any:
    return None if value is None else read(value)


def check_to_dict(check: CheckResult, at: datetime | None) -> dict[str, Any]:
    """A check as the status annotation (and a hook's request body) holds it."""
    data: dict[str, Any] = {
        "result": check.result,
        "at": _format_time(at),
        "message": check.message,
        "requests": check.requests,
        "windowSeconds": check.window_s,
        "metrics": [_metric_to_dict(m) for m in check.metrics],
    }
    if check.split is not None:  # absent, not null, so older documents stay byte-identical
        data["split"] = check.split.to_dict()
    if check.hooks:
        data["hooks"] = [hook.to_dict() for hook in check.hooks]
    return data


def _metric_to_dict(metric: MetricCheck) -> dict[str, Any]:
    data = {
        "name": metric.name,
        "value": metric.value,
        "threshold": metric.threshold,
        "passed": metric.passed,
        "stable": metric.stable,
    }
    if metric.evidence is not None:  # absent, not null, so older documents stay byte-identical
        data["evidence"] = _evidence_to_dict(metric.evidence)
    return data


def _evidence_to_dict(evidence: Evidence) -> dict[str, Any]:
    return {
        "verdict": evidence.verdict,
        "method": evidence.method,
        "pValue": evidence.p_value,
        "difference": {"low": evidence.low, "high": evidence.high},
        "canary": {"bad": evidence.canary_bad, "requests": evidence.canary_requests},
        "stable": {"bad": evidence.stable_bad, "requests": evidence.stable_requests},
        "confidence": evidence.confidence,
        "minEffect": evidence.min_effect,
        "slowerThanMs": evidence.slower_than_ms,
    }


def _evidence_from_dict(data: Mapping[str, Any]) -> Evidence:
    verdict = _typed(data["verdict"], str)
    if verdict not in CHECK_OUTCOMES:
        raise ValueError(f"unknown verdict {verdict!r}")
    difference, canary, stable = (
        _typed(data[key], dict) for key in ("difference", "canary", "stable")
    )
    return Evidence(
        verdict=verdict,
        method=_typed(data["method"], str),
        p_value=_number(data["pValue"]),
        low=_number(difference["low"]),
        high=_number(difference["high"]),
        canary_bad=_count(canary["bad"]),
        canary_requests=_count(canary["requests"]),
        stable_bad=_count(stable["bad"]),
        stable_requests=_count(stable["requests"]),
        confidence=_number(data["confidence"]),
        min_effect=_number(data["minEffect"]),
        slower_than_ms=_optional(data["slowerThanMs"], _number),
    )


def _check_from_dict(data: Mapping[str, Any]) -> CheckResult:
    result = _typed(data["result"], str)
    if result not in CHECK_OUTCOMES:
        raise ValueError(f"unknown check result {result!r}")
    metrics = tuple(
        MetricCheck(
            name=_typed(m["name"], str),
            value=_number(m["value"]),
            threshold=_number(m["threshold"]),
            passed=_typed(m["passed"], bool),
            stable=_optional(m["stable"], _number),
            evidence=_optional(m.get("evidence"), _evidence_from_dict),
        )
        for m in _typed(data["metrics"], list)
    )
    return CheckResult(
        result=result,
        message=_typed(data["message"], str),
        requests=_number(data["requests"]),
        window_s=_count(data["windowSeconds"]),
        metrics=metrics,
        split=_optional(data.get("split"), lambda value: SplitCheck.from_dict(_typed(value, dict))),
        hooks=tuple(
            HookResult.from_dict(_typed(hook, dict)) for hook in _typed(data.get("hooks", []), list)
        ),
    )


def _state_from_dict(data: Mapping[str, Any]) -> ReleaseState:
    phase = _typed(data["phase"], str)
    weight = _count(data["weight"])
    if phase not in PHASES or weight > 100:
        raise ValueError("phase or weight out of range")
    counts = _typed(data["counts"], dict)
    check = _optional(data["lastCheck"], lambda value: _typed(value, dict))
    return ReleaseState(
        phase=phase,
        step=_count(data["step"]),
        weight=weight,
        step_started_at=_parse_time(data["stepStartedAt"]),
        failures=_count(counts["fail"]),
        errors=_count(counts["error"]),
        no_data=_count(counts["noData"]),
        last_check=None if check is None else _check_from_dict(check),
        last_check_at=None if check is None else _optional(check["at"], _parse_time),
        reason=_typed(data["reason"], str),
        percent_seen=_optional(data["percentSeen"], _percent),
        last_action=_optional(data["lastAction"], lambda value: _typed(value, str)),
        split_mismatches=_count(counts.get("splitMismatch", 0)),
        pending=_typed(data.get("pending", False), bool),
    )


def _percent(value: Any) -> int:
    if _count(value) > 100:
        raise ValueError("percentages are 0-100")
    return value
