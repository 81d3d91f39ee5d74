"""`canaryctl demo --auto`: canaryctl decides the release from Prometheus metrics.

On top of the seed's set-up, a real Prometheus scrapes the gateway's request metrics and a
load generator sends steady traffic. A healthy v2 is then released step by step and promoted;
a v3 that fails 30 % of its requests is rolled back, and the failing value is printed. Exits 0
only if both happened. The gateway's data plane is named first (for the Gateway API: Traefik,
whose own request series judge each step, or the stand-in where Traefik cannot run).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from canaryctl.demo.environment import NAMESPACE, DemoEnvironment
from canaryctl.demo.gateways import data_plane_of
from canaryctl.demo.traffic import LoadGenerator

SETTINGS = (
    '"api7.cloud/canary-steps=10,30,60" "api7.cloud/canary-step-interval=5s" '
    '"api7.cloud/canary-min-requests=10" "api7.cloud/canary-max-error-rate=1" '
    '"api7.cloud/canary-failure-limit=1"'
)
ANNOTATE = f"kubectl annotate service -n {NAMESPACE}"
FINAL_PHASES = ("Succeeded", "RolledBack", "Aborted", "Paused")


def release(env: DemoEnvironment, version: str, say: Callable[[str], None]) -> dict:
    """Deploy error-page-`version` as an automated canary, follow it to its end; its state."""
    for command in (
        f"kubectl apply -f error-page-{version}.yaml -n {NAMESPACE}",
        f'{ANNOTATE} error-page-{version} "api7.cloud/published-canary-service=true" {SETTINGS}',
        f'{ANNOTATE} error-page-{version} "api7.cloud/published-service=error-page"',
    ):
        say(f"$ {command}")
        env.shell(command)
    return follow(env, f"error-page-{version}", say)


def follow(
    env: DemoEnvironment, service: str, say: Callable[[str], None], timeout: float = 180
) -> dict:
    """Print every change of the release (phase, weight, last check) until it ends."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        state = (env.status(service) or {}).get("release") or {}
        check = state.get("lastCheck") or {}
        shown = (state.get("phase"), state.get("weight"), check.get("message"))
        if state and shown != last:
            last = shown
            say(
                f"  {state['phase']:<11} weight {state['weight']:>3} %"
                + (f"   last check: {check.get('result')}: {check.get('message')}" if check else "")
            )
        if state.get("phase") in FINAL_PHASES:
            return state
        time.sleep(0.5)
    raise TimeoutError(f"the release of {service} did not end within {timeout:.0f} s")


def run_auto_demo(
    say: Callable[[str], None], progress: Callable[[str], None], gateway: str = "api7"
) -> bool:
    with DemoEnvironment(
        versions=("v1", "v2", "v3"), progress=progress, with_prometheus=True, gateway=gateway
    ) as env:
        env.backends["v3"].fail_rate = 0.3
        say(data_plane_of(env.kit))
        queries = [arg for arg in env.kit.controller_args() if arg.startswith("--query-")]
        if queries:  # else the controller's defaults for this gateway
            say("the controller judges each step with:\n" + "\n".join(f"  {q}" for q in queries))
        assert env.prometheus is not None  # with_prometheus=True
        say(f"Prometheus at {env.prometheus.url} scrapes the gateway's data plane every second")
        for command in (
            f"kubectl apply -f error-page-v1.yaml -n {NAMESPACE}",
            f'{ANNOTATE} error-page-v1 "api7.cloud/published-service=error-page"',
        ):
            say(f"$ {command}")
            env.shell(command)
        env.wait_for_split((f"{NAMESPACE}/error-page-v1", None, 0))
        with LoadGenerator(env.kit.dataplane_url, rate=50) as load:
            say("\n== v2 (healthy): canaryctl steps 10 -> 30 -> 60 -> 100 %, judging each step")
            v2 = release(env, "v2", say)
            say(f"$ kubectl delete service error-page-v1 -n {NAMESPACE}")
            env.kubectl("delete", "service", "error-page-v1", "-n", NAMESPACE)
            env.wait_for_split((f"{NAMESPACE}/error-page-v2", None, 0))
            say("  v2 promoted: it is now the stable (default upstream)")
            say("\n== v3 (fails 30 % of its requests)")
            v3 = release(env, "v3", say)
        say(f"\ntraffic sent: {sum(load.counts().values())} requests ({_summary(load.counts())})")
        promoted = v2.get("phase") == "Succeeded"
        rolled_back = v3.get("phase") == "RolledBack" and v3.get("weight") == 0
        say(
            f"v2: {v2.get('phase')} | v3: {v3.get('phase')} at {v3.get('weight')} % "
            f"({(v3.get('lastCheck') or {}).get('message', 'no check')})"
        )
        exit_code = env.stop_controller()
    return promoted and rolled_back and exit_code == 0


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{answer}: {count}" for answer, count in sorted(counts.items()))
