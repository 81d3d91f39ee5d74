"""Is the canary worse than the stable? Tests that tell evidence from noise, in pure stdlib.

A fixed threshold on a canary's error rate fails a release for one 5xx among 30 requests.
This module compares the canary with the stable the way an A/B test would, from the counts
Prometheus already has, and answers pass, fail or no_data ("inconclusive"). Nothing here does
I/O; `canaryctl.release.statistical` feeds it Prometheus numbers.

Both metrics are judged as a share of *bad* requests — 5xx answers, or requests slower than a
latency bound — so one test and one verdict rule serve both:
- Test (one-sided, H1: the canary's share is larger): Fisher's exact test — the hypergeometric
  tail, summed in log space away from the mode, so 10^6 requests cost microseconds — when a
  cell of the 2x2 table would hold fewer than 5 requests: the canary's bad or good requests
  expected at the stable's share (the null hypothesis), or the stable's observed ones (Cochran's
  rule); else the pooled two-proportion z-test. Taking the expectation from the stable alone,
  not from the pooled share, means that for a given stable the choice of test never changes as
  the canary's bad requests grow, so the p-value never rises with them.
- Effect: the difference of shares (canary minus stable) with Newcombe's hybrid score bounds
  (method 10; Wilson intervals per side), each bound one-sided at the confidence level.
- Verdict at confidence c (alpha = 1 - c) and minimum effect m (a difference that matters):
  pass when p >= alpha (no evidence that the canary is worse); fail when p < alpha and the
  lower bound of the difference is at least m (with confidence c, the canary is at least m
  worse); pass when the upper bound is below m (worse, but surely by less than m: it does not
  matter); otherwise no_data — worse, but not yet shown to be worse by m, so the check waits
  for more requests. One bad request among a few dozen therefore never fails a release unless
  the stable makes that share look significantly and materially different. A side without
  requests is no_data.
Latency uses histogram buckets: a request is slow when its bucket lies above the first bound at
or above the latency limit, so the counts are exact (no interpolation) and the test looks at the
tail, where a p99 lives; a rank test on the whole distribution would miss a tail regression.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

Verdict = Literal["pass", "fail", "no_data"]
Method = Literal["fisher", "z"]
MIN_EXPECTED = 5  # Cochran's rule: below this expected count a cell needs the exact test
_NEGLIGIBLE = 1e-18  # relative size at which a tail sum stops


@dataclass(frozen=True)
class Counts:
    """Bad requests (`events`) among `requests` on one side."""

    events: int
    requests: int

    def __post_init__(self) -> None:
        if not 0 <= self.events <= self.requests:
            raise ValueError(f"need 0 <= events <= requests, got {self.events}/{self.requests}")

    @property
    def share(self) -> float:
        return self.events / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class ShareTest:
    """Canary vs stable: one-sided p-value and the difference of shares with its bounds."""

    canary: Counts
    stable: Counts
    confidence: float  # the level of the bounds, 1 - the significance level alpha
    method: Method
    p_value: float  # chance of a canary at least this bad if it were like the stable
    difference: float  # canary share minus stable share (fractions)
    low: float  # one-sided lower bound of the difference at the confidence level
    high: float  # one-sided upper bound

    def verdict(self, min_effect: float) -> Verdict:
        """pass: no evidence of worse; fail: surely at least `min_effect` worse; else no_data."""
        if not self.canary.requests or not self.stable.requests:
            return "no_data"
        if self.p_value >= 1 - self.confidence:
            return "pass"
        if self.low >= min_effect:
            return "fail"
        return "pass" if self.high < min_effect else "no_data"


def compare_shares(canary: Counts, stable: Counts, confidence: float) -> ShareTest:
    """Test whether the canary's share of bad requests is larger than the stable's."""
    if not canary.requests or not stable.requests:
        return ShareTest(canary, stable, confidence, "fisher", 1.0, 0.0, -1.0, 1.0)
    exact = _needs_exact_test(canary, stable)
    p_value = fisher_greater(canary, stable) if exact else z_test_greater(canary, stable)
    low, high = newcombe_bounds(canary, stable, NormalDist().inv_cdf(confidence))
    difference = canary.share - stable.share
    method: Method = "fisher" if exact else "z"
    return ShareTest(canary, stable, confidence, method, p_value, difference, low, high)


def _needs_exact_test(canary: Counts, stable: Counts) -> bool:
    rate = stable.share
    expected = (canary.requests * rate, canary.requests * (1 - rate))
    observed = (stable.events, stable.requests - stable.events)
    return min(*expected, *observed) < MIN_EXPECTED


def z_test_greater(canary: Counts, stable: Counts) -> float:
    """Pooled two-proportion z-test, one-sided; erfc keeps tiny p-values accurate."""
    pooled = (canary.events + stable.events) / (canary.requests + stable.requests)
    variance = pooled * (1 - pooled) * (1 / canary.requests + 1 / stable.requests)
    if variance <= 0:
        return 1.0  # every request on both sides alike: no evidence either way
    z = (canary.share - stable.share) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2))


def fisher_greater(canary: Counts, stable: Counts) -> float:
    """Fisher's exact test, one-sided: P(X >= canary.events), X hypergeometric on the margins."""
    total, bad = canary.requests + stable.requests, canary.events + stable.events
    drawn = canary.requests
    lowest, highest = max(0, drawn - (total - bad)), min(drawn, bad)
    mode = (drawn + 1) * (bad + 1) // (total + 2)
    table = (total, bad, drawn)
    if canary.events > mode:  # sum the upper tail outward: terms only shrink
        return min(1.0, _tail(table, canary.events, highest, +1))
    if canary.events <= lowest:
        return 1.0
    return min(1.0, max(0.0, 1.0 - _tail(table, canary.events - 1, lowest, -1)))


