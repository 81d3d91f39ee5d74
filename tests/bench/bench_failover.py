"""Failover benchmark: how long an HA controller goes without a writer, and what a failover writes.

Runs a real kube-apiserver (localkube), the API7 Cloud emulator and two `canaryctl run
--leader-elect` processes; `--apps` applications are published with a canary at 30 %. Each
run stops the leader — SIGKILL (a crash: the standby waits for the Lease to run out by its
own clock) or SIGTERM (a graceful stop: the leader drains and hands the Lease back) — then
starts a replacement standby for the next run. Per kind it prints, from the signal:

* leads: the new leader's acquireTime in the Lease (it holds the Lease from then on), and
  for SIGKILL also from the dead leader's last renewal (a standby waits one lease duration
  from when it saw that renewal);
* writing: when its workers started (gateway re-read, every app enqueued), from its log;
* reconciled: when it had reconciled every app once (polled from its /metrics);
* the gateway writes (non-GET calls in the emulator's log) each failover caused.

    python tests/bench/bench_failover.py [--runs 10] [--apps 20] [--lease 15 --renew 10 --retry 2]

Timings default to client-go's (15 s / 10 s / 2 s); SIGKILL runs then take ~20 s each, so
`--lease 5 --renew 3 --retry 1` is a scaled-down alternative (what was used is printed).
Each signal is sent at a random moment within one retry period, so that it does not fall at
the same point between two renewals every run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import datetime

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.testing.localkube import LocalKube
from canaryctl.testing.processes import wait_until
from canaryctl.testing.replicas import Replica, ReplicaSet, Timings, writes

APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
PERCENT = "api7.cloud/published-service-canary-percentage"


def publish(env: DemoEnvironment, apps: int) -> None:
    for index in range(apps):
        name = f"app-{index}"
        env.apply_service(f"{name}-v1", {APP: name})
        env.apply_service(f"{name}-v2", {APP: name, CANARY: "true", PERCENT: "30"})
    for index in range(apps):
        wait_until(lambda i=index: env.split(f"app-{i}")[2] == 30, 60, f"app-{index} published")


def standby_pair(replicas: ReplicaSet) -> Replica:
    """Two live, ready replicas; returns the leader."""
    while len([r for r in replicas.replicas if r.process.poll() is None]) < 2:
        replicas.wait_ready(replicas.spawn(f"replica-{len(replicas.replicas)}"))
    leader = replicas.leader(timeout=replicas.timings.lease + 30)
    for replica in replicas.standbys():
        wait_until(replica.ready, 60, "the standby to be ready")
    return leader


def started_writing_at(replica: Replica) -> float:
    """Wall-clock time of the log line a new leader writes when its workers start."""
    for line in replica.log_lines():
        if line.get("msg") == "leading: reconciling every application":
            return datetime.fromisoformat(line["time"]).timestamp()
    raise AssertionError(f"{replica.name} never started writing:\n{replica.log_tail()}")


def one_failover(env: DemoEnvironment, replicas: ReplicaSet, kind: str, apps: int) -> dict:
    leader = standby_pair(replicas)
    env.emulator.clear_request_log()
    time.sleep(random.uniform(0, replicas.timings.retry))  # a random phase, not a wait
    last_renewal = None
    if kind == "SIGKILL":
        signalled = replicas.kill(leader)
        last_renewal = replicas.lease().renew_time.timestamp()  # nobody renews it any more
    else:
        signalled, _ = replicas.terminate(leader, timeout=None)  # measured while it exits
    [successor] = [r for r in replicas.replicas if r.process.poll() is None and r is not leader]
    wait_until(lambda: successor.reconciles() >= apps, replicas.timings.lease + 60,
               "every app reconciled", interval=0.02)  # fmt: skip
    reconciled = time.time()
    assert replicas.leader() is successor
    acquired = replicas.lease().acquire_time.timestamp()
    assert leader.process.wait(30) == (0 if kind == "SIGTERM" else -9), leader.log_tail()
    return {
        "leads": acquired - signalled,
        "after renewal": None if last_renewal is None else acquired - last_renewal,
        "writing": started_writing_at(successor) - signalled,
        "reconciled": reconciled - signalled,
        "writes": len(writes(env.emulator.request_log())),
    }


def summary(values: list[float]) -> str:
    return f"p50 {statistics.median(values):.3f} s (min {min(values):.3f}, max {max(values):.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--lease", type=int, default=15)
    parser.add_argument("--renew", type=float, default=10.0)
    parser.add_argument("--retry", type=float, default=2.0)
    parser.add_argument("--kinds", default="SIGKILL,SIGTERM")
    args = parser.parse_args()
    timings = Timings(args.lease, args.renew, args.retry)
    results: dict[str, list[dict]] = {}
    with LocalKube(progress=lambda m: print(m, file=sys.stderr)) as kube:
        namespace = kube.create_namespace("bench")
        with DemoEnvironment(
            kube=kube,
            namespace=namespace,
            progress=lambda _: None,
            with_controller=False,
        ) as env:
            for kind in args.kinds.split(","):
                replicas = ReplicaSet(env, namespace, timings, lease_name=f"bench-{kind.lower()}")
                try:
                    standby_pair(replicas)
                    if not results:
                        publish(env, args.apps)
                    results[kind] = []
                    for run in range(args.runs):
                        results[kind].append(one_failover(env, replicas, kind, args.apps))
                        print(f"{kind} run {run + 1}: {results[kind][-1]}", file=sys.stderr)
                finally:
                    replicas.close()
    print(
        f"lease {args.lease} s, renew deadline {args.renew:g} s, retry {args.retry:g} s; "
        f"{args.apps} apps with a canary at 30 %; {args.runs} runs per kind; times from the signal"
    )
    for kind, runs in results.items():
        print(f"{kind}:")
        for measure in ("leads", "after renewal", "writing", "reconciled"):
            if runs[0][measure] is not None:
                print(f"  {measure:13} {summary([run[measure] for run in runs])}")
        print(f"  gateway writes per failover: {[run['writes'] for run in runs]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
