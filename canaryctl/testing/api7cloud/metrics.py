"""The data plane's Prometheus metrics, named and labelled as APISIX's prometheus plugin does.

canaryctl's analysis queries are written against APISIX, so the emulator must export the
same series: `apisix_http_status{code,route,matched_uri,matched_host,service,consumer,node}`
and the millisecond histogram `apisix_http_latency{type,route,service,consumer,node}` with
`type` in request / upstream / apisix and APISIX's default bucket bounds.

prometheus_client appends `_total` to every counter it exposes; APISIX's counter has no
such suffix, so `apisix_http_status` is exposed as an *untyped* family with the exact
sample name (PromQL `rate()`/`increase()` treat it the same). Each emulator owns a private
CollectorRegistry, so two emulators in one test process never share a series.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import HistogramMetricFamily, Metric

LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000)
STATUS_LABELS = ("code", "route", "matched_uri", "matched_host", "service", "consumer", "node")
LATENCY_LABELS = ("type", "route", "service", "consumer", "node")


class _Histogram:
    """Per-bucket (non-cumulative) counts, the sum and the count of one label set."""

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)  # last one is +Inf
        self.total = 0.0

    def observe(self, value_ms: float) -> None:
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS_MS, value_ms)] += 1
        self.total += value_ms

    def cumulative(self) -> list[tuple[str, float]]:
        bounds = [str(bound) for bound in LATENCY_BUCKETS_MS] + ["+Inf"]
        running, result = 0, []
        for bound, count in zip(bounds, self.buckets, strict=False):
            running += count
            result.append((bound, running))
        return result


class ApisixMetrics:
    """Collector of one data plane's request metrics. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: dict[tuple[str, ...], int] = {}
        self._latency: dict[tuple[str, ...], _Histogram] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def observe(
        self,
        *,
        code: int,
        route: str,
        matched_uri: str,
        matched_host: str,
        service: str,
        node: str,
        request_ms: float,
        upstream_ms: float,
    ) -> None:
        """Count one proxied request and its latencies (ms)."""
        status_key = (str(code), route, matched_uri, matched_host, service, "", node)
        latencies = {
            "request": request_ms,
            "upstream": upstream_ms,
            "apisix": max(request_ms - upstream_ms, 0.0),
        }
        with self._lock:
            self._status[status_key] = self._status.get(status_key, 0) + 1
            for kind, value in latencies.items():
                self._latency.setdefault((kind, route, service, "", node), _Histogram()).observe(
                    value
                )

    def collect(self) -> Iterator[Metric]:
        status = Metric(
            "apisix_http_status", "The count of HTTP status codes per service in APISIX", "unknown"
        )
        latency = HistogramMetricFamily(
            "apisix_http_latency",
            "HTTP request latency in milliseconds per service in APISIX",
            labels=LATENCY_LABELS,
        )
        with self._lock:
            for key, count in self._status.items():
                status.add_sample(
                    "apisix_http_status", dict(zip(STATUS_LABELS, key, strict=False)), count
                )
            for key, histogram in self._latency.items():
                latency.add_metric(list(key), histogram.cumulative(), histogram.total)
        yield status
        yield latency

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
