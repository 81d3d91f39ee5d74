"""A real Gateway API implementation (Traefik) routes what an HTTPRoute says, and says so.

The HTTPRoutes here are written by the tests, as canaryctl's Gateway API backend will
write them: weighted backendRefs, a header match. Traefik, built from the Go module
proxy, watches the local apiserver, proxies on loopback to error-page backends in a
network namespace, and reports route status. Counts are exact: Traefik's weighted round
robin is deterministic for requests sent one after another (see testing/traefik/traffic.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from kubernetes import client

from canaryctl.testing.processes import wait_until
from canaryctl.testing.traefik import CONTROLLER_NAME
from canaryctl.testing.traefik.routes import RouteClient, http_route, weighted_rule

pytestmark = pytest.mark.localkube

ROUTE = "error-page"


@pytest.fixture
def routes(localkube, kube_api, namespace) -> Iterator[RouteClient]:
    """HTTPRoutes in the test's namespace, deleted afterwards.

    No controller empties a deleted namespace here, and the session's Traefik would keep
    reconciling routes left behind.
    """
    yield RouteClient(kube_api)
    localkube.kubectl("delete", "httproutes", "--all", "-n", namespace, "--wait=false", check=False)


@pytest.fixture
def two_versions(traefik, namespace) -> Iterator[str]:
    """error-page v1 and v2 behind Services `v1` and `v2`; yields the route's hostname."""
    traefik.add_backend(namespace, "v1", "v1")
    traefik.add_backend(namespace, "v2", "v2")
    yield f"error-page.{namespace}.test"
    traefik.remove_backends(namespace)


def _create_route(traefik, routes, namespace, host, rules) -> None:
    routes.create(namespace, http_route(ROUTE, traefik.parent_ref, host, rules))


def test_weights_route_exactly_and_follow_every_patch(traefik, routes, namespace, two_versions):
    host = two_versions
    _create_route(traefik, routes, namespace, host, [weighted_rule({"v1": 90, "v2": 10})])
    for v1, v2 in ((90, 10), (50, 50), (0, 100), (90, 10)):
        routes.set_rules(namespace, ROUTE, [weighted_rule({"v1": v1, "v2": v2})])
        expected = {label: n for label, n in (("v1", v1), ("v2", v2)) if n}
        traefik.wait_for_split(host, expected)
        # the batch after the first matching one must match exactly as well
        assert traefik.count_answers(host, 100) == expected, (v1, v2)


def test_traefik_reports_accepted_and_resolved_refs(traefik, routes, namespace, two_versions):
    _create_route(traefik, routes, namespace, two_versions, [weighted_rule({"v1": 1})])
    accepted = traefik.wait_route_condition(namespace, ROUTE, "Accepted")
    resolved = traefik.wait_route_condition(namespace, ROUTE, "ResolvedRefs")
    assert (accepted["reason"], resolved["reason"]) == ("Accepted", "ResolvedRefs")

    routes.set_rules(namespace, ROUTE, [weighted_rule({"v1": 1, "v2": 1})])
    resolved = traefik.wait_route_condition(namespace, ROUTE, "ResolvedRefs")
    assert resolved["observedGeneration"] == 2
    parents = routes.get(namespace, ROUTE)["status"]["parents"]
    assert [p["controllerName"] for p in parents] == [CONTROLLER_NAME]
    assert parents[0]["parentRef"]["name"] == traefik.name


def test_a_missing_backend_service_is_reported_and_answered_500(
    traefik, routes, namespace, two_versions
):
    host = two_versions
    rules = [weighted_rule({"v1": 1, "missing": 1})]
    _create_route(traefik, routes, namespace, host, rules)
    resolved = traefik.wait_route_condition(namespace, ROUTE, "ResolvedRefs", status="False")
    assert resolved["reason"] == "BackendNotFound"
    assert traefik.wait_route_condition(namespace, ROUTE, "Accepted")["status"] == "True"
    # the spec: requests meant for an invalid backendRef get a 500, the others still route
    traefik.wait_for_split(host, {"v1": 50, "HTTP 500": 50})
    assert traefik.count_answers(host, 100) == {"v1": 50, "HTTP 500": 50}


def test_a_header_match_sends_matching_requests_to_the_canary(
    traefik, routes, namespace, two_versions
):
    host = two_versions
    canary = {"headers": [{"type": "Exact", "name": "X-Canary", "value": "always"}]}
    rules = [weighted_rule({"v2": 1}, matches=[canary]), weighted_rule({"v1": 1})]
    _create_route(traefik, routes, namespace, host, rules)
    traefik.wait_for_split(host, {"v2": 20}, headers={"X-Canary": "always"})
    assert traefik.count_answers(host, 50, headers={"X-Canary": "always"}) == {"v2": 50}
    assert traefik.count_answers(host, 50) == {"v1": 50}
    assert traefik.count_answers(host, 50, headers={"X-Canary": "never"}) == {"v1": 50}


def test_prometheus_metrics_count_requests_per_backend_service(
    traefik, routes, namespace, two_versions
):
    host = two_versions
    _create_route(traefik, routes, namespace, host, [weighted_rule({"v1": 3, "v2": 1})])
    traefik.wait_for_split(host, {"v1": 3, "v2": 1})

    def served() -> dict[str, float]:
        text = requests.get(f"{traefik.admin_url}/metrics", timeout=5).text
        return _requests_by_backend(text, namespace)

    before = served()
    assert traefik.count_answers(host, 40) == {"v1": 30, "v2": 10}
    after = served()
    assert {name: after[name] - before.get(name, 0) for name in after} == {"v1": 30, "v2": 10}


def _requests_by_backend(metrics: str, namespace: str) -> dict[str, float]:
    """traefik_service_requests_total (code 200) per backend Service of `namespace`.

    Traefik names the service of a backendRef `<router>-svc-<namespace>-<name>-<index>`.
    """
    pattern = r"^traefik_service_requests_total\{(.*)\} (\S+)$"
    backend = re.compile(rf'service="[^"]*-svc-{re.escape(namespace)}-(v\d)-\d+@kubernetesgateway"')
    totals: dict[str, float] = {}
    for labels, value in re.findall(pattern, metrics, re.MULTILINE):
        match = backend.search(labels)
        if match and 'code="200"' in labels:
            totals[match.group(1)] = totals.get(match.group(1), 0) + float(value)
    return totals


def test_removed_backends_stop_and_leave_no_service_behind(traefik, core_api, namespace):
    backend = traefik.add_backend(namespace, "short-lived", "v7")
    traefik.remove_backends(namespace)
    assert backend.process.poll() is not None
    assert backend not in traefik.backends

    def gone() -> bool:
        services = core_api.list_namespaced_service(namespace).items
        slices = client.DiscoveryV1Api(core_api.api_client).list_namespaced_endpoint_slice(
            namespace
        )
        return not services and not slices.items

    wait_until(gone, 10, "the Service and EndpointSlice to be deleted")
