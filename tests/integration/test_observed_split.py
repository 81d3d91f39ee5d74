"""The observed split from a real Prometheus scraping the API7 emulator's data plane.

Three applications, each configured to send 20 % to its canary: one whose data plane does
that, one whose data plane is made to send 60 % (`Emulator.set_split`), and one nobody calls.
Steady traffic runs until Prometheus has a window of a few scrapes in which every series
already existed; the Analyzer then measures each application's split over that window and
the pure judgement compares it with the 20 % configured.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from canaryctl import metrics
from canaryctl.demo.traffic import LoadGenerator
from canaryctl.gateway.api7 import Api7Client, Api7Gateway, RetryPolicy
from canaryctl.gateway.model import AppSpec, Upstream
from canaryctl.release.analysis import Analyzer, QueryTemplates, Target
from canaryctl.release.config import ReleaseConfig
from canaryctl.release.judgement import judge
from canaryctl.release.prometheus import PrometheusClient
from canaryctl.release.state import ReleaseState
from canaryctl.testing.api7cloud import Emulator
from canaryctl.testing.processes import wait_until
from canaryctl.testing.prometheus import PrometheusServer

pytestmark = pytest.mark.prometheus

TOKEN = "split-token"
NAMESPACE = "split"
WEIGHT = 20
CONFIG = ReleaseConfig(steps=(WEIGHT, 100))
WINDOW_SAMPLES = 6  # scrapes of 1 s the window spans
RATE = 25.0  # requests per second per busy application
APPS = ("even", "skewed", "idle")


class Backend:
    """A member Service's pods: answers every request 200 with its name (HTTP/1.0)."""

    def __init__(self, name: str):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"version": name}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)
        self.server.server_close()


def target(app: str, side: str) -> Target:
    service = f"{app}-{side}"
    return Target(NAMESPACE, app, service, f"{service}.{NAMESPACE}.svc.cluster.local:80")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(token=TOKEN) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def prometheus(emu: Emulator, prometheus_server_factory) -> PrometheusServer:
    server = prometheus_server_factory([emu.dataplane_address], scrape_interval="1s")
    server.wait_scraped()
    return server


@pytest.fixture(scope="module")
def client(prometheus: PrometheusServer) -> Iterator[PrometheusClient]:
    with PrometheusClient(prometheus.url) as prometheus_client:
        yield prometheus_client


@pytest.fixture(scope="module")
def published(emu: Emulator) -> Iterator[None]:
    pages = [Backend(f"{app}-{side}") for app in APPS for side in ("stable", "canary")]
    try:
        with Api7Client(TOKEN, emu.url, retry=RetryPolicy(attempts=3, deadline=5.0)) as api:
            gateway = Api7Gateway(api, emu.cluster_id)
            for index, app in enumerate(APPS):
                upstreams = []
                for offset, side in enumerate(("stable", "canary")):
                    node = target(app, side).target
                    emu.add_resolve(node, pages[2 * index + offset].address)
                    host = node.rsplit(":", 1)[0]
                    upstreams.append(Upstream(NAMESPACE, f"{app}-{side}", host, 80))
                gateway.apply(None, AppSpec(app, upstreams[0], upstreams[1], weight=WEIGHT))
        emu.set_split("skewed", [60, 40])  # the data plane ignores the configured 20 %
        yield
    finally:
        for page in pages:
            page.stop()


@pytest.fixture(scope="module")
def window(emu: Emulator, client: PrometheusClient, published: None) -> tuple[float, datetime]:
    """(seconds, end) of a window of WINDOW_SAMPLES scrapes over steady traffic."""
    busy = ("even", "skewed")
    nodes = [target(app, side).target for app in busy for side in ("stable", "canary")]
    loads = [LoadGenerator(emu.dataplane_url, app, RATE, 120) for app in busy]
    for load in loads:
        load.__enter__()
    try:
        wait_until(lambda: all(series(client, node) for node in nodes), 30, "every series")
        start = datetime.now(UTC)
        wait_until(
            lambda: all(samples_since(client, node, start) >= WINDOW_SAMPLES for node in nodes),
            30,
            f"{WINDOW_SAMPLES} scrapes in the window",
        )
        end = datetime.now(UTC)
    finally:
        for load in loads:
            load.stop()
    return (end - start).total_seconds(), end


def series(client: PrometheusClient, node: str) -> bool:
    return bool(client.query(f'count(apisix_http_status{{node="{node}"}})', datetime.now(UTC)))


def samples_since(client: PrometheusClient, node: str, start: datetime) -> int:
    seconds = max(1, int((datetime.now(UTC) - start).total_seconds()))
    query = f'max(count_over_time(apisix_http_status{{node="{node}"}}[{seconds}s]))'
    return int(client.query(query, datetime.now(UTC)) or 0)


DEFAULT_QUERIES = QueryTemplates()


def measured(client, app: str, window, templates: QueryTemplates = DEFAULT_QUERIES):
    seconds, end = window
    analyzer = Analyzer(client, templates)
    check = analyzer.check(CONFIG, target(app, "canary"), target(app, "stable"), seconds, end)
    state = ReleaseState("Progressing", 0, WEIGHT, end.replace(microsecond=0))
    judged = judge(CONFIG, state, check).check
    return judged, judged.split


def exported_share(app: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(
        "canaryctl_canary_observed_share", {"namespace": NAMESPACE, "app": app}
    )


def test_a_data_plane_that_splits_as_configured_is_within_tolerance(client, window):
    check, split = measured(client, "even", window)
    assert check.result == "pass", check.message
    assert split is not None and split.verdict == "within", split
    assert split.share is not None and abs(split.share - WEIGHT) <= 2, split
    assert split.total >= RATE * WINDOW_SAMPLES * 0.8  # both sides counted, not only the canary
    assert exported_share("even") == pytest.approx(split.share)
    assert split.low is not None and split.low <= split.share <= (split.high or 0)


def test_a_data_plane_that_splits_differently_is_outside(client, window):
    check, split = measured(client, "skewed", window)
    assert split is not None and split.verdict == "outside", split
    assert split.share is not None and abs(split.share - 60) <= 3, split
    assert split.low is not None and split.low > WEIGHT + CONFIG.split_tolerance
    assert exported_share("skewed") == pytest.approx(split.share)
    assert f"the canary served {split.share:.1f} % of" in check.message
    assert "outside 20 % ± 5" in check.message


def test_an_application_nobody_calls_gets_no_judgement(client, window):
    check, split = measured(client, "idle", window)
    assert check.result == "no_data"
    assert split is not None and split.total == 0 and split.verdict == "unsure"
    assert math.isnan(exported_share("idle") or 0.0)


def test_a_split_query_that_fails_leaves_the_split_unknown_not_the_check(client, window):
    broken = QueryTemplates(observed_requests="sum(increase(apisix_http_status[{window}])")
    check, split = measured(client, "even", window, broken)
    assert check.result == "pass" and split is None


def test_the_split_can_be_turned_off(client, window):
    seconds, end = window
    config = replace(CONFIG, split_tolerance=None)
    check = Analyzer(client).check(
        config, target("even", "canary"), target("even", "stable"), seconds, end
    )
    assert check.result == "pass" and check.split is None
