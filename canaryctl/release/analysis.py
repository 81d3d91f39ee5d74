"""Judge a canary from Prometheus: one check, classified pass / fail / no-data / error.

The classification is the point: a metrics outage or a bad query is *error*, too little
traffic is *no-data*, and only a canary measured over its thresholds is *fail* — so that
neither an outage nor a quiet hour is ever counted as a failed release.

Queries are templates with the variables {namespace}, {app}, {service}, {target} (the
upstream target `host:port` as configured on the gateway), {cluster_ip} (the Service's
ClusterIP) and {window} (`37s`: whole seconds since the step started). The defaults read the
APISIX prometheus plugin's metrics, selecting the canary by the series' `node` label. Which
value `node` holds depends on the data plane: real APISIX labels a request with the address
it balanced to (`ctx.balancer_ip` in apache/apisix `apisix/plugins/prometheus/exporter.lua`),
which for a node named by a Service's DNS name is the Service's ClusterIP; so
`APISIX_QUERIES` (the default of `canaryctl run --gateway apisix`) select `node="{cluster_ip}"`,
while the API7 Cloud defaults select `node="{target}"` as its emulated data plane labels them.

About the numbers: `increase()` extrapolates to the window's edges and needs at least two
samples in the window, so request counts are estimates (19.6 for 20 requests) and a window
shorter than two scrape intervals sees nothing (no-data). The minimum request count is
compared with the estimate rounded to the nearest integer. Windows are not widened to a
minimum length: that would mix in traffic from before the last weight change; the step
interval should be at least twice the scrape interval.

With `canary-compare: statistical` the canary is tested against the stable
(`canaryctl.release.statistical`): both sides' request and 5xx counts, and for latency the
histogram buckets per `le` (in milliseconds, like APISIX's), from the `latency_buckets` query.

Unless the release turns it off (`canary-split-tolerance: off`), a check that could be made
also counts the application's requests per side with the `observed_requests` query — the
gateway's own counters per upstream node by default — so that the split users actually got
can be judged against the configured weight (`canaryctl.release.judgement`); the share is
exported as `canaryctl_canary_observed_share`. A failed split query leaves the split unknown,
never the check in error. Within one check an expression is asked once: with the default
templates the split costs no query when both sides' request counts were already asked.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, replace
from datetime import datetime

from canaryctl import metrics
from canaryctl.release.config import ReleaseConfig
from canaryctl.release.observations import SplitCheck
from canaryctl.release.prometheus import AnalysisError, PrometheusClient
from canaryctl.release.state import CheckResult, MetricCheck
from canaryctl.release.statistical import Sample, classify

VARIABLES = ("namespace", "app", "service", "target", "cluster_ip", "window")


def _requests(node: str) -> str:
    return f'sum(increase(apisix_http_status{{node="{node}"}}[{{window}}]))'


def _errors(node: str) -> str:
    return f'sum(increase(apisix_http_status{{node="{node}",code=~"5.."}}[{{window}}]))'


def _latency_p99(node: str) -> str:
    return (
        "histogram_quantile(0.99, sum by (le) "
        f'(rate(apisix_http_latency_bucket{{type="request",node="{node}"}}[{{window}}])))'
    )


def _latency_buckets(node: str) -> str:
    return (
        "sum by (le) "
        f'(increase(apisix_http_latency_bucket{{type="request",node="{node}"}}[{{window}}]))'
    )


DEFAULT_REQUESTS = _requests("{target}")
DEFAULT_ERRORS = _errors("{target}")
DEFAULT_LATENCY_P99 = _latency_p99("{target}")
DEFAULT_LATENCY_BUCKETS = _latency_buckets("{target}")
# requests one side of the application got through the gateway, for the observed split
DEFAULT_OBSERVED_REQUESTS = _requests("{target}")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Target:
    """One side of the comparison: a member Service and its upstream target."""

    namespace: str
    app: str
    service: str
    target: str  # "host:port" as configured on the gateway upstream
    cluster_ip: str = ""  # the Service's ClusterIP: real APISIX's `node` label for it


@dataclass(frozen=True)
class QueryTemplates:
    """PromQL for the canary's request and 5xx counts (over the window) and p99 latency in ms."""

    requests: str = DEFAULT_REQUESTS
    errors: str = DEFAULT_ERRORS
    latency_p99: str = DEFAULT_LATENCY_P99
    latency_buckets: str = DEFAULT_LATENCY_BUCKETS  # compare=statistical: one series per `le`
    observed_requests: str = DEFAULT_OBSERVED_REQUESTS  # the observed split: per side

    def __post_init__(self) -> None:
        for name in ("requests", "errors", "latency_p99", "latency_buckets", "observed_requests"):
            unknown = sorted(set(_PLACEHOLDER.findall(getattr(self, name))) - set(VARIABLES))
            if unknown:
                raise ValueError(
                    f"{name} query template: unknown variable(s) {', '.join(unknown)}; "
                    f"known are {', '.join(VARIABLES)}"
                )

    def render(self, template: str, target: Target, window: str) -> str:
        values = {
            "namespace": target.namespace,
            "app": target.app,
            "service": target.service,
            "target": target.target,
            "cluster_ip": target.cluster_ip,
            "window": window,
        }
        return _PLACEHOLDER.sub(lambda found: values.get(found.group(1), found.group(0)), template)


