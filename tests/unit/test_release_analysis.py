"""Prometheus client and check classification against a canned-answer HTTP server.

The real Prometheus is exercised in tests/integration/test_prometheus_analysis.py; here a
stand-in speaking the same HTTP API returns chosen answers, so every branch — odd result
types, HTTP errors, exact thresholds, the stable comparison — is covered quickly and exactly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from canaryctl import metrics
from canaryctl.backgroundhttp import BackgroundHTTPServer, QuietHandler
from canaryctl.release.analysis import Analyzer, QueryTemplates, Target
from canaryctl.release.config import ReleaseConfig
from canaryctl.release.prometheus import AnalysisError, PrometheusClient, redact
from canaryctl.testing.localkube import free_port

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
CANARY = Target("demo", "error-page", "error-page-v2", "error-page-v2.demo.svc.cluster.local:80")
STABLE = Target("demo", "error-page", "error-page-v1", "error-page-v1.demo.svc.cluster.local:80")
CONFIG = ReleaseConfig(steps=(10, 100))

Answer = tuple[int, object]  # HTTP status, JSON body (or bytes sent as they are)


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        fake: FakePrometheus = self.server.context
        url = urlsplit(self.path)
        params = {key: values[0] for key, values in parse_qs(url.query).items()}
        fake.record(url.path, params)
        status, body = fake.answer(params.get("query", ""))
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_bytes(status, raw, "application/json")


class FakePrometheus:
    """Answers `/api/v1/query` with `answer(expr)`; remembers every request."""

    def __init__(self) -> None:
        self.answer: Callable[[str], Answer] = lambda expr: (200, vector())
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server = BackgroundHTTPServer(_Handler, self)

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> FakePrometheus:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def record(self, path: str, params: dict[str, str]) -> None:
        with self._lock:
            self.requests.append((path, params))

    def queries(self) -> list[str]:
        with self._lock:
            return [params["query"] for _, params in self.requests]

    def serve_values(self, values: dict[tuple[str, str], object]) -> None:
        """Answer by (kind, service): kind is requests / errors / p99 / buckets, recognised in the
        default queries; buckets are {le: cumulative count} answered one series per `le`."""

        def answer(expr: str) -> Answer:
            kind = (
                "p99"
                if "histogram_quantile" in expr
                else "buckets"
                if expr.startswith("sum by (le)")
                else "errors"
                if 'code=~"5.."' in expr
                else "requests"
            )
            service = next(s for s in ("error-page-v1", "error-page-v2") if s in expr)
            value = values.get((kind, service))
            if kind == "buckets":
                return 200, by_le(value or {})
            return 200, vector() if value is None else vector(value)

        self.answer = answer


def vector(*values: float | str) -> dict:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {}, "value": [1717243200.0, str(value)]} for value in values],
        },
    }


def by_le(buckets: dict[str, float]) -> dict:
    """A `sum by (le)` answer: one series per bucket bound."""
    series = [{"metric": {"le": le}, "value": [1717243200.0, str(n)]} for le, n in buckets.items()]
    return {"status": "success", "data": {"resultType": "vector", "result": series}}


@pytest.fixture
def fake() -> Iterator[FakePrometheus]:
    with FakePrometheus() as server:
        yield server


@pytest.fixture
def client(fake: FakePrometheus) -> Iterator[PrometheusClient]:
    with PrometheusClient(fake.url, timeout=(1.0, 1.0)) as prometheus:
        yield prometheus


# --- client ---------------------------------------------------------------------------------


def test_an_instant_query_sends_the_expression_and_the_time(fake, client):
    fake.answer = lambda expr: (200, vector(42))
    assert client.query("sum(up)", NOW) == 42.0
    assert fake.requests == [("/api/v1/query", {"query": "sum(up)", "time": "1717243200.000"})]


@pytest.mark.parametrize(
    "body, value",
    [
        (
            {"status": "success", "data": {"resultType": "scalar", "result": [1717243200, "0.25"]}},
            0.25,
        ),
        (vector(), None),
        (vector("NaN"), None),
        (vector("1e3"), 1000.0),
    ],
)
def test_values_and_no_data(fake, client, body, value):
    fake.answer = lambda expr: (200, body)
    assert client.query("q", NOW) == value


@pytest.mark.parametrize(
    "status, body, words",
    [
        (
            400,
            {"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unexpected"},
            ["HTTP 400", "bad_data: 1:5: parse error: unexpected"],
        ),
        (503, b"<html>overloaded</html>", ["HTTP 503", "overloaded"]),
        (200, b"not json", ["HTTP 200", "not json"]),
        (200, vector(1, 2), ["returned 2 series", "aggregate with sum"]),
        (200, vector("+Inf"), ["returned +Inf"]),
        (
            200,
            {"status": "success", "data": {"resultType": "matrix", "result": []}},
            ["returned a matrix"],
        ),
        (
            200,
            {"status": "success", "data": {"resultType": "vector", "result": [{"value": ["x"]}]}},
            ["malformed sample"],
        ),
    ],
)
def test_every_failure_is_an_analysis_error_that_says_why(fake, client, status, body, words):
    fake.answer = lambda expr: (status, body)
    with pytest.raises(AnalysisError) as raised:
        client.query("sum(rate(x[1m]))", NOW)
    for word in words:
        assert word in str(raised.value)


def test_connection_refused_is_an_analysis_error():
    with (
        PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=(1.0, 1.0)) as client,
        pytest.raises(
            AnalysisError,
            match=r"cannot reach Prometheus at http://127\.0\.0\.1:[0-9]+: Connection refused",
        ),
    ):
        client.query("up", NOW)


def test_a_slow_answer_is_an_analysis_error(fake):
    release = threading.Event()

    def slow(expr: str) -> Answer:
        release.wait(5)
        return 200, vector(1)

    fake.answer = slow
    try:
        with (
            PrometheusClient(fake.url, timeout=(1.0, 0.2)) as client,
            pytest.raises(AnalysisError, match=r"did not answer within 0\.2 s"),
        ):
            client.query("up", NOW)
    finally:
        release.set()


def test_credentials_in_the_url_never_appear_in_messages_or_reprs(fake):
    fake.answer = lambda expr: (500, b"boom")
    url = fake.url.replace("http://", "http://admin:s3cret@")
    with PrometheusClient(url) as client:
        assert "s3cret" not in repr(client)
        with pytest.raises(AnalysisError) as raised:
            client.query("up", NOW)
    assert "s3cret" not in str(raised.value) and "admin" not in str(raised.value)
    assert redact("https://u:p@[::1]:9090/prom") == "https://[::1]:9090/prom"


# --- templates ------------------------------------------------------------------------------


def test_default_templates_select_the_upstream_node_and_the_window():
    templates = QueryTemplates()
    assert (
        templates.render(templates.requests, CANARY, "37s")
        == 'sum(increase(apisix_http_status{node="error-page-v2.demo.svc.cluster.local:80"}[37s]))'
    )
    assert (
        templates.render(templates.errors, CANARY, "37s")
        == 'sum(increase(apisix_http_status{node="error-page-v2.demo.svc.cluster.local:80",'
        'code=~"5.."}[37s]))'
    )
    assert templates.render(templates.latency_p99, CANARY, "37s") == (
        "histogram_quantile(0.99, sum by (le) (rate(apisix_http_latency_bucket"
        '{type="request",node="error-page-v2.demo.svc.cluster.local:80"}[37s])))'
    )


def test_every_variable_is_substituted():
    templates = QueryTemplates(
        requests='sum(increase(http_requests_total{namespace="{namespace}",app="{app}",'
        'service="{service}",target="{target}"}[{window}]))'
    )
    assert templates.render(templates.requests, CANARY, "5s") == (
        'sum(increase(http_requests_total{namespace="demo",app="error-page",service="error-page-v2",'
        'target="error-page-v2.demo.svc.cluster.local:80"}[5s]))'
    )


def test_an_unknown_variable_is_refused_up_front():
    with pytest.raises(ValueError, match=r"errors query template: unknown variable.*pod"):
        QueryTemplates(errors="sum({pod})")


# --- classification -------------------------------------------------------------------------


def check(
    client: PrometheusClient,
    config: ReleaseConfig = CONFIG,
    stable: Target | None = None,
    window_s: float = 12.9,
):
    return Analyzer(client).check(config, CANARY, stable, window_s, NOW)


def test_a_healthy_canary_passes_with_every_value_and_threshold_in_the_message(fake, client):
    fake.serve_values(
        {
            ("requests", "error-page-v2"): 59.6,
            ("errors", "error-page-v2"): 0.0,
            ("p99", "error-page-v2"): 12.0,
        }
    )
    result = check(client)
    assert result.result == "pass" and result.window_s == 12 and result.requests == 59.6
    assert (
        result.message
        == "error rate 0.0 % <= 1.0 %, p99 latency 12 ms <= 500 ms over 12 s (60 requests)"
    )
    assert all("[12s]" in query for query in fake.queries())


def test_an_erroring_canary_fails_naming_only_what_failed(fake, client):
    fake.serve_values(
        {
            ("requests", "error-page-v2"): 60.0,
            ("errors", "error-page-v2"): 18.0,
            ("p99", "error-page-v2"): 12.0,
        }
    )
    result = check(client)
    assert result.result == "fail"
    assert result.message == "error rate 30.0 % > 1.0 % over 12 s (60 requests)"
    [rate, latency] = result.metrics
    assert (rate.name, rate.value, rate.threshold, rate.passed) == ("error_rate", 30.0, 1.0, False)
    assert (latency.name, latency.value, latency.threshold, latency.passed) == (
        "latency_p99",
        12.0,
        500.0,
        True,
    )


def test_a_slow_canary_fails_on_p99(fake, client):
    fake.serve_values({("requests", "error-page-v2"): 60.0, ("p99", "error-page-v2"): 812.0})
    result = check(client)
    assert (
        result.result == "fail"
        and result.message == "p99 latency 812 ms > 500 ms over 12 s (60 requests)"
    )


def test_thresholds_are_inclusive(fake, client):
    fake.serve_values(
        {
            ("requests", "error-page-v2"): 100.0,
            ("errors", "error-page-v2"): 1.0,
            ("p99", "error-page-v2"): 500.0,
        }
    )
    assert check(client).result == "pass"


@pytest.mark.parametrize(
    "requests, result", [(None, "no_data"), (19.4, "no_data"), (19.5, "pass"), (20.0, "pass")]
)
def test_too_few_requests_is_no_data_with_the_estimate_rounded(fake, client, requests, result):
    fake.serve_values({("requests", "error-page-v2"): requests, ("p99", "error-page-v2"): 10.0})
    outcome = check(client)
    assert outcome.result == result
    if result == "no_data":
        assert outcome.message.endswith("to the canary over 12 s, fewer than the minimum 20")
        assert len(fake.queries()) == 1  # nothing else is asked


def test_request_estimates_round_half_up(fake, client):
    fake.serve_values({("requests", "error-page-v2"): 18.5, ("p99", "error-page-v2"): 10.0})
    assert check(client, replace(CONFIG, min_requests=19)).result == "pass"


def test_requests_without_latency_data_are_no_data(fake, client):
    fake.serve_values({("requests", "error-page-v2"): 50.0})
    result = check(client)
    assert (result.result, result.message) == (
        "no_data",
        "no latency data for the canary over 12 s (50 requests)",
    )


def test_latency_off_is_neither_queried_nor_judged(fake, client):
    fake.serve_values({("requests", "error-page-v2"): 50.0})
    result = check(client, replace(CONFIG, max_latency_p99_ms=None))
    assert result.result == "pass" and [m.name for m in result.metrics] == ["error_rate"]
    assert not any("histogram_quantile" in query for query in fake.queries())


def test_any_query_error_makes_the_check_an_error(fake, client):
    fake.answer = lambda expr: (
        422,
        {"status": "error", "errorType": "execution", "error": "too many samples"},
    )
    result = check(client)
    assert result.result == "error"
    assert result.message.startswith("metrics query failed: Prometheus at ")
    assert "execution: too many samples" in result.message


STABLE_MODE = replace(CONFIG, compare="stable", error_rate_margin=2.0, latency_ratio=1.5)


def test_relative_mode_allows_the_stables_error_rate_plus_the_margin(fake, client):
    fake.serve_values(
        {
            ("requests", "error-page-v2"): 100.0,
            ("errors", "error-page-v2"): 12.0,
            ("p99", "error-page-v2"): 290.0,
            ("requests", "error-page-v1"): 900.0,
            ("errors", "error-page-v1"): 90.0,
            ("p99", "error-page-v1"): 200.0,
        }
    )
    result = check(client, STABLE_MODE, STABLE)
    assert result.result == "pass"
    [rate, latency] = result.metrics
    assert (rate.value, rate.threshold, rate.stable) == (12.0, 12.0, 10.0)
    assert (latency.value, latency.threshold, latency.stable) == (290.0, 300.0, 200.0)
    assert result.message == (
        "error rate 12.0 % <= 12.0 % (stable 10.0 %), p99 latency 290 ms <= 300 ms "
        "(stable 200 ms) over 12 s (100 requests)"
    )


def test_relative_mode_fails_a_canary_worse_than_the_stable(fake, client):
    fake.serve_values(
        {
            ("requests", "error-page-v2"): 100.0,
            ("errors", "error-page-v2"): 13.0,
            ("p99", "error-page-v2"): 10.0,
            ("requests", "error-page-v1"): 900.0,
            ("errors", "error-page-v1"): 90.0,
            ("p99", "error-page-v1"): 200.0,
        }
    )
    result = check(client, STABLE_MODE, STABLE)
    assert (result.result, result.message) == (
        "fail",
        "error rate 13.0 % > 12.0 % (stable 10.0 %) over 12 s (100 requests)",
    )


def test_relative_mode_falls_back_to_absolute_limits_when_the_stable_has_no_data(fake, client):
    fake.serve_values(
        {
            ("requests", "error-page-v2"): 100.0,
            ("errors", "error-page-v2"): 5.0,
            ("p99", "error-page-v2"): 10.0,
            ("requests", "error-page-v1"): 3.0,
        }
    )
    result = check(client, STABLE_MODE, STABLE)
    assert result.result == "fail"
    assert [(m.threshold, m.stable) for m in result.metrics] == [(1.0, None), (500.0, None)]


def test_every_check_is_counted_by_result(fake, client):
    def counted(result: str) -> float:
        return (
            metrics.REGISTRY.get_sample_value("canaryctl_analysis_checks_total", {"result": result})
            or 0.0
        )

    before = {result: counted(result) for result in metrics.CHECK_RESULTS}
    fake.serve_values({("requests", "error-page-v2"): 1.0})
    check(client)
    fake.serve_values({("requests", "error-page-v2"): 50.0, ("p99", "error-page-v2"): 1.0})
    check(client)
    check(client)
    assert {result: counted(result) - before[result] for result in metrics.CHECK_RESULTS} == {
        "pass": 2,
        "fail": 0,
        "no_data": 1,
        "error": 0,
    }


# --- the bucket query and compare=statistical ---------------------------------------------------


def test_a_query_by_label_returns_one_value_per_label(fake, client):
    fake.answer = lambda expr: (200, by_le({"100": 3, "500": "NaN", "+Inf": 7.5}))
    assert client.query_by_label("sum by (le) (x)", NOW, "le") == {"100": 3.0, "+Inf": 7.5}
    fake.answer = lambda expr: (200, vector())
    assert client.query_by_label("sum by (le) (x)", NOW, "le") == {}


@pytest.mark.parametrize(
    "body, words",
    [
        (vector(1), ["without one distinct 'le'", "sum by (le)"]),
        (
            {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [{"metric": {"le": "1"}, "value": [0, "1"]}] * 2,
                },
            },
            ["without one distinct 'le'"],
        ),
        ({"status": "success", "data": {"resultType": "scalar", "result": [0, "1"]}}, ["scalar"]),
        (by_le({"1": "+Inf"}), ["returned +Inf"]),
    ],
)
def test_a_query_by_label_refuses_what_is_not_one_series_per_label(fake, client, body, words):
    fake.answer = lambda expr: (200, body)
    with pytest.raises(AnalysisError) as raised:
        client.query_by_label("sum by (le) (x)", NOW, "le")
    for word in words:
        assert word in str(raised.value)


def test_the_default_bucket_template_sums_increases_by_le():
    templates = QueryTemplates()
    assert templates.render(templates.latency_buckets, CANARY, "37s") == (
        'sum by (le) (increase(apisix_http_latency_bucket{type="request",'
        'node="error-page-v2.demo.svc.cluster.local:80"}[37s]))'
    )
    with pytest.raises(ValueError, match=r"latency_buckets query template: unknown variable.*pod"):
        QueryTemplates(latency_buckets="sum by (le) ({pod})")


STATISTICAL = replace(CONFIG, compare="statistical")


def fast(total: float) -> dict[str, float]:
    """Latency buckets (ms) where every request took at most 100 ms."""
    return {"100": total, "500": total, "1000": total, "+Inf": total}


def slow(total: float, over_500ms: float) -> dict[str, float]:
    return {"100": total / 2, "500": total - over_500ms, "1000": total, "+Inf": total}


def sides(canary: tuple[float, float, dict], stable: tuple[float, float, dict]) -> dict:
    """(requests, errors, buckets) for the canary (v2) and the stable (v1)."""
    values: dict[tuple[str, str], object] = {}
    for service, (requests, errors, buckets) in (
        ("error-page-v2", canary),
        ("error-page-v1", stable),
    ):
        values.update(
            {
                ("requests", service): requests,
                ("errors", service): errors,
                ("buckets", service): buckets,
            }
        )
    return values


def test_statistical_mode_asks_counts_and_buckets_of_both_sides(fake, client):
    fake.serve_values(sides((400.0, 0.0, fast(400)), (4000.0, 4.0, fast(4000))))
    result = check(client, STATISTICAL, STABLE)
    queries = fake.queries()
    assert len(queries) == 6 and not any("histogram_quantile" in query for query in queries)
    assert sum(query.startswith("sum by (le)") for query in queries) == 2
    assert all("[12s]" in query for query in queries)
    assert result.result == "pass", result.message


def test_one_error_in_30_with_a_stable_at_3_percent_passes(fake, client):
    # the brief's first case: canary 1/30 (3.3 %) vs stable 30/1000 (3.0 %)
    fake.serve_values(sides((30.0, 1.0, fast(30)), (1000.0, 30.0, fast(1000))))
    result = check(client, STATISTICAL, STABLE)
    assert result.result == "pass"
    [errors, latency] = result.metrics
    assert errors.evidence.verdict == "pass" and errors.passed
    assert latency.evidence.verdict == "pass"  # no slow request on either side
    assert (errors.evidence.canary_bad, errors.evidence.canary_requests) == (1, 30)
    assert (errors.evidence.stable_bad, errors.evidence.stable_requests) == (30, 1000)
    assert errors.evidence.method == "fisher" and errors.evidence.p_value > 0.5
    assert result.message.startswith(
        "error rate 3.3 % (1/30) vs stable 3.0 % (30/1000): no evidence that it is worse, "
        "p = 0.61 (Fisher exact) >= 0.05"
    )
    assert result.message.endswith("over 12 s (30 requests)")


def test_twelve_errors_in_100_against_a_stable_at_1_percent_fails(fake, client):
    # the brief's second case: canary 12/100 (12 %) vs stable 10/1000 (1 %)
    fake.serve_values(sides((100.0, 12.0, fast(100)), (1000.0, 10.0, fast(1000))))
    result = check(client, STATISTICAL, STABLE)
    assert result.result == "fail"
    [errors, latency] = result.metrics
    assert not errors.passed and latency.passed
    assert (errors.value, errors.stable, errors.threshold) == pytest.approx((12.0, 1.0, 2.0))
    assert errors.evidence.p_value < 1e-6 and errors.evidence.low > 1.0
    assert result.message.startswith(
        "error rate 12.0 % (12/100) vs stable 1.0 % (10/1000): 11.0 points worse "
        "(at least 6.58 at 95 % confidence), p = "
    )
    assert result.message.endswith("(Fisher exact) < 0.05 over 12 s (100 requests)")


def test_a_canary_with_more_slow_requests_fails_on_latency(fake, client):
    fake.serve_values(sides((1000.0, 0.0, slow(1000, 80)), (5000.0, 0.0, slow(5000, 10))))
    result = check(client, STATISTICAL, STABLE)
    assert result.result == "fail"
    [errors, latency] = result.metrics
    assert errors.passed and not latency.passed
    assert latency.name == "slow_requests" and latency.evidence.slower_than_ms == 500.0
    assert (latency.value, latency.stable) == pytest.approx((8.0, 0.2))
    assert result.message.startswith(
        "requests slower than 500 ms 8.0 % (80/1000) vs stable 0.2 % (10/5000): 7.8 points worse"
    )
    assert "p99 about 938 ms vs 494 ms" in result.message


def test_a_healthy_canary_passes_with_both_tests_in_the_message(fake, client):
    fake.serve_values(sides((2000.0, 2.0, slow(2000, 2)), (8000.0, 12.0, slow(8000, 8))))
    result = check(client, STATISTICAL, STABLE)
    assert result.result == "pass" and all(m.evidence.verdict == "pass" for m in result.metrics)
    assert result.message.startswith(
        "error rate 0.1 % (2/2000) vs stable 0.1 % (12/8000): "
        "no evidence that it is worse, p = 0.8 "
    )
    assert "; requests slower than 500 ms 0.1 % (2/2000) vs stable 0.1 % (8/8000)" in result.message


def test_confidence_and_min_effect_come_from_the_config(fake, client):
    # the only error of 1030 requests hit the canary: p = 30/1030 = 0.029, at least 0.73
    # points worse at 95 % confidence
    fake.serve_values(sides((30.0, 1.0, fast(30)), (1000.0, 0.0, fast(1000))))
    assert check(client, STATISTICAL, STABLE).result == "no_data"  # 1 point not yet shown
    strict = replace(STATISTICAL, confidence=0.99)
    assert check(client, strict, STABLE).result == "pass"  # not significant at 99 %
    touchy = replace(STATISTICAL, min_effect=0.5)  # half a point already matters
    assert check(client, touchy, STABLE).result == "fail"


def test_a_stable_with_too_few_requests_leaves_nothing_to_compare_with(fake, client):
    fake.serve_values(sides((100.0, 50.0, fast(100)), (3.0, 0.0, fast(3))))
    result = check(client, STATISTICAL, STABLE)
    assert (result.result, result.message) == (
        "no_data",
        "3 requests to the stable, fewer than the minimum 20: nothing to compare the canary "
        "with over 12 s (100 requests)",
    )
    assert check(client, STATISTICAL, None).result == "no_data"


def test_missing_latency_buckets_are_no_data_but_never_hide_a_failure(fake, client):
    fake.serve_values(sides((1000.0, 0.0, {}), (1000.0, 0.0, fast(1000))))
    result = check(client, STATISTICAL, STABLE)
    assert (result.result, result.message) == (
        "no_data",
        "no latency buckets for the canary over 12 s (1000 requests)",
    )
    assert result.metrics[0].evidence.verdict == "pass"  # the error rate was still judged
    fake.serve_values(sides((1000.0, 300.0, {}), (1000.0, 0.0, fast(1000))))
    assert check(client, STATISTICAL, STABLE).result == "fail"


def test_a_latency_limit_above_every_bucket_cannot_be_judged(fake, client):
    fake.serve_values(sides((1000.0, 0.0, fast(1000)), (1000.0, 0.0, fast(1000))))
    result = check(client, replace(STATISTICAL, max_latency_p99_ms=5000.0), STABLE)
    assert result.result == "no_data"
    assert "no latency bucket bound at or above 5000 ms" in result.message


def test_latency_off_asks_no_buckets_in_statistical_mode(fake, client):
    fake.serve_values(sides((1000.0, 0.0, {}), (1000.0, 0.0, {})))
    result = check(client, replace(STATISTICAL, max_latency_p99_ms=None), STABLE)
    assert result.result == "pass" and [m.name for m in result.metrics] == ["error_rate"]
    assert not any(query.startswith("sum by (le)") for query in fake.queries())


def test_a_bucket_bound_that_is_not_a_number_is_an_error(fake, client):
    fake.serve_values(sides((1000.0, 0.0, {"fast": 1000}), (1000.0, 0.0, fast(1000))))
    result = check(client, STATISTICAL, STABLE)
    assert result.result == "error" and "bucket bounds are not numbers" in result.message


def test_too_few_canary_requests_ask_nothing_more_in_statistical_mode(fake, client):
    fake.serve_values(sides((5.0, 5.0, fast(5)), (1000.0, 0.0, fast(1000))))
    assert check(client, replace(STATISTICAL, split_tolerance=None), STABLE).result == "no_data"
    assert len(fake.queries()) == 1
