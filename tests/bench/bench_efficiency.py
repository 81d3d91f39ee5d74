"""Efficiency benchmark: the controller process's CPU per weight change, its memory, its restart.

Runs a real kube-apiserver (localkube), a gateway emulator and a `canaryctl run` process, and
reads the controller's own CPU time (/proc/<pid>/stat, user + system) and peak RSS (VmHWM):

1. per backend (API7 Cloud, APISIX): publish one stable + canary, measure the idle CPU rate
   for a few seconds, then change the canary percentage N times (default 1,000) through the
   Kubernetes API, each time waiting for the gateway write and the new split; prints the CPU
   per change (the loop's CPU minus the idle rate over the same time; overall, and the
   median over blocks of 100 changes, which a burst of noise on a shared machine moves less),
   the latency from the PATCH returning to the gateway write (p50/p99), and the peak RSS;
   beside it, what the processes sharing the machine spent per change (kube-apiserver, etcd,
   this bench's driver and gateway emulator): the controller's CPU per change rises with
   their load, as each of its turns starts with caches the others have just used. The
   controller's CPU per ms of kube-apiserver's (which serves the same requests every run) moves
   far less between runs than either alone: use it to compare two versions;
2. API7 Cloud restart with nothing changed, at M applications (default 200, each a stable and
   a canary at 10 %): time to ready, CPU until every app was reconciled again, gateway reads
   (list pages and per-app reads) and writes (the bar: 0), peak RSS. `--gateway-latency-ms`
   delays every gateway answer during the restart, as a real API7 Cloud far away would: the
   time to ready then shows how the per-app reads overlap.

With `--floor`, part 1 runs a second time for API7 with `floor_controller.py` in place of
`canaryctl run`: the same process with every decision taken out (precomputed gateway body,
statuses built from the percentage alone). What it spends per change is what the watch,
queue, requests and servers cost on this machine: the part no cut to canaryctl's decisions
can remove.

With `--controller-python PATH`, the controller runs on another interpreter (canaryctl and its
dependencies installed there): the image's Python is built with PGO and LTO, which a
development interpreter often is not, and that alone moves the CPU per change by about 8 %.

With `--profile DIR`, a separate run of part 1 records the controller with py-spy (a test
extra) and writes one collapsed-stack file per backend; CPU numbers of that run are not
printed (sampling costs the controller CPU).

    python tests/bench/bench_efficiency.py [--changes 1000] [--apps 200] [--backend api7]
                                           [--floor] [--controller-python PATH]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests
from kubernetes import client

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.testing.localkube import LocalKube, wait_until
from canaryctl.testing.processes import cpu_seconds, cpu_times, peak_rss_mb

APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
PERCENT = "api7.cloud/published-service-canary-percentage"
STATUS = "api7.cloud/canary-status"
IDLE_SECONDS = 5.0
FLOOR_PROGRAM = Path(__file__).with_name("floor_controller.py")
BLOCK = 100  # changes per CPU reading: the clock ticks at 10 ms, a block takes ~300 ms of CPU


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def service(name: str, annotations: dict[str, str]) -> dict:
    return {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"ports": [{"name": "http", "port": 80}]},
    }


def idle_rate(pid: int, seconds: float = IDLE_SECONDS) -> float:
    """CPU seconds per second the controller spends with nothing to do."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


# 1. CPU per weight change -------------------------------------------------------------------


