"""Drift benchmark: a hand edit of a managed HTTPRoute's weights -> reverted by canaryctl.

Runs a real kube-apiserver (localkube) with the Gateway API CRDs, the route-following data
plane and a `canaryctl run --gateway gateway-api` process, publishes one stable + canary at
10 %, then N times (default 20) edits the route's canary weight by hand — a JSON patch as
another field manager (`bench-hand-edit`), as `kubectl patch` would send — and measures from
the PATCH returning to the first watch event in which the route holds 90/10 again (a watch
on the route itself, so no polling interval is added). Prints p50/p99/max and how many
write requests on httproutes kube-apiserver counted (the edits plus canaryctl's reverts).

    python tests/bench/bench_gatewayapi_drift.py [--edits 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from kubernetes import client

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.demo.gateways.gateway_api import WRITE_VERBS, httproute_requests
from canaryctl.gateway.gatewayapi.route import GROUP, PLURAL, VERSION

APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
PERCENT = "api7.cloud/published-service-canary-percentage"
NAMESPACE = "bench-drift"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def weights(route: dict) -> list[int]:
    return [ref["weight"] for ref in route["spec"]["rules"][0]["backendRefs"]]


def wait_for_weights(custom, resource_version: str, wanted: list[int], timeout: float) -> float:
    """Watch the route from `resource_version` until it holds `wanted`; return when it did."""
    response = custom.list_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        PLURAL,
        watch=True,
        resource_version=resource_version,
        field_selector="metadata.name=error-page",
        timeout_seconds=int(timeout) + 1,
        _preload_content=False,
    )
    try:
        for line in response:
            event = json.loads(line)
            if event["type"] == "MODIFIED" and weights(event["object"]) == wanted:
                return time.perf_counter()
    finally:
        response.release_conn()
    raise TimeoutError(f"the route did not return to {wanted} within {timeout} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=20)
    args = parser.parse_args()
    with DemoEnvironment(
        versions=("v1", "v2"),
        namespace=NAMESPACE,
        gateway="gateway-api",
        progress=lambda m: print(m, file=sys.stderr),
    ) as env:
        env.apply_service("error-page-v1", {APP: "error-page"})
        env.apply_service("error-page-v2", {APP: "error-page", CANARY: "true", PERCENT: "10"})
        env.wait_for_split((f"{NAMESPACE}/error-page-v1", f"{NAMESPACE}/error-page-v2", 10))
        custom = client.CustomObjectsApi(env.kube.api_client())
        writes_before = httproute_requests(env.kube, WRITE_VERBS)
        latencies = []
        for i in range(args.edits):
            weight = 20 + i % 70
            patch = [
                {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": weight}
            ]
            edited = custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                NAMESPACE,
                PLURAL,
                "error-page",
                patch,
                field_manager="bench-hand-edit",
                _content_type="application/json-patch+json",
            )
            edited_at = time.perf_counter()
            restored_at = wait_for_weights(
                custom, edited["metadata"]["resourceVersion"], [90, 10], 5
            )
            latencies.append((restored_at - edited_at) * 1000)
        writes = sum((httproute_requests(env.kube, WRITE_VERBS) - writes_before).values())
        drifts = len(env.events("error-page-v1", "DriftCorrected"))
        exit_code = env.stop_controller()
    print(f"hand edits reverted: {len(latencies)} (controller exit code {exit_code})")
    print(
        f"revert latency ms: p50 {percentile(latencies, 50):.1f}  "
        f"p99 {percentile(latencies, 99):.1f}  max {max(latencies):.1f}"
    )
    print(f"httproute writes counted by kube-apiserver: {writes} ({args.edits} of them the edits)")
    print(f"DriftCorrected events on the stable: {drifts} (the recorder aggregates repeats)")
    return 0 if max(latencies) < 1000 else 1


if __name__ == "__main__":
    sys.exit(main())