def _tail(table: tuple[int, int, int], start: int, end: int, step: int) -> float:
    """Sum of hypergeometric probabilities from `start` to `end`, moving away from the mode."""
    total, bad, drawn = table
    term = math.exp(_log_hypergeometric(table, start))
    tail, k = 0.0, start
    while True:
        tail += term
        if k == end or term <= tail * _NEGLIGIBLE:
            return tail
        if step > 0:  # p(k+1)/p(k) for the hypergeometric distribution
            term *= (bad - k) * (drawn - k) / ((k + 1) * (total - bad - drawn + k + 1))
        else:
            term *= k * (total - bad - drawn + k) / ((bad - k + 1) * (drawn - k + 1))
        k += step


def _log_hypergeometric(table: tuple[int, int, int], k: int) -> float:
    total, bad, drawn = table
    return _log_choose(bad, k) + _log_choose(total - bad, drawn - k) - _log_choose(total, drawn)


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def wilson_interval(counts: Counts, z: float) -> tuple[float, float]:
    """Wilson score interval for one share; each bound at the one-sided level of `z`."""
    n, share = counts.requests, counts.share
    if not n:
        return 0.0, 1.0
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_bounds(canary: Counts, stable: Counts, z: float) -> tuple[float, float]:
    """Newcombe's hybrid score bounds (method 10) on canary share minus stable share."""
    canary_low, canary_high = wilson_interval(canary, z)
    stable_low, stable_high = wilson_interval(stable, z)
    difference = canary.share - stable.share
    below = math.hypot(canary.share - canary_low, stable_high - stable.share)
    above = math.hypot(canary_high - canary.share, stable.share - stable_low)
    return difference - below, difference + above


# --- latency from Prometheus histogram buckets ---------------------------------------------

Buckets = Mapping[float, float]  # upper bound `le` (+inf included) -> cumulative count


def bound_at_or_above(bounds: Iterable[float], limit: float) -> float | None:
    """The first finite bucket bound at or above `limit`; None when every bound is below it."""
    return min((le for le in bounds if limit <= le < math.inf), default=None)


def slow_counts(buckets: Buckets, bound: float) -> Counts:
    """Requests above the bucket bound `bound`, out of all (the +Inf bucket or the largest)."""
    cumulative = _cumulative(buckets)
    total = cumulative[-1][1] if cumulative else 0
    fast = max((count for le, count in cumulative if le <= bound), default=0)
    return Counts(total - fast, total)


def quantile(buckets: Buckets, q: float) -> float | None:
    """`histogram_quantile` as Prometheus computes it: linear within the bucket; None if empty."""
    cumulative = _cumulative(buckets)
    if not cumulative or cumulative[-1][1] == 0:
        return None
    rank = q * cumulative[-1][1]
    lower, below = 0.0, 0
    for le, count in cumulative:
        if count >= rank:
            if le == math.inf:
                return lower
            share = (rank - below) / (count - below) if count > below else 1.0
            return lower + (le - lower) * share
        lower, below = le, count
    return lower


def whole(estimate: float) -> int:
    """A count estimated by Prometheus's `increase()` (19.6), rounded half up, never negative."""
    return max(0, math.floor(estimate + 0.5))


def _cumulative(buckets: Buckets) -> list[tuple[float, int]]:
    """Sorted (le, count) with counts made whole and non-decreasing (estimates can wobble)."""
    result: list[tuple[float, int]] = []
    for le in sorted(buckets):
        count = whole(buckets[le])
        result.append((le, max(count, result[-1][1]) if result else count))
    return result