# The defaults for real APISIX (`canaryctl run --gateway apisix`): `node` is the ClusterIP.
APISIX_QUERIES = QueryTemplates(
    _requests("{cluster_ip}"),
    _errors("{cluster_ip}"),
    _latency_p99("{cluster_ip}"),
    _latency_buckets("{cluster_ip}"),
    _requests("{cluster_ip}"),
)


@dataclass(frozen=True)
class _Measured:
    requests: float
    error_rate: float  # percent
    latency_p99_ms: float | None


class Analyzer:
    """Runs one check: queries Prometheus for the canary (and stable) and classifies the result."""

    def __init__(self, client: PrometheusClient, templates: QueryTemplates = QueryTemplates()):
        self.client = client
        self.templates = templates
        self._asked = threading.local()  # expression -> value, for the check in progress

    def check(
        self,
        config: ReleaseConfig,
        canary: Target,
        stable: Target | None,
        window_s: float,
        now: datetime,
    ) -> CheckResult:
        """Classify the canary over the `window_s` seconds before `now`; counts it in metrics."""
        window = max(1, int(window_s))
        self._asked.values = {}
        try:
            result = self._classify(config, canary, stable, window, now)
        except AnalysisError as error:
            result = CheckResult("error", f"metrics query failed: {error}", window_s=window)
        metrics.analysis_checks_total.labels(result.result).inc()
        if result.result != "error" and stable is not None and config.split_tolerance is not None:
            result = replace(result, split=self.observe_split(canary, stable, window, now))
        self._asked.values = {}
        return result

    def observe_split(
        self, canary: Target, stable: Target, window: int, now: datetime
    ) -> SplitCheck | None:
        """Each side's requests through the gateway over the window; None if Prometheus fails."""
        try:
            sides = [
                max(0.0, self._query(self.templates.observed_requests, side, window, now) or 0.0)
                for side in (canary, stable)
            ]
        except AnalysisError:
            return None
        split = SplitCheck(sides[0], sides[1])
        share = split.share
        gauge = metrics.canary_observed_share.labels(canary.namespace, canary.app)
        gauge.set(math.nan if share is None else share)
        return split

    def _classify(
        self,
        config: ReleaseConfig,
        canary: Target,
        stable: Target | None,
        window: int,
        now: datetime,
    ) -> CheckResult:
        over = f"over {window} s"
        requests = self._query(self.templates.requests, canary, window, now) or 0.0
        if _whole(requests) < config.min_requests:
            return CheckResult(
                "no_data",
                f"{_whole(requests)} requests to the canary {over}, fewer than the "
                f"minimum {config.min_requests}",
                requests,
                window,
            )
        if config.compare == "statistical":
            stable_sample = self._sample(config, stable, window, now) if stable else None
            return classify(
                config, self._sample(config, canary, window, now, requests), stable_sample, window
            )
        measured = self._measure(config, canary, window, now, requests)
        assert measured is not None  # it served the minimum requests (checked above)
        if config.max_latency_p99_ms is not None and measured.latency_p99_ms is None:
            return CheckResult(
                "no_data",
                f"no latency data for the canary {over} ({_whole(requests)} requests)",
                requests,
                window,
            )
        baseline = (
            self._measure(config, stable, window, now)
            if config.compare == "stable" and stable
            else None
        )
        judged = tuple(_judge(config, measured, baseline))
        failed = [m for m in judged if not m.passed]
        shown = ", ".join(_describe(m) for m in (failed or judged))
        return CheckResult(
            "fail" if failed else "pass",
            f"{shown} {over} ({_whole(requests)} requests)",
            requests,
            window,
            judged,
        )

    def _measure(
        self,
        config: ReleaseConfig,
        target: Target,
        window: int,
        now: datetime,
        requests: float | None = None,
    ) -> _Measured | None:
        """Error rate and p99 of one side; None when it served fewer than the minimum requests."""
        if requests is None:
            requests = self._query(self.templates.requests, target, window, now) or 0.0
        if _whole(requests) < config.min_requests:
            return None
        errors = self._query(self.templates.errors, target, window, now) or 0.0
        p99 = None
        if config.max_latency_p99_ms is not None:
            p99 = self._query(self.templates.latency_p99, target, window, now)
        return _Measured(requests, min(100.0, 100.0 * errors / requests), p99)

    def _sample(
        self,
        config: ReleaseConfig,
        target: Target,
        window: int,
        now: datetime,
        requests: float | None = None,
    ) -> Sample:
        """Counts and latency buckets of one side; only requests when it served too few."""
        if requests is None:
            requests = self._query(self.templates.requests, target, window, now) or 0.0
        if _whole(requests) < config.min_requests:
            return Sample(requests)
        errors = self._query(self.templates.errors, target, window, now) or 0.0
        if config.max_latency_p99_ms is None:
            return Sample(requests, errors)
        expr = self.templates.render(self.templates.latency_buckets, target, f"{window}s")
        return Sample(requests, errors, _bounds(self.client.query_by_label(expr, now, "le")))

    def _query(self, template: str, target: Target, window: int, now: datetime) -> float | None:
        expr = self.templates.render(template, target, f"{window}s")
        asked = getattr(self._asked, "values", None)
        if asked is None:
            return self.client.query(expr, now)
        if expr not in asked:
            asked[expr] = self.client.query(expr, now)
        return asked[expr]


