"""The APISIX emulator's data plane in front of real backends, counted the way the seed does.

Routes and upstreams are written through the Admin API with the in-cluster node names
canaryctl writes (`<svc>.<ns>.svc.cluster.local:80`) and reach local backends through the
resolve map, so the metrics' `node` label is checked against what analysis queries use.
Each case names the APISIX behaviour it mirrors (docs/gateways/apisix.md, "How APISIX splits
traffic") and apache/apisix's own test case or source file for it.
"""

from __future__ import annotations

import collections
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from canaryctl.backgroundhttp import BackgroundHTTPServer, QuietHandler
from canaryctl.examples.errorpage import ErrorPage
from canaryctl.testing.apisix import ApisixEmulator
from canaryctl.testing.apisix.metrics import LATENCY_BUCKETS_MS
from canaryctl.testing.processes import free_port, wait_until

KEY = "dp-key"
V1_NODE = "error-page-v1.demo.svc.cluster.local:80"
V2_NODE = "error-page-v2.demo.svc.cluster.local:80"
ECHO_NODE = "echo.demo.svc.cluster.local:8080"


class _EchoHandler(QuietHandler):
    def do_GET(self) -> None:
        self.read_body()
        body = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
        self.send_bytes(200, json.dumps(body).encode(), "application/json", {"X-Echo": "1"})


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, Any]]:
    echo = BackgroundHTTPServer(_EchoHandler, None)
    echo.start()
    with ErrorPage("v1") as v1, ErrorPage("v2") as v2:
        yield {"v1": v1, "v2": v2, "echo": echo}
    echo.stop()


def make_emulator(backends: dict[str, Any], **options: Any) -> ApisixEmulator:
    resolve = {
        V1_NODE: backends["v1"].address,
        V2_NODE: backends["v2"].address,
        ECHO_NODE: f"127.0.0.1:{backends['echo'].port}",
    }
    return ApisixEmulator(admin_key=KEY, resolve=resolve, balancer_seed=5, **options)


@pytest.fixture
def emulator(backends: dict[str, Any]) -> Iterator[ApisixEmulator]:
    with make_emulator(backends) as emu:
        yield emu


class Gateway:
    """Admin API writes for one route named `error-page`, plus data-plane traffic."""

    def __init__(self, emulator: ApisixEmulator):
        self.emulator = emulator
        self.admin = requests.Session()
        self.admin.headers["X-API-KEY"] = KEY
        self.traffic = requests.Session()
        self.put("upstreams", "stable", upstream(V1_NODE))
        self.put("upstreams", "canary", upstream(V2_NODE))

    def put(self, resource: str, resource_id: str, body: dict) -> dict:
        url = f"{self.emulator.admin_api}/{resource}/{resource_id}"
        response = self.admin.put(url, json=body, timeout=10)
        assert response.status_code in (200, 201), response.text
        return response.json()["value"]

    def route(self, split: dict | None = None, **fields: Any) -> dict:
        body = {"uri": "/*", "host": "error-page", "upstream_id": "stable", **fields}
        body = {name: value for name, value in body.items() if value is not None}
        if split is not None:
            body["plugins"] = {"traffic-split": split}
        return self.put("routes", "error-page", body)

    def canary(self, percent: int) -> dict:
        entries = [{"upstream_id": "canary", "weight": percent}, {"weight": 100 - percent}]
        return self.route({"rules": [{"weighted_upstreams": entries}]})

    def get(self, path: str = "/api/error_page", **kwargs: Any) -> requests.Response:
        headers = {"Host": "error-page", **kwargs.pop("headers", {})}
        url = self.emulator.dataplane_url + path
        return self.traffic.get(url, headers=headers, timeout=10, **kwargs)

    def versions(self, count: int = 100, **kwargs: Any) -> collections.Counter:
        """Like the seed's curl loop: which version answered each of `count` requests."""
        return collections.Counter(self.get(**kwargs).json()["version"] for _ in range(count))

    def metrics(self, counted: int | None = None) -> dict[str, list]:
        """The data plane's metric families; with `counted`, once that many requests are counted
        (APISIX counts in its log phase, after the answer went out: the last may lag a little)."""
        families: dict[str, list] = {}

        def scrape() -> bool:
            url = self.emulator.dataplane_url + self.emulator.metrics_path
            text = requests.get(url, timeout=10).text
            families.update({f.name: f.samples for f in text_string_to_metric_families(text)})
            total = sum(s.value for s in families.get("apisix_http_status", []))
            return counted is None or total >= counted

        wait_until(scrape, 5, f"{counted} requests counted")
        return families


def upstream(node: str, **fields: Any) -> dict:
    return {"nodes": {node: 1}, "type": "roundrobin", **fields}