def weight_changes(
    kube: LocalKube,
    backend: str,
    changes: int,
    profile: Path | None,
    floor: bool = False,
    python: str = sys.executable,
) -> None:
    env = DemoEnvironment(
        versions=("v1", "v2"),
        namespace=f"cpu-{backend}{'-profiled' if profile else ''}{'-floor' if floor else ''}",
        kube=kube,
        progress=lambda _: None,
        gateway=backend,
    )
    env.controller_command = (python, "-m", "canaryctl")
    if backend == "apisix":  # its ClusterIP resolver is for data-plane metrics: not needed here
        env.kit.bind_cluster = lambda kube, namespace: None
    with env:
        core = client.CoreV1Api(env.kube.api_client())
        namespace = env.namespace
        core.create_namespaced_service(namespace, service("error-page-v1", {APP: "error-page"}))
        core.create_namespaced_service(
            namespace,
            service("error-page-v2", {APP: "error-page", CANARY: "true", PERCENT: "1"}),
        )
        env.wait_for_split((f"{namespace}/error-page-v1", f"{namespace}/error-page-v2", 1))
        wait_until(lambda: _status_weight(core, namespace) == 1, 10, "the first status")
        if floor:  # the same set-up, then the controller without its decision
            env.stop_controller()
            env.controller_command = (python, str(FLOOR_PROGRAM))
            env.start_controller()
        time.sleep(1)  # the set-up's Events and status writes settle
        pid = env.controller.pid
        idle = idle_rate(pid)
        spy = _start_profiler(pid, profile / f"{backend}.txt") if profile else None
        neighbours = {"this bench (driver + gateway emulator)": os.getpid(), **kube.server_pids()}
        neighbours_cpu = {name: cpu_seconds(other) for name, other in neighbours.items()}
        started_cpu, started = cpu_times(pid), time.monotonic()
        latencies: list[float] = []
        per_block = []  # ms of CPU per change, block by block
        for first in range(0, changes, BLOCK):
            block = range(first, min(first + BLOCK, changes))
            block_cpu, block_started = cpu_seconds(pid), time.monotonic()
            latencies += [_change(env, core, 2 + i % 97) for i in block]
            block_used = cpu_seconds(pid) - block_cpu - idle * (time.monotonic() - block_started)
            per_block.append(block_used / len(block) * 1000)
        wait_until(lambda: _status_weight(core, namespace) == 2 + (changes - 1) % 97, 10, "status")
        if floor and "the rest" in _status(core, namespace):  # the decision's wording
            raise RuntimeError("the floor program did not take over the writes")
        time.sleep(0.5)  # the last change's Event and status echo
        user, system = (now - then for now, then in zip(cpu_times(pid), started_cpu, strict=True))
        spent = {name: cpu_seconds(neighbours[name]) - cpu for name, cpu in neighbours_cpu.items()}
        beside = ", ".join(f"{name} {cpu / changes * 1000:.1f} ms" for name, cpu in spent.items())
        used = user + system - idle * (time.monotonic() - started)
        relative = used / spent["kube-apiserver"]
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        rss = peak_rss_mb(pid)
        env.stop_controller()
    if spy is not None:
        print(f"{backend}: profile written to {profile / f'{backend}.txt'}")
        return
    blocks = " ".join(f"{block:.1f}" for block in per_block)
    print(
        f"{backend}{' floor (no decision: tests/bench/floor_controller.py)' if floor else ''}: "
        f"{changes} weight changes: controller CPU per change "
        f"{used / changes * 1000:.2f} ms (user {user / changes * 1000:.2f}, system "
        f"{system / changes * 1000:.2f}; idle {idle * 1000:.1f} ms/s subtracted), median of "
        f"{len(per_block)} blocks of {BLOCK} {statistics.median(per_block):.2f} ms (blocks: "
        f"{blocks}); annotate -> write p50 {percentile(latencies, 50):.1f} ms, p99 "
        f"{percentile(latencies, 99):.1f} ms; peak RSS {rss:.0f} MB\n"
        f"  sharing the {os.cpu_count()} cores, CPU per change: {beside}; the controller's CPU "
        f"per ms of kube-apiserver's: {relative:.3f} ms"
    )


def _change(env: DemoEnvironment, core: client.CoreV1Api, percent: int) -> float:
    """One percentage change; the ms from the PATCH returning to the gateway write."""
    env.kit.clear_log()
    started = time.time()
    core.patch_namespaced_service(
        "error-page-v2", env.namespace, {"metadata": {"annotations": {PERCENT: str(percent)}}}
    )
    wait_until(lambda: env.gateway_writes(), 10, "the gateway write", 0.01)
    written = env.gateway_writes()[0].time
    wait_until(lambda: env.split()[2] == percent, 10, "the new weight", 0.01)
    return (written - started) * 1000


def _status_weight(core: client.CoreV1Api, namespace: str) -> int | None:
    match = re.search(r'"desiredWeight":(\d+)', _status(core, namespace))
    return int(match.group(1)) if match else None


def _status(core: client.CoreV1Api, namespace: str) -> str:
    annotations = core.read_namespaced_service("error-page-v2", namespace).metadata.annotations
    return (annotations or {}).get(STATUS, "")


def _start_profiler(pid: int, output: Path) -> subprocess.Popen:
    output.parent.mkdir(parents=True, exist_ok=True)
    command = ["py-spy", "record", "--pid", str(pid), "--rate", "500", "--format", "raw", "--gil"]
    spy = subprocess.Popen(
        [*command, "--nonblocking", "-o", str(output)], stdout=subprocess.DEVNULL
    )
    time.sleep(1)  # py-spy attaches
    return spy


