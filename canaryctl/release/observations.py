"""What a check records beyond the metrics: the split users actually got, and hook answers.

A release check is more than an error rate and a latency. The gateway's own request counters
say which share of the application's requests the canary really served (`SplitCheck`), and
the release's HTTP hooks answer yes, no or nothing (`HookResult`). Both are plain data: the
reconciler's observe step measures them, `canaryctl.release.judgement` judges them, and they
persist inside the check in the status annotation. `to_dict` writes only what is there, so a
check without them stays byte-identical to what older controllers wrote; `*_from_dict` raise
TypeError / ValueError / KeyError on malformed input (the caller treats that as no state).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

SplitVerdict = Literal["within", "outside", "unsure"]
SPLIT_VERDICTS: tuple[SplitVerdict, ...] = ("within", "outside", "unsure")
HookKind = Literal["pre", "step", "promote", "rollback"]
HOOK_KINDS: tuple[HookKind, ...] = ("pre", "step", "promote", "rollback")
HookOutcome = Literal["pass", "fail", "error"]
HOOK_OUTCOMES: tuple[HookOutcome, ...] = ("pass", "fail", "error")


@dataclass(frozen=True)
class SplitCheck:
    """The application's requests over the check's window, by who served them.

    Counts are Prometheus estimates (`increase()`). The judged fields stay None until
    `canaryctl.release.judgement` compares the share with the configured weight.
    """

    canary_requests: float
    stable_requests: float
    expected: int | None = None  # the canary weight configured during the window, percent
    tolerance: float | None = None  # percentage points the share may differ from `expected`
    verdict: SplitVerdict | None = None  # within, outside, or unsure (too little evidence)
    low: float | None = None  # one-sided bounds of the share at the release's confidence, %
    high: float | None = None

    @property
    def total(self) -> float:
        return self.canary_requests + self.stable_requests

    @property
    def share(self) -> float | None:
        """The canary's share of the requests in percent; None without requests."""
        return 100.0 * self.canary_requests / self.total if self.total > 0 else None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "canary": self.canary_requests,
            "stable": self.stable_requests,
            "share": None if self.share is None else round(self.share, 2),
        }
        judged = {
            "expected": self.expected,
            "tolerance": self.tolerance,
            "verdict": self.verdict,
            "low": self.low,
            "high": self.high,
        }
        return data | {key: value for key, value in judged.items() if value is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitCheck:
        verdict = _optional(data.get("verdict"), _text)
        if verdict is not None and verdict not in SPLIT_VERDICTS:
            raise ValueError(f"unknown split verdict {verdict!r}")
        expected = _optional(data.get("expected"), _whole)
        return cls(
            canary_requests=_count(data["canary"]),
            stable_requests=_count(data["stable"]),
            expected=expected,
            tolerance=_optional(data.get("tolerance"), _count),
            verdict=verdict,
            low=_optional(data.get("low"), _count),
            high=_optional(data.get("high"), _count),
        )


@dataclass(frozen=True)
class HookResult:
    """One hook call's answer: pass (2xx), fail (any other answer) or error (no answer)."""

    hook: HookKind
    result: HookOutcome
    message: str  # for people: URL, status, an excerpt of the answer, attempts
    status: int | None = None  # the last HTTP status; None when nothing answered
    attempts: int = 1
    seconds: float = 0.0  # from the first attempt to the verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "result": self.result,
            "status": self.status,
            "attempts": self.attempts,
            "seconds": round(self.seconds, 3),
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HookResult:
        hook, result = _text(data["hook"]), _text(data["result"])
        if hook not in HOOK_KINDS or result not in HOOK_OUTCOMES:
            raise ValueError(f"unknown hook {hook!r} or result {result!r}")
        return cls(
            hook=hook,  # narrowed to HookKind by the check above
            result=result,  # narrowed to HookOutcome by the check above
            message=_text(data["message"]),
            status=_optional(data.get("status"), _whole),
            attempts=_whole(data["attempts"]),
            seconds=_count(data["seconds"]),
        )


def _text(value: Any) -> str:
    if type(value) is not str:
        raise TypeError("expected a string")
    return value


def _whole(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise TypeError("expected a whole number")
    return value


def _count(value: Any) -> float:
    """A finite number >= 0 (estimates of counts, percentages)."""
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise TypeError("expected a finite number >= 0")
    return float(value)


def _optional(value: Any, read) -> Any:
    return None if value is None else read(value)
