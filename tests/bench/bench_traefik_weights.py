"""Weight-change latency through a real Gateway API data plane: HTTPRoute patch -> routed.

Runs a local kube-apiserver with the Gateway API CRDs, Traefik (built from the Go module
proxy) and two error-page backends, then flips an HTTPRoute between 100/0 and 0/100
(default 20 times). For each flip it measures the time from just before the PATCH to the
first request answered by the newly weighted version (requests are sent back to back),
and to Traefik reporting the new generation in the route status. Prints p50/p99/max.

    python tests/bench/bench_traefik_weights.py [--patches 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from canaryctl.testing.localkube import LocalKube
from canaryctl.testing.traefik import TraefikGateway
from canaryctl.testing.traefik.routes import RouteClient, http_route, weighted_rule
from canaryctl.testing.traefik.traffic import answer_label

HOST = "error-page.bench"
ROUTE = "error-page"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def first_answer_from(gateway: TraefikGateway, version: str, timeout: float = 30) -> int:
    """Send requests back to back until `version` answers; return how many were sent."""
    session, deadline, sent = gateway.session, time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        sent += 1
        answer = session.get(f"{gateway.url}/api/error_page", headers={"Host": HOST}, timeout=5)
        if answer_label(answer) == version:
            return sent
    raise TimeoutError(f"{version} never answered within {timeout} s")


def report(name: str, values_ms: list[float]) -> None:
    print(
        f"{name}: n={len(values_ms)} p50={percentile(values_ms, 50):.1f} ms "
        f"p99={percentile(values_ms, 99):.1f} ms max={max(values_ms):.1f} ms "
        f"mean={statistics.mean(values_ms):.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=20)
    args = parser.parse_args()

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    with LocalKube(progress=progress) as kube:
        kube.install_gateway_api()
        namespace = kube.create_namespace("bench")
        with TraefikGateway(kube, namespace, progress=progress) as gateway:
            gateway.add_backend(namespace, "v1", "v1")
            gateway.add_backend(namespace, "v2", "v2")
            with kube.api_client() as api:
                routes = RouteClient(api)
                rules = [weighted_rule({"v1": 100, "v2": 0})]
                routes.create(namespace, http_route(ROUTE, gateway.parent_ref, HOST, rules))
                gateway.wait_for_split(HOST, {"v1": 20})
                routed, status, probes = [], [], []
                for flip in range(args.patches):
                    target = "v2" if flip % 2 == 0 else "v1"
                    weights = {"v1": 100 if target == "v1" else 0}
                    weights["v2"] = 100 - weights["v1"]
                    started = time.perf_counter()
                    routes.set_rules(namespace, ROUTE, [weighted_rule(weights)])
                    probes.append(first_answer_from(gateway, target))
                    routed.append((time.perf_counter() - started) * 1000)
                    gateway.wait_route_condition(namespace, ROUTE, "ResolvedRefs")
                    status.append((time.perf_counter() - started) * 1000)
    report("patch -> first request routed by the new weights", routed)
    report("patch -> status observedGeneration updated (upper bound)", status)
    print(f"requests sent per flip until the new version answered: p50={percentile(probes, 50)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
