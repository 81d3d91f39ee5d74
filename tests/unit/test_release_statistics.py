"""The canary-vs-stable tests: textbook values, the required release cases, and properties.

Textbook values are quoted with their source; no scipy is involved anywhere. Shares are
fractions here (0.01 is 1 %), as in `canaryctl.release.statistics`.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from canaryctl.release.statistics import (
    Counts,
    bound_at_or_above,
    compare_shares,
    fisher_greater,
    newcombe_bounds,
    quantile,
    slow_counts,
    wilson_interval,
    z_test_greater,
)

Z_975 = 1.959963984540054  # two-sided 95 % intervals, as the textbooks print them
ONE_POINT = 0.01  # the default minimum effect: 1 percentage point


# --- textbook values --------------------------------------------------------------------------


def test_fisher_lady_tasting_tea():
    # Fisher (1935): 3 of 4 milk-first cups named right, 1 of 4 tea-first named milk-first.
    # One-sided p = (C(4,3)·C(4,1) + C(4,4)·C(4,0)) / C(8,4) = 17/70 = 0.2429.
    assert fisher_greater(Counts(3, 4), Counts(1, 4)) == pytest.approx(17 / 70, rel=1e-12)
    assert round(fisher_greater(Counts(3, 4), Counts(1, 4)), 4) == 0.2429


def test_fisher_convictions_of_twins():
    # Fisher's like-sex twins of criminals: 10 of 13 monozygotic co-twins convicted vs 2 of 17
    # dizygotic; R's fisher.test example gives the one-sided p = 0.0004652.
    assert fisher_greater(Counts(10, 13), Counts(2, 17)) == pytest.approx(0.0004652, abs=5e-8)


def test_pooled_z_test_statsmodels_example():
    # statsmodels' proportions_ztest docs: count [5, 12], nobs [83, 99] -> two-sided p = 0.159,
    # so one-sided (is 12/99 larger than 5/83?) p = 0.0796.
    p_value = z_test_greater(Counts(12, 99), Counts(5, 83))
    assert round(2 * p_value, 3) == 0.159 and round(p_value, 4) == 0.0796


def test_wilson_interval_newcombe_example():
    # Newcombe (1998), single proportion, 81/263: Wilson score 95 % interval 0.2553 to 0.3662.
    low, high = wilson_interval(Counts(81, 263), Z_975)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_newcombe_hybrid_score_interval_example():
    # Newcombe (1998) Table II, example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339.
    low, high = newcombe_bounds(Counts(56, 70), Counts(48, 80), Z_975)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_histogram_quantile_interpolates_like_prometheus():
    # rank 0.99·100 = 99 falls in (200, 500] holding requests 91..100: 200 + 300·(99-90)/10 = 470
    buckets = {100.0: 50, 200.0: 90, 500.0: 100, math.inf: 100}
    assert quantile(buckets, 0.99) == pytest.approx(470.0)
    assert quantile(buckets, 0.5) == pytest.approx(100.0)
    # a quantile in the +Inf bucket is the largest finite bound, as histogram_quantile says
    assert quantile({100.0: 50, 200.0: 90, math.inf: 100}, 0.99) == 200.0
    assert quantile({100.0: 0, math.inf: 0}, 0.99) is None


def test_slow_counts_use_the_bucket_bound_and_straighten_estimates():
    buckets = {100.0: 50, 200.0: 90, 500.0: 97, math.inf: 100}
    assert slow_counts(buckets, 200.0) == Counts(10, 100)
    assert slow_counts(buckets, 500.0) == Counts(3, 100)
    # increase() estimates can dip between buckets; counts are rounded and kept non-decreasing
    assert slow_counts({100.0: 50.4, 200.0: 49.8, math.inf: 60.2}, 200.0) == Counts(10, 60)
    assert bound_at_or_above([100.0, 200.0, 500.0, math.inf], 300) == 500.0
    assert bound_at_or_above([100.0, 200.0, 500.0, math.inf], 200) == 200.0
    assert bound_at_or_above([100.0, math.inf], 300) is None


# --- the cases a release must get right --------------------------------------------------------


def test_one_error_in_30_like_the_stable_passes():
    # canary 1/30 = 3.3 %, stable 30/1000 = 3.0 %: p = 0.61, no evidence that it is worse
    test = compare_shares(Counts(1, 30), Counts(30, 1000), 0.95)
    assert test.method == "fisher" and test.p_value > 0.5
    assert test.verdict(ONE_POINT) == "pass"
    assert test.low < 0 < test.high


def test_a_canary_like_the_stable_passes_once_there_is_enough_traffic():
    # canary 27/1000 vs stable 300/10000: upper bound below 1 point -> pass
    test = compare_shares(Counts(27, 1000), Counts(300, 10_000), 0.95)
    assert test.verdict(ONE_POINT) == "pass" and test.high < ONE_POINT


def test_twelve_errors_in_100_against_one_percent_fails():
    # canary 12/100 = 12 %, stable 10/1000 = 1 %: 11 points worse, p far below 0.05
    test = compare_shares(Counts(12, 100), Counts(10, 1000), 0.95)
    assert test.method == "fisher" and test.p_value < 1e-6
    assert test.difference == pytest.approx(0.11) and test.low > ONE_POINT
    assert test.verdict(ONE_POINT) == "fail"


def test_a_lone_error_is_never_a_failure():
    # the only error of 1030 requests hit a canary with 30 of them: p = 30/1030 = 0.029, so
    # worse at 95 %, but the lower bound (0.6 points) does not show 1 point: wait for more data
    test = compare_shares(Counts(1, 30), Counts(0, 1000), 0.95)
    assert test.p_value == pytest.approx(30 / 1030)
    assert 0 < test.low < ONE_POINT < test.high
    assert test.verdict(ONE_POINT) == "no_data"
    strict = compare_shares(Counts(1, 30), Counts(0, 1000), 0.99)
    assert strict.verdict(ONE_POINT) == "pass"  # not significant at 99 %


def test_significant_but_tiny_differences_do_not_fail():
    # 1.05 % vs 1.00 % over a million requests each: p < 0.001 but only 0.05 points worse
    test = compare_shares(Counts(10_500, 1_000_000), Counts(10_000, 1_000_000), 0.95)
    assert test.method == "z" and test.p_value < 0.001
    assert test.verdict(ONE_POINT) == "pass"
    assert test.verdict(0.0001) == "fail"  # unless 0.01 points is declared to matter


def test_no_requests_on_a_side_is_inconclusive():
    for canary, stable in ((Counts(0, 0), Counts(5, 100)), (Counts(5, 100), Counts(0, 0))):
        assert compare_shares(canary, stable, 0.95).verdict(ONE_POINT) == "no_data"


def test_impossible_counts_are_refused():
    with pytest.raises(ValueError):
        Counts(5, 4)
    with pytest.raises(ValueError):
        Counts(-1, 4)


def test_a_million_requests_never_overflow():
    started = time.perf_counter()
    p_values = [
        fisher_greater(Counts(events, 1_000_000), Counts(500_000, 1_000_000))
        for events in (499_000, 500_000, 501_500)
    ]
    elapsed = time.perf_counter() - started
    print(f"3 exact tests at 2·10^6 requests, half bad: {elapsed * 1000:.2f} ms")
    assert all(0.0 <= p <= 1.0 for p in p_values)
    assert p_values[0] > 0.9 and 0.4 < p_values[1] < 0.6 and p_values[2] < 0.02


# --- properties ---------------------------------------------------------------------------------


@st.composite
def counts(draw, max_requests: int = 1_000_000) -> Counts:
    requests = draw(st.integers(0, max_requests))
    return Counts(draw(st.integers(0, requests)), requests)


confidences = st.floats(0.8, 0.999)


@given(counts(), counts(), confidences)
def test_p_values_and_bounds_are_in_range(canary, stable, confidence):
    test = compare_shares(canary, stable, confidence)
    assert 0.0 <= test.p_value <= 1.0
    assert -1.0 - 1e-9 <= test.low <= test.difference <= test.high <= 1.0 + 1e-9


@given(counts(max_requests=60), counts(max_requests=60))
def test_the_log_space_exact_test_equals_exact_rational_arithmetic(canary, stable):
    total, bad = canary.requests + stable.requests, canary.events + stable.events
    drawn = canary.requests
    tail = sum(
        Fraction(math.comb(bad, k) * math.comb(total - bad, drawn - k), math.comb(total, drawn))
        for k in range(canary.events, min(bad, drawn) + 1)
    )
    assert fisher_greater(canary, stable) == pytest.approx(float(tail), rel=1e-9, abs=1e-15)


@settings(max_examples=300)
@given(counts(max_requests=5000), counts(max_requests=5000))
def test_more_canary_errors_never_lower_the_evidence_of_worse(canary, stable):
    assume(canary.events < canary.requests)
    worse = Counts(canary.events + 1, canary.requests)
    before, after = compare_shares(canary, stable, 0.95), compare_shares(worse, stable, 0.95)
    assert after.p_value <= before.p_value * (1 + 1e-9) + 1e-15
    assert after.low >= before.low - 1e-12 and after.high >= before.high - 1e-12


@given(counts(), st.integers(1, 50), confidences, st.floats(0.0001, 1.0))
def test_a_canary_with_the_stables_share_never_fails(stable, scale, confidence, min_effect):
    same = Counts(stable.events * scale, stable.requests * scale)
    for canary, base in ((same, stable), (stable, same), (stable, stable)):
        assert compare_shares(canary, base, confidence).verdict(min_effect) != "fail"


@given(counts(), counts(), confidences, st.floats(0.0001, 1.0))
def test_fail_and_pass_mean_what_they_say(canary, stable, confidence, min_effect):
    test = compare_shares(canary, stable, confidence)
    verdict = test.verdict(min_effect)
    if verdict == "fail":
        assert test.p_value < 1 - confidence and test.low >= min_effect
    if verdict == "pass":
        assert test.p_value >= 1 - confidence or test.high < min_effect
        assert canary.requests and stable.requests


@settings(max_examples=300)
@given(
    st.integers(2000, 1_000_000),
    st.integers(2000, 1_000_000),
    st.floats(0.01, 0.99),
    st.floats(-3.0, 3.0),
)
def test_exact_and_z_tests_agree_at_large_counts(n_canary, n_stable, share, shift):
    stable = Counts(round(n_stable * share), n_stable)
    spread = math.sqrt(n_canary * share * (1 - share))
    canary = Counts(min(n_canary, max(0, round(n_canary * share + shift * spread))), n_canary)
    total, bad = n_canary + n_stable, canary.events + stable.events
    cells = (n_canary * bad / total, n_canary * (total - bad) / total, stable.events)
    assume(min(*cells, n_stable - stable.events) >= 100)
    # the exact test is conservative by about half the probability of the observed table, which
    # is at most 1/(sqrt(2 pi) sd) for the hypergeometric's standard deviation sd
    sd = math.sqrt(n_canary * bad * (total - bad) * (total - n_canary) / (total**2 * (total - 1)))
    difference = abs(fisher_greater(canary, stable) - z_test_greater(canary, stable))
    assert difference <= 0.25 / sd + 0.005
