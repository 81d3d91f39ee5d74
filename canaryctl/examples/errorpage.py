"""The seed's demo backend: `GET /api/error_page` answers which version served it.

`canaryctl error-page --version v1 --port P` (or `ErrorPage(...)` in Python) answers
`GET /api/error_page` with exactly the seed's body
`{"error": "injected by error_page service", "version": "v1"}` (application/json, 200)
and 404 on every other path, so a test counts v1/v2 answers as the seed does with curl.

`fail_rate` makes that share of answers HTTP 500 (same body) *deterministically*: an
accumulator adds the rate (as an exact fraction) per request and fails whenever it
reaches 1, so 0.3 fails exactly 3 of every 10 consecutive requests and analysis tests
never flake. `latency_ms` delays every answer.

Like an instrumented application, each backend exports its own request metrics on
`GET /metrics` (Prometheus text format, a registry of its own):
`http_requests_total{method,code}` and `http_request_duration_seconds` (a histogram) for the
requests it answered on `/api/error_page`. A Prometheus scrape config adds which Service and
namespace the backend stands for, as Kubernetes service discovery would.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from fractions import Fraction
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from canaryctl.backgroundhttp import BackgroundHTTPServer, QuietHandler, stop_signals

PATH = "/api/error_page"
METRICS_PATH = "/metrics"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class RequestMetrics:
    """The backend's own request counter and latency histogram, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "Requests answered, by method and status code",
            ["method", "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer a request",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe(self, method: str, code: int, seconds: float) -> None:
        self.requests.labels(method, str(code)).inc()
        self.duration.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def seed_body(version: str) -> bytes:
    """The seed's answer, byte for byte."""
    return json.dumps({"error": "injected by error_page service", "version": version}).encode()


class FailureAccumulator:
    """Decides which requests fail so that exactly `rate` of them do. Thread-safe."""

    def __init__(self, rate: float = 0.0):
        self._lock = threading.Lock()
        self.rate = rate

    @property
    def rate(self) -> float:
        return float(self._rate)

    @rate.setter
    def rate(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"fail rate must be within 0-1, got {value}")
        with self._lock:
            self._rate = Fraction(value).limit_denominator(1_000_000)
            self._owed = Fraction(0)

    def next_fails(self) -> bool:
        with self._lock:
            self._owed += self._rate
            if self._owed >= 1:
                self._owed -= 1
                return True
            return False


class _ErrorPageHandler(QuietHandler):
    server_version = "error-page"

    def do_GET(self) -> None:
        page: ErrorPage = self.server.context
        self.read_body()
        path = self.path.split("?", 1)[0]
        if path == METRICS_PATH:
            self.send_bytes(200, page.metrics.exposition(), CONTENT_TYPE_LATEST)
            return
        if path != PATH:
            self.send_bytes(404, b'{"error": "not found"}', "application/json")
            return
        started = time.monotonic()
        page.count_request()
        if page.latency_ms:
            self.server.stopping.wait(page.latency_ms / 1000)
        status = 500 if page.failures.next_fails() else 200
        self.send_bytes(status, seed_body(page.version), "application/json")
        page.metrics.observe(self.command, status, time.monotonic() - started)


class ErrorPage:
    """One error-page backend on 127.0.0.1; `fail_rate` may be changed while it runs."""

    def __init__(
        self,
        version: str = "v1",
        fail_rate: float = 0.0,
        latency_ms: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.version = version
        self.latency_ms = latency_ms
        self.failures = FailureAccumulator(fail_rate)
        self.metrics = RequestMetrics()
        self._count_lock = threading.Lock()
        self._requests = 0
        self._server = BackgroundHTTPServer(_ErrorPageHandler, self, host, port)

    def __repr__(self) -> str:
        return f"ErrorPage(version={self.version!r}, url={self.url!r})"

    @property
    def fail_rate(self) -> float:
        return self.failures.rate

    @fail_rate.setter
    def fail_rate(self, value: float) -> None:
        self.failures.rate = value

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def address(self) -> str:
        return f"{self._server.host}:{self._server.port}"

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def request_count(self) -> int:
        """Requests answered on `/api/error_page` so far."""
        with self._count_lock:
            return self._requests

    def count_request(self) -> None:
        with self._count_lock:
            self._requests += 1

    def start(self) -> ErrorPage:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> ErrorPage:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--version",
        required=True,
        dest="page_version",
        metavar="VERSION",
        help="version reported in every answer",
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (0.0.0.0 in a pod)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--fail-rate", type=float, default=0.0, help="share of answers that are HTTP 500 (exact)"
    )
    parser.add_argument("--latency-ms", type=int, default=0, help="delay before every answer")


def run(args: Any) -> int:
    page = ErrorPage(args.page_version, args.fail_rate, args.latency_ms, args.host, args.port)
    with stop_signals() as stop, page:
        print(f"error-page {page.version} listening on {page.url}{PATH}", flush=True)
        stop.wait()
    return 0
