"""The release's HTTP hooks and gates as data: which call to make, to where, with what body.

A release can ask outside systems before it moves: a `pre` hook before the first step (no
traffic yet), a `step` hook at every check, a `promote` gate before 100 %, and it tells a
`rollback` hook after taking the canary back to 0 %. Deciding *which* call is due is pure
(`canaryctl.release.runner`, `canaryctl.release.decide`); making it is I/O
(`canaryctl.release.hookclient`). A `HookCall` is what travels between them: the URL, the
time budget, and everything the JSON body says. The body:

    {"hook": "step", "app": "error-page", "namespace": "shop", "canary": "error-page-v2",
     "stable": "error-page-v1", "phase": "Progressing", "step": 2, "steps": 5, "weight": 10,
     "reason": "", "lastCheck": {... as in the status annotation, or null}}

`step` counts from 1, as the Events do; `stable` is `namespace/name` when the stable Service
lives in another namespace than the canary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

from canaryctl.release.observations import HookKind
from canaryctl.release.state import CheckResult, ReleaseState, check_to_dict


@dataclass(frozen=True)
class HookContext:
    """Which release a call is about."""

    app: str
    namespace: str  # the canary's
    canary: str
    stable: str  # a Service name, or namespace/name when not in the canary's namespace
    steps: int  # how many steps the schedule has


@dataclass(frozen=True)
class HookCall:
    """One call to make: POST `body()` to `url` within `timeout_s` seconds, retries included."""

    hook: HookKind
    url: str
    timeout_s: float
    context: HookContext
    state: ReleaseState  # the release as it stands when the call is made
    check: CheckResult | None = None  # the check the call is about; None: the state's last one
    check_at: datetime | None = None

    def about(self, check: CheckResult, at: datetime) -> HookCall:
        """This call, telling about `check` made at `at` rather than the state's last check."""
        return replace(self, check=check, check_at=at)

    def payload(self) -> dict:
        state, context = self.state, self.context
        check, at = self.check, self.check_at
        if check is None:
            check, at = state.last_check, state.last_check_at
        return {
            "hook": self.hook,
            "app": context.app,
            "namespace": context.namespace,
            "canary": context.canary,
            "stable": context.stable,
            "phase": state.phase,
            "step": state.step + 1,
            "steps": context.steps,
            "weight": state.weight,
            "reason": state.reason,
            "lastCheck": None if check is None else check_to_dict(check, at),
        }

    def body(self) -> bytes:
        return json.dumps(self.payload(), separators=(",", ":")).encode()


def context_of(
    app: str, canary: tuple[str, str], stable: tuple[str, str], steps: int
) -> HookContext:
    """The context of a release from (namespace, name) of its canary and stable Services."""
    stable_name = stable[1] if stable[0] == canary[0] else f"{stable[0]}/{stable[1]}"
    return HookContext(app, canary[0], canary[1], stable_name, steps)
