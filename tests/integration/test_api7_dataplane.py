"""The emulator's data plane in front of two real error-page backends, counted as the seed does.

Upstream targets use the in-cluster names canaryctl writes (`<svc>.<ns>.svc.cluster.local:80`)
and reach the local backends through the emulator's resolve map, so the metrics' `node`
label is checked against exactly what analysis queries will use.
"""

from __future__ import annotations

import collections
import json
import math
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from canaryctl.examples.errorpage import ErrorPage
from canaryctl.testing.api7cloud import Emulator
from canaryctl.testing.apisix.metrics import LATENCY_BUCKETS_MS
from canaryctl.testing.processes import next_line, stdout_lines

TOKEN = "dp-token"
V1_NODE = "error-page-v1.demo.svc.cluster.local:80"
V2_NODE = "error-page-v2.demo.svc.cluster.local:80"
SEED_BODY = b'{"error": "injected by error_page service", "version": "%s"}'


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, ErrorPage]]:
    with ErrorPage("v1") as v1, ErrorPage("v2") as v2:
        yield {"v1": v1, "v2": v2}


@pytest.fixture
def emulator(backends: dict[str, ErrorPage]) -> Iterator[Emulator]:
    resolve = {V1_NODE: backends["v1"].address, V2_NODE: backends["v2"].address}
    with Emulator(token=TOKEN, resolve=resolve) as emu:
        yield emu