@pytest.mark.parametrize(("percent", "expected_v2"), [(10, 10), (50, 50), (25, 25), (90, 90)])
def test_canary_weights_split_100_requests_exactly(
    emulator: ApisixEmulator, percent: int, expected_v2: int
):
    # canary by weight (docs/gateways/apisix.md); t/plugin/traffic-split.t TEST 20-21
    gateway = Gateway(emulator)
    gateway.canary(percent)
    assert gateway.versions(100) == {"v2": expected_v2, "v1": 100 - expected_v2}


def test_three_to_one_between_two_plugin_upstreams(emulator: ApisixEmulator):
    # t/plugin/traffic-split.t TEST 14-15 (no traffic to the route's own upstream)
    gateway = Gateway(emulator)
    entries = [{"upstream_id": "canary", "weight": 3}, {"upstream_id": "stable", "weight": 1}]
    gateway.route({"rules": [{"weighted_upstreams": entries}]})
    assert gateway.versions(100) == {"v2": 75, "v1": 25}


def test_changing_weights_takes_effect_at_once(emulator: ApisixEmulator):
    # traffic-split.lua: the picker is cached per configuration, so a new route resets it
    gateway = Gateway(emulator)
    gateway.canary(10)
    gateway.versions(37)
    gateway.canary(50)
    assert gateway.versions(100) == {"v1": 50, "v2": 50}


def test_header_canary_takes_only_matching_requests(emulator: ApisixEmulator):
    # blue-green by a header match, one weighted upstream (docs/gateways/apisix.md)
    gateway = Gateway(emulator)
    rule = {"match": [{"vars": [["http_x_debug", "==", "true"]]}]}
    gateway.route({"rules": [{**rule, "weighted_upstreams": [{"upstream_id": "canary"}]}]})
    assert gateway.versions(20, headers={"X-Debug": "true"}) == {"v2": 20}
    assert gateway.versions(20, headers={"X-Debug": "false"}) == {"v1": 20}
    assert gateway.versions(20) == {"v1": 20}


def test_cookie_and_query_matches(emulator: ApisixEmulator):
    # custom release by arg_ vars (docs/gateways/apisix.md); t/plugin/traffic-split.t TEST 8-10
    gateway = Gateway(emulator)
    rules = [
        {
            "match": [{"vars": [["cookie_canary", "==", "yes"]]}, {"vars": [["arg_v", "==", "2"]]}],
            "weighted_upstreams": [{"upstream_id": "canary"}],
        }
    ]
    gateway.route({"rules": rules})
    assert gateway.versions(10, cookies={"canary": "yes"}) == {"v2": 10}
    assert gateway.versions(10, params={"v": "2"}) == {"v2": 10}
    assert gateway.versions(10, params={"v": "3"}, cookies={"canary": "no"}) == {"v1": 10}


def test_override_forces_an_observed_split_different_from_the_configured(
    emulator: ApisixEmulator,
):
    # emulator knob for "observed split" tests; the configuration stays as written
    gateway = Gateway(emulator)
    configured = gateway.canary(10)
    emulator.set_split("error-page", [40, 60])
    assert gateway.versions(100) == {"v2": 40, "v1": 60}
    assert emulator.route("error-page") == configured
    emulator.set_split("error-page", None)
    assert gateway.versions(100) == {"v2": 10, "v1": 90}


def test_unknown_host_or_path_is_404_route_not_found(emulator: ApisixEmulator):
    # apisix/init.lua http_access_phase: core.response.exit(404, {error_msg = ...})
    gateway = Gateway(emulator)
    gateway.route(uri="/api/*")
    for response in (gateway.get(headers={"Host": "other"}), gateway.get("/else")):
        assert response.status_code == 404
        assert response.content == b'{"error_msg":"404 Route Not Found"}\n'
    assert gateway.get(headers={"Host": "Error-Page:9080"}).json()["version"] == "v1"


def test_gateway_errors(emulator: ApisixEmulator, backends: dict[str, Any]):
    # apisix/init.lua: unknown upstream id 502; upstream.lua: no upstream 503; nginx 502/504
    gateway = Gateway(emulator)
    gateway.put("upstreams", "dead", upstream(f"127.0.0.1:{free_port()}"))
    timeout = {"connect": 1, "send": 1, "read": 0.2}
    gateway.put("upstreams", "slow", upstream(V1_NODE, timeout=timeout))
    gateway.route(upstream_id="dead")
    refused = gateway.get()
    assert refused.status_code == 502 and b"502 Bad Gateway" in refused.content
    gateway.route(upstream_id="slow")
    backends["v1"].latency_ms = 1000
    try:
        assert gateway.get().status_code == 504
    finally:
        backends["v1"].latency_ms = 0
    requests.delete(
        f"{emulator.admin_api}/upstreams/slow?force=true", headers={"X-API-KEY": KEY}, timeout=5
    )
    assert gateway.get().status_code == 502
    rule = {"match": [{"vars": [["arg_x", "==", "1"]]}]}
    split_only = {"rules": [{**rule, "weighted_upstreams": [{"upstream_id": "canary"}]}]}
    route = {"uri": "/*", "host": "error-page", "plugins": {"traffic-split": split_only}}
    gateway.put("routes", "error-page", route)
    assert gateway.get(params={"x": "1"}).json()["version"] == "v2"
    assert gateway.get().status_code == 503


