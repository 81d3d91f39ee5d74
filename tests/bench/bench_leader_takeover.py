"""Leader takeover benchmark: how long replicas go without a leader, after a crash and a clean stop.

Runs a real kube-apiserver (localkube) and, per run, two electors on a fresh Lease: the
first leads, the second stands by. Then the leader either stops without releasing (as a
crashed pod would) or stops gracefully (releasing the Lease). Measures the time from the
stop to the standby's on_started_leading. Prints min/median/max per kind.

    python tests/bench/bench_leader_takeover.py [--runs 5] [--lease 3 --renew 2 --retry 0.5]

With client-go's defaults (--lease 15 --renew 10 --retry 2) a crash costs about one lease
duration plus up to two jittered retries; a graceful stop costs up to one jittered retry.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

from canaryctl.leaderelection import ElectionConfig, LeaderElector
from canaryctl.testing.localkube import LocalKube
from canaryctl.testing.processes import wait_until


def one_takeover(kube: LocalKube, config: ElectionConfig, graceful: bool) -> float:
    started: dict[str, float] = {}

    def candidate(name: str) -> LeaderElector:
        def work(stop: threading.Event) -> None:
            started[name] = time.monotonic()
            stop.wait()

        return LeaderElector(kube.api_client(), config, on_started_leading=work).start()

    leader = candidate("leader")
    wait_until(lambda: "leader" in started, config.lease_duration + 10, "a leader")
    standby = candidate("standby")
    wait_until(lambda: standby.leader() == leader.identity, 10, "the standby to see it")
    stopped_at = time.monotonic()
    leader.stop(release=graceful)
    wait_until(lambda: "standby" in started, 3 * config.lease_duration, "the takeover")
    standby.stop(release=False)
    return started["standby"] - stopped_at


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lease", type=int, default=3)
    parser.add_argument("--renew", type=float, default=2.0)
    parser.add_argument("--retry", type=float, default=0.5)
    args = parser.parse_args()
    with LocalKube(progress=lambda m: print(m, file=sys.stderr)) as kube:
        namespace = kube.create_namespace("bench")
        results: dict[str, list[float]] = {"crash": [], "graceful": []}
        for run in range(args.runs):
            for kind in results:
                config = ElectionConfig(
                    f"bench-{kind}-{run}", namespace, args.lease, args.renew, args.retry
                )
                results[kind].append(one_takeover(kube, config, graceful=kind == "graceful"))
    print(f"lease {args.lease} s, renew deadline {args.renew} s, retry {args.retry} s")
    for kind, seconds in results.items():
        print(
            f"{kind:9} takeover: min {min(seconds):.2f} s, median "
            f"{statistics.median(seconds):.2f} s, max {max(seconds):.2f} s ({len(seconds)} runs)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