class Gateway:
    """Open API writes plus data-plane traffic for one app named `error-page`."""

    def __init__(self, emulator: Emulator, **app_fields: Any):
        self.emulator = emulator
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {TOKEN}"
        self.traffic = requests.Session()
        self.app = self.ok(
            "POST",
            f"/clusters/{emulator.cluster_id}/apps",
            {
                "name": "error-page",
                "hosts": ["error-page"],
                "path_prefix": "/",
                "active": 0,
                "default_upstream_version": "demo/error-page-v1",
                "labels": ["managed-by:canaryctl"],
                "upstreams": [
                    self.upstream("demo/error-page-v1", V1_NODE),
                    self.upstream("demo/error-page-v2", V2_NODE),
                ],
                **app_fields,
            },
        )
        self.route = self.ok(
            "POST",
            f"/apps/{self.app['id']}/apis",
            {
                "name": "all",
                "paths": [{"path": "/", "path_type": "Prefix"}],
                "active": 0,
                "type": "Rest",
            },
        )

    @staticmethod
    def upstream(version: str, node: str) -> dict:
        host, port = node.rsplit(":", 1)
        return {
            "version": version,
            "upstream": {
                "scheme": "http",
                "lb_type": "roundrobin",
                "targets": [{"host": host, "port": int(port), "weight": 100}],
            },
        }

    def ok(self, method: str, path: str, body: Any = None) -> dict:
        response = self.api.request(
            method, f"{self.emulator.url}/api/v1{path}", json=body, timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()["payload"]

    def canary(self, percent: int = 10, state: str = "in_progress", **fields: Any) -> dict:
        body = {
            "name": "canary",
            "state": state,
            "type": "percent",
            "percent": percent,
            "canary_upstream_version": "demo/error-page-v2",
            **fields,
        }
        return self.ok("POST", f"/apps/{self.app['id']}/canary_releases", body)

    def update_canary(self, canary: dict, **changes: Any) -> dict:
        return self.ok(
            "PUT", f"/apps/{self.app['id']}/canary_releases/{canary['id']}", {**canary, **changes}
        )

    def get(
        self, path: str = "/api/error_page", host: str = "error-page", **kwargs: Any
    ) -> requests.Response:
        headers = {"Host": host, **kwargs.pop("headers", {})}
        return self.traffic.get(
            self.emulator.dataplane_url + path, headers=headers, timeout=10, **kwargs
        )

    def versions(self, count: int = 100, **kwargs: Any) -> collections.Counter:
        """Like the seed's curl loop: which version answered each of `count` requests."""
        return collections.Counter(self.get(**kwargs).json()["version"] for _ in range(count))

    def metrics(self) -> dict[str, list]:
        text = requests.get(
            self.emulator.dataplane_url + self.emulator.metrics_path, timeout=10
        ).text
        return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_proxied_answer_is_the_backends(emulator: Emulator):
    gateway = Gateway(emulator)
    response = gateway.get()
    assert response.status_code == 200 and response.content == SEED_BODY % b"v1"
    assert response.headers["Content-Type"] == "application/json"
    backend_404 = gateway.get("/elsewhere", params={"q": "1"})
    assert backend_404.status_code == 404 and backend_404.json() == {
        "error": "not found"
    }  # the backend's 404


@pytest.mark.parametrize("percent,expected_v2", [(10, 10), (0, 0), (100, 100), (50, 50)])
def test_percent_canary_splits_exactly(emulator: Emulator, percent: int, expected_v2: int):
    gateway = Gateway(emulator)
    gateway.canary(percent)
    counts = gateway.versions()
    assert (counts["v1"], counts["v2"]) == (100 - expected_v2, expected_v2)


def test_changing_the_percent_takes_effect_immediately(emulator: Emulator):
    gateway = Gateway(emulator)
    canary = gateway.canary(10)
    assert gateway.versions(37)["v2"] in (3, 4)
    canary = gateway.update_canary(canary, percent=30)
    assert gateway.versions()["v2"] == 30
    gateway.update_canary(canary, percent=0)
    assert gateway.versions(50) == {"v1": 50}


def test_paused_canary_takes_nothing_and_resumes(emulator: Emulator):
    gateway = Gateway(emulator)
    canary = gateway.update_canary(gateway.canary(100), state="paused")
    assert gateway.versions(50) == {"v1": 50}
    gateway.update_canary(canary, state="in_progress")
    assert gateway.versions(50) == {"v2": 50}


def test_finished_canary_switches_the_default(emulator: Emulator):
    gateway = Gateway(emulator)
    gateway.update_canary(gateway.canary(10), state="finished")
    assert gateway.versions(50) == {"v2": 50}
    assert emulator.app_by_name("error-page")["default_upstream_version"] == "demo/error-page-v2"


def test_header_rule_canary_sends_only_matching_requests(emulator: Emulator):
    gateway = Gateway(emulator)
    gateway.canary(
        0,
        type="rule",
        rules=[{"position": "header", "key": "X-Debug", "operator": "equal", "value": "true"}],
    )
    assert gateway.versions(20, headers={"X-Debug": "true"}) == {"v2": 20}
    assert gateway.versions(20, headers={"X-Debug": "false"}) == {"v1": 20}
    assert gateway.versions(20) == {"v1": 20}


def test_cookie_and_query_rules(emulator: Emulator):
    gateway = Gateway(emulator)
    gateway.canary(
        0,
        type="rule",
        rules=[
            {"position": "query", "key": "beta", "operator": "present"},
            {"position": "cookie", "key": "tier", "operator": "in", "value": ["gold"]},
        ],
    )
    assert gateway.versions(5, params={"beta": "1"}, cookies={"tier": "gold"}) == {"v2": 5}
    assert gateway.versions(5, params={"beta": "1"}, cookies={"tier": "tin"}) == {"v1": 5}


def test_unknown_host_path_or_unpublished_app_is_404(emulator: Emulator):
    gateway = Gateway(emulator)
    for response in (gateway.get(host="other"), gateway.get(host="error-page.evil")):
        assert response.status_code == 404 and response.json() == {
            "error_msg": "404 Route Not Found"
        }
    assert gateway.get(host="Error-Page:8080").status_code == 200  # port stripped, case-insensitive
    gateway.ok(
        "PUT",
        f"/apps/{gateway.app['id']}/apis/{gateway.route['id']}",
        {**gateway.route, "paths": [{"path": "/api/error_page", "path_type": "Exact"}]},
    )
    assert gateway.get("/api/error_page/x").status_code == 404
    assert gateway.get().status_code == 200
    gateway.ok(
        "PUT",
        f"/clusters/{emulator.cluster_id}/apps/{gateway.app['id']}",
        {**gateway.app, "active": 1},
    )
    assert gateway.get().status_code == 404


def test_strip_path_prefix_removes_the_app_prefix(emulator: Emulator):
    gateway = Gateway(emulator, path_prefix="/shop")
    assert gateway.get().status_code == 404  # outside the app's prefix
    assert (
        gateway.get("/shop/api/error_page").status_code == 404
    )  # forwarded as is: the backend's 404
    gateway.ok(
        "PUT",
        f"/apps/{gateway.app['id']}/apis/{gateway.route['id']}",
        {**gateway.route, "strip_path_prefix": True},
    )
    assert gateway.get("/shop/api/error_page").content == SEED_BODY % b"v1"


def test_unreachable_upstream_is_502_and_counted(emulator: Emulator, unused_port: int):
    gateway = Gateway(emulator)
    emulator.add_resolve(V1_NODE, f"127.0.0.1:{unused_port}")
    assert gateway.get().status_code == 502
    [sample] = [s for s in gateway.metrics()["apisix_http_status"] if s.labels["code"] == "502"]
    assert sample.labels["node"] == V1_NODE and sample.value == 1


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_metrics_count_requests_per_node_with_apisix_labels(emulator: Emulator):
    gateway = Gateway(emulator)
    gateway.canary(10)
    gateway.versions(100)
    families = gateway.metrics()
    by_node = {s.labels["node"]: s for s in families["apisix_http_status"]}
    assert {node: s.value for node, s in by_node.items()} == {V1_NODE: 90, V2_NODE: 10}
    assert by_node[V2_NODE].labels == {
        "code": "200",
        "route": gateway.route["id"],
        "matched_uri": "/*",
        "matched_host": "error-page",
        "service": gateway.app["id"],
        "consumer": "",
        "node": V2_NODE,
    }
    buckets = [
        s
        for s in families["apisix_http_latency"]
        if s.name == "apisix_http_latency_bucket"
        and s.labels["type"] == "request"
        and s.labels["node"] == V2_NODE
    ]
    assert [float(b.labels["le"]) for b in buckets] == [
        float(bound) for bound in LATENCY_BUCKETS_MS
    ] + [math.inf]
    assert buckets[-1].value == 10
    counts = {
        s.labels["type"]: s.value
        for s in families["apisix_http_latency"]
        if s.name == "apisix_http_latency_count" and s.labels["node"] == V1_NODE
    }
    assert counts == {"request": 90, "upstream": 90, "apisix": 90}


def test_metrics_path_is_reserved_for_any_host(emulator: Emulator):
    gateway = Gateway(emulator)
    response = gateway.get(emulator.metrics_path)
    assert response.status_code == 200 and "apisix_http_status" in response.text
    assert response.headers["Content-Type"].startswith("text/plain")


def test_backend_failures_are_proxied_and_counted_per_node(
    emulator: Emulator, backends: dict[str, ErrorPage]
):
    gateway = Gateway(emulator)
    gateway.canary(100)
    backends["v2"].fail_rate = 0.3
    try:
        statuses = collections.Counter(gateway.get().status_code for _ in range(100))
    finally:
        backends["v2"].fail_rate = 0.0
    assert statuses == {200: 70, 500: 30}
    codes = {
        s.labels["code"]: s.value
        for s in gateway.metrics()["apisix_http_status"]
        if s.labels["node"] == V2_NODE
    }
    assert codes == {"200": 70, "500": 30}


def test_two_emulators_have_separate_metrics(emulator: Emulator, backends: dict[str, ErrorPage]):
    Gateway(emulator).versions(5)
    with Emulator(token=TOKEN, resolve={V1_NODE: backends["v1"].address}) as other:
        Gateway(other).versions(3)
        other_text = requests.get(other.dataplane_url + other.metrics_path, timeout=10).text
        [sample] = next(
            f for f in text_string_to_metric_families(other_text) if f.name == "apisix_http_status"
        ).samples
        assert sample.value == 3


# --- the error-page backend itself ------------------------------------------------------------


def test_error_page_answers_the_seed_body_and_404_elsewhere():
    with ErrorPage("v7") as page:
        response = requests.get(page.url + "/api/error_page", timeout=5)
        assert response.status_code == 200 and response.content == SEED_BODY % b"v7"
        assert json.loads(response.content) == {
            "error": "injected by error_page service",
            "version": "v7",
        }
        assert response.headers["Content-Type"] == "application/json"
        assert requests.get(page.url + "/", timeout=5).status_code == 404
        assert page.request_count == 1 and page.address == f"127.0.0.1:{page.port}"


def test_error_page_fail_rate_is_exact_and_settable():
    with ErrorPage("v1", fail_rate=0.3) as page:
        session = requests.Session()
        statuses = [
            session.get(page.url + "/api/error_page", timeout=5).status_code for _ in range(20)
        ]
        assert statuses.count(500) == 6
        page.fail_rate = 0.0
        assert all(
            session.get(page.url + "/api/error_page", timeout=5).status_code == 200
            for _ in range(10)
        )


def test_error_page_cli_serves_until_sigterm():
    command = [
        sys.executable,
        "-m",
        "canaryctl",
        "error-page",
        "--version",
        "v2",
        "--port",
        "0",
        "--fail-rate",
        "0.5",
    ]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        url = re.search(r"http://\S+", next_line(stdout_lines(process), process)).group(0)
        statuses = [requests.get(url, timeout=5) for _ in range(4)]
        assert [r.status_code for r in statuses].count(500) == 2
        assert all(r.json()["version"] == "v2" for r in statuses)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