def _whole(requests: float) -> int:
    """A request estimate rounded half up (Python's round() makes 18.5 -> 18 but 19.5 -> 20)."""
    return math.floor(requests + 0.5)


def _bounds(buckets: dict[str, float]) -> dict[float, float]:
    """{"500": n, "+Inf": m} -> {500.0: n, inf: m}; a bound that is not a number is an error."""
    try:
        bounds = {float(le): count for le, count in buckets.items()}
    except ValueError:
        raise AnalysisError(f"histogram bucket bounds are not numbers: {sorted(buckets)}") from None
    if any(math.isnan(le) for le in bounds):
        raise AnalysisError("a histogram bucket bound is NaN")
    return bounds


def _judge(config: ReleaseConfig, canary: _Measured, stable: _Measured | None) -> list[MetricCheck]:
    """Each metric against its threshold: absolute, or derived from the stable when it has data."""
    rate_limit, rate_base = config.max_error_rate, None
    if stable is not None:
        rate_base = stable.error_rate
        rate_limit = rate_base + config.error_rate_margin
    checks = [
        MetricCheck(
            "error_rate", canary.error_rate, rate_limit, canary.error_rate <= rate_limit, rate_base
        )
    ]
    if config.max_latency_p99_ms is not None:
        p99 = canary.latency_p99_ms
        assert p99 is not None  # without it the check is no_data, not judged
        latency_limit, latency_base = config.max_latency_p99_ms, None
        if stable is not None and stable.latency_p99_ms is not None:
            latency_base = stable.latency_p99_ms
            latency_limit = latency_base * config.latency_ratio
        checks.append(
            MetricCheck(
                "latency_p99",
                p99,
                latency_limit,
                p99 <= latency_limit,
                latency_base,
            )
        )
    return checks


def _describe(check: MetricCheck) -> str:
    """ "error rate 30.0 % > 1.0 %", with the stable's value when the threshold derives from it."""
    sign = "<=" if check.passed else ">"
    if check.name == "error_rate":
        base = f" (stable {check.stable:.1f} %)" if check.stable is not None else ""
        return f"error rate {check.value:.1f} % {sign} {check.threshold:.1f} %{base}"
    base = f" (stable {check.stable:.0f} ms)" if check.stable is not None else ""
    return f"p99 latency {check.value:.0f} ms {sign} {check.threshold:.0f} ms{base}"
