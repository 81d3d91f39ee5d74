"""`canaryctl run` with the decision taken out: the floor under bench_efficiency.py's CPU.

A weight change costs the controller what the contract requires it to do (read three watch
events into the cache, hand the app to a worker, write the gateway once, patch two statuses,
record an Event) plus what canaryctl decides on the way (parse the members, plan the gateway
objects, compare, build the statuses, export metrics). This program is the same process
(`canaryctl.cli` with the `run` arguments, the same informer, queue, wire, metrics and
health servers) whose reconcile, once an app is published, skips every decision: it reads
the canary's percentage annotation and writes a precomputed API7 canary body with that
percent, then both statuses with the new shares. What one change costs it is the floor no
cut to canaryctl's own logic can go below on the same machine.

Only for API7 Cloud, and only for the benchmark's one app. Run by
`bench_efficiency.py --floor`; not a controller anyone should deploy.
"""

from __future__ import annotations

import sys
from typing import Any

from canaryctl.annotations import CANARY, PERCENT
from canaryctl.commands import run as run_command
from canaryctl.gateway.api7.bodies import writable
from canaryctl.reconciler import APP_INDEX, Reconciler, Result
from canaryctl.status import MemberStatus


class FloorReconciler:
    """Reconciles through `real` until the app's canary release exists, then only writes."""

    def __init__(self, real: Reconciler):
        self.real = real
        self.captured: tuple[Any, str, dict] | None = None  # API7 client, app id, canary

    def reconcile(self, app: str) -> Result:
        members = self.real.services.by_index(APP_INDEX, app)
        canary = next((s for s in members if s.annotations.get(CANARY) == "true"), None)
        stable = next((s for s in members if s is not canary), None)
        if self.captured is None or canary is None or stable is None:
            result = self.real.reconcile(app)
            self._capture(app)
            return result
        client, app_id, release = self.captured
        weight = int(canary.annotations[PERCENT])
        client.replace_canary(app_id, release["id"], {**writable(release), "percent": weight})
        message = f"canary of application {app}: {weight} % of requests"
        self.real.recorder.normal(canary, "CanaryWeightChanged", message)
        now = self.real.now()
        for service, role, share in ((canary, "canary", weight), (stable, "stable", 100 - weight)):
            text = f"{role} of application {app}; receives {share} % of requests"
            status = MemberStatus(role, app, share, role.title(), text, applied_weight=share)
            self.real.patch_status(service, status.render(now))
        return Result()

    def _capture(self, app: str) -> None:
        state = self.real.gateway_cache.get(app)
        if state is None or state.canary is None or not state.raw.canaries:
            return
        self.captured = (self.real.gateway.client, state.raw.app["id"], state.raw.canaries[0])


def main(argv: list[str]) -> int:
    build_controller = run_command.build_controller

    def build_floor(*args: Any, **kwargs: Any):
        controller = build_controller(*args, **kwargs)
        controller.reconciler = FloorReconciler(controller.reconciler)
        return controller

    run_command.build_controller = build_floor
    from canaryctl.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
