"""Scale benchmark: 10,000 Services, 1,000 of them published, one controller.

Creates the Services in a real kube-apiserver (localkube), then starts `canaryctl run`
against the API7 emulator and measures: time to ready (Service list + gateway read) and the
controller's CPU until then, time until every app is published, the controller's peak RSS
(VmHWM), and, through a restart and a full resync with nothing changed, gateway writes (the
bar is zero) and reads (the restart's: app-list pages plus at most one per app).

    python tests/bench/bench_scale.py [--services 10000 --published 1000]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import time

from kubernetes import client

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.testing.localkube import LocalKube, wait_until
from canaryctl.testing.processes import cpu_seconds, peak_rss_mb

APP = "api7.cloud/published-service"
NS = "scale"


def create_services(kube: LocalKube, total: int, published: int) -> None:
    def create(index: int) -> None:
        annotations = {APP: f"app-{index:05d}"} if index < published else {}
        body = {
            "metadata": {"name": f"svc-{index:05d}", "annotations": annotations},
            "spec": {"ports": [{"name": "http", "port": 80}]},
        }
        core.create_namespaced_service(NS, body)

    with kube.api_client() as api:
        core = client.CoreV1Api(api)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(total)))


def full_reads(env: DemoEnvironment) -> int:
    """How many times the controller listed the cluster's apps from the first page."""
    return sum(
        1
        for r in env.emulator.request_log()
        if r.method == "GET" and r.path.endswith("/apps") and "page=1&" in r.query + "&"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--published", type=int, default=1_000)
    args = parser.parse_args()
    with LocalKube(progress=lambda m: print(m, file=sys.stderr)) as kube:
        kube.create_namespace(NS)
        started = time.monotonic()
        create_services(kube, args.services, args.published)
        print(f"created {args.services} Services in {time.monotonic() - started:.1f} s")
        env = DemoEnvironment(
            versions=(),
            namespace=NS,
            kube=kube,
            progress=lambda _: None,
            controller_args=["--resync-period=20", "--workers=4"],
        )
        started = time.monotonic()
        with env:
            ready = time.monotonic() - started
            ready_cpu = cpu_seconds(env.controller.pid)
            wait_until(
                lambda: len(env.emulator.apps()) == args.published,
                600,
                "every app to be published",
                0.5,
            )
            published = time.monotonic() - started
            wait_until(
                lambda: all(env.emulator.apis(a["id"]) for a in env.emulator.apps()),
                120,
                "every API",
            )
            print(
                f"controller ready (caches synced) in {ready:.1f} s, {ready_cpu:.1f} s of CPU; "
                f"{args.published} apps published {published:.1f} s after start"
            )
            print(
                f"controller peak RSS after initial sync: {peak_rss_mb(env.controller.pid):.0f} MB"
            )
            env.stop_controller()
            env.emulator.clear_request_log()
            started = time.monotonic()
            env.start_controller()  # returns once /readyz answers: the start-up read is done
            ready = time.monotonic() - started
            ready_cpu = cpu_seconds(env.controller.pid)
            startup = env.emulator.request_log()
            wait_until(
                lambda: full_reads(env) >= 2, 60, "the start-up read and one resync read", 0.5
            )
            log = env.emulator.request_log()
            writes = [r for r in log if r.method != "GET"]
            pages = sum(r.method == "GET" and r.path.endswith("/apps") for r in startup)
            reads = sum(r.method == "GET" for r in startup)
            print(
                f"restart with nothing changed: ready in {ready:.1f} s, {ready_cpu:.1f} s of CPU, "
                f"{reads} gateway reads ({pages} app-list pages, {reads - pages} others); "
                f"with one full resync: {len(writes)} gateway writes, "
                f"{sum(r.method == 'GET' for r in log)} reads; "
                f"peak RSS {peak_rss_mb(env.controller.pid):.0f} MB"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
