"""Convergence benchmark: `kubectl annotate`-style change -> gateway write, on loopback.

Runs a real kube-apiserver (localkube), the API7 emulator and a `canaryctl run` process,
publishes one stable + canary, then changes the canary percentage N times (default 200)
through the Kubernetes API. For each change it measures the time from the PATCH returning
to the emulator logging the gateway write, and counts gateway calls (reads and writes)
per change. Prints p50/p90/p99/max latency and calls per change.

    python tests/bench/bench_convergence.py [--changes 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from kubernetes import client

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.testing.localkube import wait_until

APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
PERCENT = "api7.cloud/published-service-canary-percentage"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200)
    args = parser.parse_args()
    with DemoEnvironment(
        versions=("v1", "v2"), namespace="bench", progress=lambda m: print(m, file=sys.stderr)
    ) as env:
        core = client.CoreV1Api(env.kube.api_client())
        for name, annotations in (
            ("error-page-v1", {APP: "error-page"}),
            ("error-page-v2", {APP: "error-page", CANARY: "true", PERCENT: "1"}),
        ):
            core.create_namespaced_service(
                "bench",
                {
                    "metadata": {"name": name, "annotations": annotations},
                    "spec": {"ports": [{"name": "http", "port": 80}]},
                },
            )
        env.wait_for_split(("bench/error-page-v1", "bench/error-page-v2", 1))
        time.sleep(1)  # let the status-annotation writes of the set-up settle before counting
        latencies, reads, writes = [], 0, 0
        for i in range(args.changes):
            percent = 2 + i % 97
            env.emulator.clear_request_log()
            started = time.time()
            core.patch_namespaced_service(
                "error-page-v2", "bench", {"metadata": {"annotations": {PERCENT: str(percent)}}}
            )
            wait_until(
                lambda: any(r.method == "PUT" for r in env.emulator.request_log()),
                10,
                "the gateway write",
            )
            put = next(r for r in env.emulator.request_log() if r.method == "PUT")
            latencies.append((put.time - started) * 1000)
            wait_until(lambda percent=percent: env.split()[2] == percent, 10, "the new weight")
            log = env.emulator.request_log()
            reads += sum(r.method == "GET" for r in log)
            writes += sum(r.method != "GET" for r in log)
        exit_code = env.stop_controller()
    n = len(latencies)
    print(f"changes: {n}")
    print(
        f"latency ms: p50={percentile(latencies, 50):.1f} p90={percentile(latencies, 90):.1f} "
        f"p99={percentile(latencies, 99):.1f} max={max(latencies):.1f} "
        f"mean={statistics.mean(latencies):.1f}"
    )
    print(f"gateway calls per change: writes={writes / n:.2f} reads={reads / n:.2f}")
    print(f"controller exit code: {exit_code}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
