"""The prometheus plugin's request series, named and labelled as APISIX exports them.

canaryctl's analysis queries are written against APISIX, so both gateway emulators (APISIX
itself and API7 Cloud, whose data plane is APISIX) export the same series from this one
module (apache/apisix `apisix/plugins/prometheus/exporter.lua`, `http_log`):

- `apisix_http_status{code,route,matched_uri,matched_host,service,consumer,node}` counter;
- `apisix_http_latency{type,route,service,consumer,node}` histogram in milliseconds with
  `type` request / upstream / apisix (upstream only when an upstream answered) and the
  exporter's default buckets 1 ms ... 60 s;
- `apisix_bandwidth{type,route,service,consumer,node}` bytes, `type` ingress / egress.

prometheus_client appends `_total` to every counter it exposes; APISIX's counters have no
such suffix, so they are exposed as *untyped* families with the exact sample names (PromQL
`rate()`/`increase()` treat them the same). Each emulator owns a private
CollectorRegistry, so two emulators in one test process never share a series.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import HistogramMetricFamily, Metric

METRICS_PATH = "/apisix/prometheus/metrics"
LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000)
STATUS_LABELS = ("code", "route", "matched_uri", "matched_host", "service", "consumer", "node")
LATENCY_LABELS = ("type", "route", "service", "consumer", "node")
BANDWIDTH_LABELS = LATENCY_LABELS


@dataclass(frozen=True)
class RequestLabels:
    """Who served one request, as the exporter labels it ("" where APISIX has nothing)."""

    route: str = ""
    matched_uri: str = ""
    matched_host: str = ""
    service: str = ""
    consumer: str = ""
    node: str = ""

    def per_type(self, kind: str) -> tuple[str, ...]:
        return (kind, self.route, self.service, self.consumer, self.node)


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
        running, result = 0, list[tuple[str, float]]()
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
        self._bandwidth: dict[tuple[str, ...], int] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def record(
        self,
        code: int,
        labels: RequestLabels,
        request_ms: float,
        upstream_ms: float | None,
        ingress_bytes: int = 0,
        egress_bytes: int = 0,
    ) -> None:
        """Count one request the way the exporter's log phase does."""
        status_key = (str(code), labels.route, labels.matched_uri, labels.matched_host)
        status_key += (labels.service, labels.consumer, labels.node)  # type: ignore[assignment]
        latencies = {"request": request_ms, "apisix": max(request_ms - (upstream_ms or 0), 0.0)}
        if upstream_ms is not None:
            latencies["upstream"] = upstream_ms
        with self._lock:
            self._status[status_key] = self._status.get(status_key, 0) + 1
            for kind, value in latencies.items():
                self._latency.setdefault(labels.per_type(kind), _Histogram()).observe(value)
            for kind, size in (("ingress", ingress_bytes), ("egress", egress_bytes)):
                key = labels.per_type(kind)
                self._bandwidth[key] = self._bandwidth.get(key, 0) + size

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
        labels = RequestLabels(route, matched_uri, matched_host, service, "", node)
        self.record(code, labels, request_ms, upstream_ms)

    def collect(self) -> Iterator[Metric]:
        status = Metric("apisix_http_status", "HTTP status codes per service in APISIX", "unknown")
        latency = HistogramMetricFamily(
            "apisix_http_latency",
            "HTTP request latency in milliseconds per service in APISIX",
            labels=LATENCY_LABELS,
        )
        bandwidth = Metric(
            "apisix_bandwidth", "Total bandwidth in bytes consumed per service in APISIX", "unknown"
        )
        with self._lock:
            for key, count in self._status.items():
                status.add_sample(
                    "apisix_http_status", dict(zip(STATUS_LABELS, key, strict=True)), count
                )
            for key, histogram in self._latency.items():
                latency.add_metric(list(key), histogram.cumulative(), histogram.total)
            for key, size in self._bandwidth.items():
                bandwidth.add_sample(
                    "apisix_bandwidth", dict(zip(BANDWIDTH_LABELS, key, strict=True)), size
                )
        yield status
        yield latency
        yield bandwidth

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
