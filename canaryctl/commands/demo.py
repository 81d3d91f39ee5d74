"""Run the seed's canary walk-through on this machine, no cluster needed.

Starts a real local kube-apiserver + etcd (built from the Go module proxy on first use,
which takes several minutes), the gateway chosen with --gateway (default: the API7 Cloud
emulator with its data plane; for the Gateway API, Traefik), the error-page backends and the
controller; says which data plane serves the requests; then runs the blog's kubectl commands
and, after each stage, sends 100 requests through the gateway and prints how many reached v1
and v2; a last stage sends the requests carrying `X-Canary: always` to a v3 canary at 0 %.
Exits 0 only if every stage matched. With --auto, canaryctl makes the release decisions itself from
Prometheus metrics (see canaryctl/demo/auto.py).
"""

from __future__ import annotations

import argparse
import sys
import time

from canaryctl.demo.gateways import KITS


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gateway",
        choices=sorted(KITS),
        default="api7",
        help="the gateway to run against (default: %(default)s)",
    )
    parser.add_argument(
        "--keep-going", action="store_true", help="run every stage even after a mismatch"
    )
    parser.add_argument(
        "--auto",
        action="store_true",
        help="automated decisions: real Prometheus + load; v2 promoted step by step, "
        "a failing v3 rolled back (needs the `prometheus` binary)",
    )


def say(message: str) -> None:
    print(message, flush=True)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.auto:
        return _run_auto(args.gateway)
    from canaryctl.demo.environment import DemoEnvironment
    from canaryctl.demo.gateways import data_plane_of
    from canaryctl.demo.walkthrough import PREDICATE_STAGE, SEED_STAGES, run_stage, table

    started = time.monotonic()
    results = []
    stages = [*SEED_STAGES, PREDICATE_STAGE]
    try:
        versions = ("v1", "v2", "v3")
        with DemoEnvironment(versions=versions, progress=progress, gateway=args.gateway) as env:
            say(f"controller running (log: {env.controller_log})")
            say(data_plane_of(env.kit))
            for stage in stages:
                results.append(run_stage(env, stage, say))
                if not results[-1].matched and not args.keep_going:
                    break
            exit_code = env.stop_controller()
    except (RuntimeError, TimeoutError) as error:
        say(f"demo failed: {error}")
        return 1
    say("\n" + table(results))
    ok = len(results) == len(stages) and all(r.matched for r in results) and exit_code == 0
    say(
        f"\n{'every stage matched' if ok else 'demo FAILED'} in {time.monotonic() - started:.0f} s"
        f" (controller exit code {exit_code})"
    )
    return 0 if ok else 1


def _run_auto(gateway: str) -> int:
    from canaryctl.demo.auto import run_auto_demo
    from canaryctl.testing.prometheus import PrometheusUnavailable

    started = time.monotonic()
    try:
        ok = run_auto_demo(say, progress, gateway)
    except (RuntimeError, TimeoutError, PrometheusUnavailable) as error:
        say(f"demo failed: {error}")
        return 1
    verdict = "v2 promoted and v3 rolled back" if ok else "demo FAILED"
    say(f"\n{verdict} in {time.monotonic() - started:.0f} s")
    return 0 if ok else 1