def test_metrics_count_requests_per_node_with_apisix_labels(emulator: ApisixEmulator):
    # prometheus/exporter.lua http_log: labels, DEFAULT_BUCKETS, latency types
    gateway = Gateway(emulator)
    gateway.canary(10)
    gateway.versions(100)
    families = gateway.metrics(counted=100)
    by_node = {s.labels["node"]: s for s in families["apisix_http_status"]}
    assert {node: s.value for node, s in by_node.items()} == {V1_NODE: 90, V2_NODE: 10}
    assert by_node[V2_NODE].labels == {
        "code": "200",
        "route": "error-page",
        "matched_uri": "/*",
        "matched_host": "error-page",
        "service": "",
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
    egress = {
        s.labels["node"]: s.value
        for s in families["apisix_bandwidth"]
        if s.labels["type"] == "egress"
    }
    assert egress[V2_NODE] == 10 * len(gateway.get().content)


def test_backend_failures_and_404s_are_counted(emulator: ApisixEmulator, backends: dict[str, Any]):
    # exporter.lua counts every logged request; a global rule also logs unmatched ones
    gateway = Gateway(emulator)
    gateway.canary(100)
    backends["v2"].fail_rate = 0.3
    try:
        statuses = collections.Counter(gateway.get().status_code for _ in range(100))
    finally:
        backends["v2"].fail_rate = 0.0
    gateway.get(headers={"Host": "nobody"})
    assert statuses == {200: 70, 500: 30}
    codes = {
        (s.labels["code"], s.labels["node"]): s.value
        for s in gateway.metrics(counted=101)["apisix_http_status"]
    }
    assert codes == {("200", V2_NODE): 70, ("500", V2_NODE): 30, ("404", ""): 1}


def test_route_scope_and_apisix_node_label(backends: dict[str, Any]):
    # exporter.lua: only routes with the plugin log; `node` is ctx.balancer_ip (no port)
    with make_emulator(backends, metrics_scope="route", node_label="address") as emulator:
        gateway = Gateway(emulator)
        gateway.route()
        gateway.versions(3)
        assert gateway.metrics().get("apisix_http_status", []) == []
        gateway.route(plugins={"prometheus": {"prefer_name": True}}, name="ep")
        gateway.versions(2)
        [sample] = gateway.metrics(counted=2)["apisix_http_status"]
        assert (sample.labels["route"], sample.labels["node"], sample.value) == (
            "ep",
            "127.0.0.1",
            2,
        )


@pytest.mark.parametrize(
    ("fields", "expected_host"),
    [
        ({}, "error-page"),
        ({"pass_host": "node"}, ECHO_NODE),
        ({"pass_host": "rewrite", "upstream_host": "backend.internal"}, "backend.internal"),
    ],
)
def test_pass_host_and_forwarded_headers(
    emulator: ApisixEmulator, fields: dict, expected_host: str
):
    # schema_def.lua `pass_host`; APISIX's nginx template sets X-Real-IP / X-Forwarded-*
    gateway = Gateway(emulator)
    gateway.route(upstream_id=None, upstream=upstream(ECHO_NODE, **fields))
    response = gateway.get("/echo?q=1", headers={"X-Custom": "kept"})
    echoed = response.json()
    assert echoed["path"] == "/echo?q=1" and echoed["headers"]["host"] == expected_host
    assert echoed["headers"]["x-custom"] == "kept"
    assert echoed["headers"]["x-forwarded-host"] == "error-page"
    assert echoed["headers"]["x-real-ip"] == "127.0.0.1"
    assert response.headers["X-Echo"] == "1" and response.headers["Server"].startswith("APISIX/")


def test_metrics_path_is_served_for_any_host(emulator: ApisixEmulator):
    # exporter.lua default_export_uri
    response = requests.get(
        emulator.dataplane_url + emulator.metrics_path, headers={"Host": "x"}, timeout=5
    )
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")


def test_address_label_is_the_service_clusterip_when_names_resolve_through_it(
    backends: dict[str, Any],
):
    # exporter.lua labels `node` with ctx.balancer_ip: the address the node's name resolved to
    # (a Service's ClusterIP), not where kube-proxy then sends the connection
    cluster_ip = "10.96.0.17"
    with ApisixEmulator(admin_key=KEY, node_label="address", balancer_seed=5) as emulator:
        emulator.add_resolve(V1_NODE, f"{cluster_ip}:80")  # cluster DNS
        emulator.add_resolve(f"{cluster_ip}:80", backends["v1"].address)  # the Service proxy
        gateway = Gateway(emulator)
        gateway.route()
        assert gateway.versions(5) == {"v1": 5}
        samples = gateway.metrics(counted=5)["apisix_http_status"]
        assert {s.labels["node"]: s.value for s in samples} == {cluster_ip: 5}
