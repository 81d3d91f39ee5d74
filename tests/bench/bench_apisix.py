"""APISIX backend benchmark: convergence and Admin API calls, with the real controller.

Runs a real kube-apiserver (localkube), the APISIX emulator and `canaryctl run --gateway
apisix`, then prints:

1. `kubectl annotate`-style change -> Admin API write: for N percentage changes (default 200)
   made through the Kubernetes API, the time from the PATCH returning to the emulator logging
   the route's PATCH (p50/p90/p99/max), and Admin API calls per change (the bar: 1 write,
   0 reads);
2. restart with nothing changed, for M published applications (default 1,000, each with a
   stable and a canary at 10 %): Admin API reads from controller start until ready (the
   bar: <= 25, growing with pages of 500, not with apps), and writes (the bar: 0) through
   the restart and one full resync.

    python tests/bench/bench_apisix.py [--changes 200] [--apps 1000]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import time

from kubernetes import client

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.testing.localkube import LocalKube, wait_until

APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
PERCENT = "api7.cloud/published-service-canary-percentage"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def service(name: str, annotations: dict[str, str]) -> dict:
    return {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"ports": [{"name": "http", "port": 80}]},
    }


def convergence(kube: LocalKube, changes: int) -> None:
    env = DemoEnvironment(
        versions=("v1", "v2"),
        namespace="bench",
        kube=kube,
        progress=lambda _: None,
        gateway="apisix",
    )
    # The kit's ClusterIP resolver (an informer in this process, for data-plane metrics) is not
    # needed without traffic; it would compete with the emulator for this process's GIL and
    # add its own delay to the latencies measured here.
    env.kit.bind_cluster = lambda kube, namespace: None
    with env:
        core = client.CoreV1Api(env.kube.api_client())
        core.create_namespaced_service("bench", service("error-page-v1", {APP: "error-page"}))
        core.create_namespaced_service(
            "bench", service("error-page-v2", {APP: "error-page", CANARY: "true", PERCENT: "1"})
        )
        env.wait_for_split(("bench/error-page-v1", "bench/error-page-v2", 1))
        time.sleep(1)  # let the status-annotation writes of the set-up settle before counting
        latencies, reads, writes = [], 0, 0
        for i in range(changes):
            percent = 2 + i % 97
            env.emulator.clear_request_log()
            started = time.time()
            core.patch_namespaced_service(
                "error-page-v2", "bench", {"metadata": {"annotations": {PERCENT: str(percent)}}}
            )
            wait_until(lambda: _route_patches(env), 10, "the Admin API write", 0.001)
            latencies.append((_route_patches(env)[0].time - started) * 1000)
            wait_until(lambda p=percent: env.split()[2] == p, 10, "the new weight", 0.001)
            log = env.emulator.request_log()
            reads += sum(r.method == "GET" for r in log)
            writes += sum(r.method != "GET" for r in log)
        exit_code = env.stop_controller()
    print(f"changes: {changes}")
    print(
        f"annotate -> Admin API write, ms: p50={percentile(latencies, 50):.1f} "
        f"p90={percentile(latencies, 90):.1f} p99={percentile(latencies, 99):.1f} "
        f"max={max(latencies):.1f} mean={statistics.mean(latencies):.1f}"
    )
    print(f"Admin API calls per change: writes={writes / changes:.2f} reads={reads / changes:.2f}")
    print(f"controller exit code: {exit_code}")


def _route_patches(env: DemoEnvironment) -> list:
    return [r for r in env.emulator.request_log() if r.method == "PATCH" and "/routes/" in r.path]


def restart(kube: LocalKube, apps: int) -> None:
    kube.create_namespace("scale")
    started = time.monotonic()
    with kube.api_client() as api, concurrent.futures.ThreadPoolExecutor(8) as pool:
        core = client.CoreV1Api(api)
        list(
            pool.map(
                lambda i: [
                    core.create_namespaced_service(
                        "scale", service(f"app-{i:04d}-v1", {APP: f"app-{i:04d}"})
                    ),
                    core.create_namespaced_service(
                        "scale",
                        service(
                            f"app-{i:04d}-v2", {APP: f"app-{i:04d}", CANARY: "true", PERCENT: "10"}
                        ),
                    ),
                ],
                range(apps),
            )
        )
    print(f"\ncreated {2 * apps} Services ({apps} apps) in {time.monotonic() - started:.1f} s")
    env = DemoEnvironment(
        versions=(),
        namespace="scale",
        kube=kube,
        progress=lambda _: None,
        gateway="apisix",
        controller_args=["--resync-period=15", "--workers=4"],
    )
    started = time.monotonic()
    with env:
        wait_until(lambda: len(env.emulator.routes()) == apps, 600, "every app", 0.5)
        wait_until(lambda: len(env.emulator.upstreams()) == 2 * apps, 60, "every upstream", 0.5)
        print(f"{apps} apps published {time.monotonic() - started:.1f} s after start")
        env.stop_controller()
        env.emulator.clear_request_log()
        started = time.monotonic()
        env.start_controller()  # returns once /readyz answers: the start-up read is done
        ready = time.monotonic() - started
        startup = env.emulator.request_log()
        round_pages = _upstream_pages(startup)
        wait_until(
            lambda: _upstream_pages(env.emulator.request_log()) == 2 * round_pages,
            60,
            "one full resync read",
            0.2,
        )
        log = env.emulator.request_log()
        exit_code = env.stop_controller()
    pages = sum(r.method == "GET" and "page=" in r.query for r in startup)
    print(
        f"restart with nothing changed ({apps} apps, {len(env.emulator.routes())} routes, "
        f"{len(env.emulator.upstreams())} upstreams): ready in {ready:.1f} s with "
        f"{sum(r.method == 'GET' for r in startup)} Admin API reads ({pages} list pages)"
    )
    print(
        f"restart + one resync: {sum(r.method != 'GET' for r in log)} Admin API writes, "
        f"{sum(r.method == 'GET' for r in log)} reads; controller exit code {exit_code}"
    )


def _upstream_pages(log: list) -> int:
    """List pages of canaryctl's upstreams read so far (the last list of a full read)."""
    return sum(
        r.method == "GET" and r.path.endswith("/upstreams") and "label=managed-by" in r.query
        for r in log
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--apps", type=int, default=1000)
    args = parser.parse_args()
    with LocalKube(progress=lambda m: print(m, file=sys.stderr)) as kube:
        convergence(kube, args.changes)
        restart(kube, args.apps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