# 2. restart with nothing changed ------------------------------------------------------------


def restart(kube: LocalKube, apps: int, python: str = sys.executable, latency_ms: int = 0) -> None:
    namespace = "restart"
    kube.create_namespace(namespace)
    with kube.api_client() as api, concurrent.futures.ThreadPoolExecutor(8) as pool:
        core = client.CoreV1Api(api)

        def publish(index: int) -> None:
            app = f"app-{index:04d}"
            core.create_namespaced_service(namespace, service(f"{app}-v1", {APP: app}))
            canary = {APP: app, CANARY: "true", PERCENT: "10"}
            core.create_namespaced_service(namespace, service(f"{app}-v2", canary))

        list(pool.map(publish, range(apps)))
    env = DemoEnvironment(versions=(), namespace=namespace, kube=kube, progress=lambda _: None)
    env.controller_command = (python, "-m", "canaryctl")
    with env:
        emulator = env.emulator
        wait_until(lambda: len(emulator.apps()) == apps, 300, "every app", 0.5)
        wait_until(
            lambda: all(emulator.canaries(app["id"]) for app in emulator.apps()),
            120,
            "every canary",
            0.5,
        )
        time.sleep(2)  # the status writes settle
        env.stop_controller()
        emulator.clear_request_log()
        if latency_ms:  # every gateway answer this much later, as over the Internet
            emulator.inject_fault(kind="latency", latency_ms=latency_ms)
        started = time.monotonic()
        env.start_controller()  # returns once /readyz answers: the start-up read is done
        ready = time.monotonic() - started
        pid = env.controller.pid
        wait_until(lambda: _reconciled(env) >= apps, 60, "every app reconciled", 0.05)
        reconciled, cpu = time.monotonic() - started, cpu_seconds(pid)
        log = emulator.request_log()
        rss = peak_rss_mb(pid)
        env.stop_controller()
        emulator.clear_faults()
    reads = [r for r in log if r.method == "GET"]
    pages = sum(r.path.endswith("/apps") and "page=" in r.query for r in reads)
    slow = f" ({latency_ms} ms per gateway answer)" if latency_ms else ""
    print(
        f"api7 restart{slow}, nothing changed, {apps} apps: ready in {ready:.1f} s, all "
        "reconciled in "
        f"{reconciled:.1f} s, controller CPU {cpu:.2f} s; gateway reads {len(reads)} "
        f"({pages} app-list pages, {len(reads) - pages} others), writes "
        f"{len(log) - len(reads)}; peak RSS {rss:.0f} MB"
    )


def _reconciled(env: DemoEnvironment) -> float:
    """Reconciles the controller finished so far (every result)."""
    try:
        text = requests.get(f"http://127.0.0.1:{env.metrics_port}/metrics", timeout=2).text
    except requests.RequestException:
        return 0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("controller_runtime_reconcile_total{")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--backend", choices=("api7", "apisix", "both"), default="both")
    parser.add_argument("--profile", type=Path, help="record py-spy profiles into this directory")
    parser.add_argument("--skip-restart", action="store_true")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="for API7, also measure the controller with its decision taken out",
    )
    parser.add_argument(
        "--controller-python",
        default=sys.executable,
        help="the interpreter that runs the controller (canaryctl installed), e.g. one built "
        "with PGO and LTO like the image's; default: this one",
    )
    parser.add_argument(
        "--gateway-latency-ms",
        type=int,
        default=0,
        help="during the restart, delay every API7 answer this much (an Internet round trip)",
    )
    args = parser.parse_args()
    backends = ("api7", "apisix") if args.backend == "both" else (args.backend,)
    version = subprocess.run(
        [args.controller_python, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    print(f"controller: {version} ({args.controller_python}), {os.cpu_count()} cores")
    with LocalKube(progress=lambda m: print(m, file=sys.stderr)) as kube:
        for backend in backends:
            python = args.controller_python
            weight_changes(kube, backend, args.changes, None, python=python)
            if args.floor and backend == "api7":
                weight_changes(kube, backend, args.changes, None, floor=True, python=python)
            if args.profile:
                weight_changes(kube, backend, args.changes, args.profile)
        if not args.skip_restart:
            restart(kube, args.apps, args.controller_python, args.gateway_latency_ms)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
