"""Annotate -> traffic follows, through the whole chain with a real Gateway API data plane.

Runs a local kube-apiserver with the Gateway API CRDs, Traefik, two error-page backends and
a `canaryctl run --gateway gateway-api` process (the demo environment), publishes error-page
v1 with v2 as its canary at 0 %, then flips the canary between 0 % and 100 % (default 20
times) by patching the Service's `published-service-canary-percentage` annotation — what
`kubectl annotate` sends (`--kubectl` runs the binary itself, adding its start-up). For each
flip it measures from just before the PATCH to:

- the HTTPRoute holding the new weights (a watch on the route, so no polling interval);
- the first request answered by the newly weighted version (requests sent back to back
  through Traefik on one keep-alive connection).

Chain: Service PATCH -> apiserver -> controller (watch, reconcile, HTTPRoute apply) ->
apiserver -> Traefik (watch, configuration reload) -> backend. Prints p50/p99/max.

    python tests/bench/bench_traefik_annotate.py [--flips 20] [--kubectl]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time

import requests
import urllib3
from kubernetes import client

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.demo.gateways.gateway_api import GatewayApiKit
from canaryctl.examples.errorpage import PATH
from canaryctl.gateway.gatewayapi.route import GROUP, PLURAL, VERSION
from canaryctl.testing.traefik.traffic import answer_label

APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
PERCENT = "api7.cloud/published-service-canary-percentage"
NAMESPACE = "bench-annotate"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(name: str, values_ms: list[float]) -> None:
    print(
        f"{name}: n={len(values_ms)} p50={percentile(values_ms, 50):.1f} ms "
        f"p99={percentile(values_ms, 99):.1f} ms max={max(values_ms):.1f} ms "
        f"mean={statistics.mean(values_ms):.1f} ms"
    )


class RouteWatch:
    """Records (time, weights of the weighted rule) of every change of the app's route."""

    def __init__(self, api: client.ApiClient, resource_version: str):
        self.custom = client.CustomObjectsApi(api)
        self.resource_version = resource_version
        self.seen: list[tuple[float, list[int]]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True, name="route-watch").start()

    def _run(self) -> None:
        response = self.custom.list_namespaced_custom_object(
            GROUP,
            VERSION,
            NAMESPACE,
            PLURAL,
            watch=True,
            resource_version=self.resource_version,
            field_selector="metadata.name=error-page",
            timeout_seconds=3600,
            _preload_content=False,
        )
        try:
            for line in response:
                event = json.loads(line)
                rules = event["object"].get("spec", {}).get("rules") or [{}]
                weights = [ref["weight"] for ref in rules[-1].get("backendRefs", [])]
                with self.lock:
                    self.seen.append((time.perf_counter(), weights))
        except urllib3.exceptions.HTTPError:
            pass  # the apiserver stopped at the end of the run

    def first_after(self, started: float, weights: list[int], timeout: float = 10) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for at, held in self.seen:
                    if at >= started and held == weights:
                        return at
            time.sleep(0.001)
        raise TimeoutError(f"the route never held {weights}")


def first_answer_from(session: requests.Session, url: str, version: str) -> int:
    """Send requests back to back until `version` answers; return how many were sent."""
    deadline, sent = time.monotonic() + 30, 0
    while time.monotonic() < deadline:
        sent += 1
        answer = session.get(url + PATH, headers={"Host": "error-page"}, timeout=5)
        if answer_label(answer) == version:
            return sent
    raise TimeoutError(f"{version} never answered within 30 s")


def annotate(env: DemoEnvironment, core: client.CoreV1Api, percent: int, kubectl: bool) -> None:
    if kubectl:
        env.annotate("error-page-v2", f"{PERCENT}={percent}")
        return
    patch = {"metadata": {"annotations": {PERCENT: str(percent)}}}
    core.patch_namespaced_service("error-page-v2", NAMESPACE, patch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flips", type=int, default=20)
    parser.add_argument("--kubectl", action="store_true", help="run `kubectl annotate` instead")
    args = parser.parse_args()
    with DemoEnvironment(
        versions=("v1", "v2"),
        namespace=NAMESPACE,
        gateway=GatewayApiKit(data_plane="traefik"),
        progress=lambda message: print(message, file=sys.stderr),
    ) as env:
        env.apply_service("error-page-v1", {APP: "error-page"})
        env.apply_service("error-page-v2", {APP: "error-page", CANARY: "true", PERCENT: "0"})
        env.wait_for_split((f"{NAMESPACE}/error-page-v1", f"{NAMESPACE}/error-page-v2", 0))
        api = env.kube.api_client()
        core = client.CoreV1Api(api)
        route = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, "error-page"
        )
        watch = RouteWatch(api, route["metadata"]["resourceVersion"])
        to_route, to_traffic, probes = [], [], []
        with requests.Session() as session:
            for flip in range(args.flips):
                percent = 100 if flip % 2 == 0 else 0
                version = "v2" if percent == 100 else "v1"
                started = time.perf_counter()
                annotate(env, core, percent, args.kubectl)
                probes.append(first_answer_from(session, env.kit.dataplane_url, version))
                to_traffic.append((time.perf_counter() - started) * 1000)
                routed_at = watch.first_after(started, [100 - percent, percent])
                to_route.append((routed_at - started) * 1000)
        exit_code = env.stop_controller()
    via = "kubectl annotate" if args.kubectl else "Service PATCH"
    print(f"data plane: Traefik; {args.flips} flips 0 % <-> 100 % via {via}")
    report(f"{via} -> HTTPRoute holds the new weights", to_route)
    report(f"{via} -> first request routed by the new weight", to_traffic)
    report(
        "HTTPRoute -> first request routed (Traefik)",
        [t - r for t, r in zip(to_traffic, to_route, strict=True)],
    )
    print(f"requests sent per flip until the new version answered: p50={percentile(probes, 50)}")
    print(f"controller exit code {exit_code}")
    return 0 if exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
