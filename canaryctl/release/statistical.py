"""Classify a check with `canary-compare: statistical`: the canary tested against the stable.

`canaryctl.release.analysis` gathers what Prometheus says about each side (request and 5xx
counts, latency histogram buckets); this module runs the tests of
`canaryctl.release.statistics` on them and turns the verdicts into one `CheckResult` whose
metrics carry the evidence (p-value, bounds, counts) and whose message says it in words.

A check is fail when any metric fails, no_data when any is inconclusive or cannot be judged
(the stable served too few requests, no latency buckets), and pass only when every metric
passes. Too little traffic never fails a release: it is no_data, as in the other modes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from canaryctl.release.config import ReleaseConfig
from canaryctl.release.state import CheckOutcome, CheckResult, Evidence, MetricCheck
from canaryctl.release.statistics import (
    Counts,
    bound_at_or_above,
    compare_shares,
    quantile,
    slow_counts,
    whole,
)

_LABELS = {"error_rate": "error rate", "slow_requests": "requests slower than {bound:g} ms"}


@dataclass(frozen=True)
class Sample:
    """One side over the window, as Prometheus estimated it."""

    requests: float
    errors: float = 0.0
    buckets: Mapping[float, float] | None = None  # cumulative counts per `le` (ms); None: none


def classify(
    config: ReleaseConfig, canary: Sample, stable: Sample | None, window: int
) -> CheckResult:
    """The check's result; the canary has already served at least the minimum requests."""
    over = f"over {window} s ({whole(canary.requests)} requests)"
    stable_requests = whole(stable.requests) if stable else 0
    if stable is None or stable_requests < config.min_requests:
        return CheckResult(
            "no_data",
            f"{stable_requests} requests to the stable, fewer than the minimum "
            f"{config.min_requests}: nothing to compare the canary with {over}",
            canary.requests,
            window,
        )
    judged = [_error_rate(config, canary, stable)]
    gaps: list[str] = []  # why a metric could not be judged
    if config.max_latency_p99_ms is not None:
        latency = _slow_requests(config, canary, stable, config.max_latency_p99_ms)
        if isinstance(latency, str):
            gaps.append(latency)
        else:
            judged.append(latency)
    verdicts = [_verdict(check) for check, _ in judged]
    result: CheckOutcome = (
        "fail" if "fail" in verdicts else "no_data" if gaps or "no_data" in verdicts else "pass"
    )
    shown = [text for check, text in judged if result == "pass" or _verdict(check) == result]
    if result == "no_data":
        shown += gaps
    return CheckResult(
        result, f"{'; '.join(shown)} {over}", canary.requests, window, tuple(c for c, _ in judged)
    )


def _error_rate(config: ReleaseConfig, canary: Sample, stable: Sample) -> tuple[MetricCheck, str]:
    return _judge(config, "error_rate", _counts(canary), _counts(stable))


def _slow_requests(
    config: ReleaseConfig, canary: Sample, stable: Sample, limit_ms: float
) -> tuple[MetricCheck, str] | str:
    """Share of requests above the first bucket bound at or above the latency limit."""
    if not canary.buckets or not stable.buckets:
        return f"no latency buckets for the {'stable' if canary.buckets else 'canary'}"
    bound = bound_at_or_above(canary.buckets.keys() & stable.buckets.keys(), limit_ms)
    if bound is None:
        return f"no latency bucket bound at or above {limit_ms:g} ms"
    check, text = _judge(
        config,
        "slow_requests",
        slow_counts(canary.buckets, bound),
        slow_counts(stable.buckets, bound),
        bound,
    )
    p99s = [quantile(side, 0.99) for side in (canary.buckets, stable.buckets)]
    if None not in p99s:
        text += f"; p99 about {p99s[0]:.0f} ms vs {p99s[1]:.0f} ms"
    return check, text


def _judge(
    config: ReleaseConfig,
    name: str,
    canary: Counts,
    stable: Counts,
    bound: float | None = None,
) -> tuple[MetricCheck, str]:
    test = compare_shares(canary, stable, config.confidence)
    verdict = test.verdict(config.min_effect / 100)
    evidence = Evidence(
        verdict,
        test.method,
        test.p_value,
        100 * test.low,
        100 * test.high,
        canary.events,
        canary.requests,
        stable.events,
        stable.requests,
        config.confidence,
        config.min_effect,
        bound,
    )
    rate, base = 100 * canary.share, 100 * stable.share
    check = MetricCheck(name, rate, base + config.min_effect, verdict != "fail", base, evidence)
    return check, _describe(_LABELS[name].format(bound=bound), evidence, rate, base)


def _describe(label: str, evidence: Evidence, rate: float, base: float) -> str:
    """ "error rate 12.0 % (12/100) vs stable 1.0 % (10/1000): 11.0 points worse, p = ..." """
    counts = (
        f"{label} {rate:.1f} % ({evidence.canary_bad}/{evidence.canary_requests}) vs stable "
        f"{base:.1f} % ({evidence.stable_bad}/{evidence.stable_requests})"
    )
    test = f"p = {evidence.p_value:.2g} ({'Fisher exact' if evidence.method == 'fisher' else 'z'})"
    level = f"{100 * evidence.confidence:g} % confidence"
    alpha = f"{1 - evidence.confidence:.3g}"
    if evidence.verdict == "fail":
        return (
            f"{counts}: {rate - base:.1f} points worse (at least {evidence.low:.2f} at {level}), "
            f"{test} < {alpha}"
        )
    if evidence.verdict == "pass" and evidence.p_value >= 1 - evidence.confidence:
        return f"{counts}: no evidence that it is worse, {test} >= {alpha}"
    if evidence.verdict == "pass":
        return (
            f"{counts}: at most {evidence.high:.2f} points worse at {level} "
            f"(< {evidence.min_effect:g}), {test}"
        )
    return (
        f"{counts}: inconclusive, worse ({test} < {alpha}) by {evidence.low:.2f} to "
        f"{evidence.high:.2f} points at {level}; {evidence.min_effect:g} not yet shown"
    )


def _counts(sample: Sample) -> Counts:
    requests = whole(sample.requests)
    return Counts(min(whole(sample.errors), requests), requests)


def _verdict(check: MetricCheck) -> str | None:
    return check.evidence.verdict if check.evidence else None
