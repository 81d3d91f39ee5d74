"""The `api7.cloud/canary-status` annotation: what canaryctl tells users on each member Service.

The planner decides the content (role, desired share, phase, message); the reconciler adds
what the gateway actually applied and the time, then writes the annotation only if
`changed` says so. `time` is ignored in that comparison, so re-reconciling an unchanged
application never rewrites a status (no write storms on resync, no spurious watch events).

Weights here are the member's own share of its application's requests: 90 on a stable whose
canary takes 10, 10 on that canary. That is what a reader of one Service wants to know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from canaryctl.gateway.model import AppState

Role = Literal["stable", "canary", "none"]


@dataclass(frozen=True)
class StatusDoc:
    """The planner's part of one member's status."""

    role: Role
    app: str
    desired_weight: (
        int | None
    )  # the member's desired share in percent; None when the app is on hold
    phase: str  # Stable, Canary, Promoted, Invalid, Conflict, Holding
    message: str


def applied_share(state: AppState | None, version: str) -> int | None:
    """The share of requests `state` routes to upstream `version`; None when canaryctl does not own it."""
    if state is None or not state.owned:
        return None
    canary_weight = state.weight if state.canary is not None else 0
    if state.canary is not None and state.canary.key == version:
        return canary_weight
    if state.stable is not None and state.stable.key == version:
        return 100 - canary_weight
    return 0


def render(
    doc: StatusDoc, applied_weight: int | None, now: datetime, release: dict | None = None
) -> str:
    """The annotation value: compact JSON; `now` must be timezone-aware and is written in UTC."""
    if now.tzinfo is None:
        raise ValueError("render() needs a timezone-aware time")
    fields = _fields(doc, applied_weight, release)
    fields["time"] = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


def changed(
    previous_json: str | None,
    doc: StatusDoc,
    applied_weight: int | None,
    release: dict | None = None,
) -> bool:
    """Whether writing `doc` would tell the user anything new compared with `previous_json`."""
    if previous_json is None:
        return True
    try:
        previous = json.loads(previous_json)
    except ValueError:
        return True
    if not isinstance(previous, dict):
        return True
    previous.pop("time", None)
    return previous != _fields(doc, applied_weight, release)


def _fields(
    doc: StatusDoc, applied_weight: int | None, release: dict | None = None
) -> dict[str, Any]:
    """`release` is an automated canary's persisted release state (release.state.ReleaseState.to_dict)."""
    fields = {
        "role": doc.role,
        "app": doc.app,
        "desiredWeight": doc.desired_weight,
        "appliedWeight": applied_weight,
        "phase": doc.phase,
        "message": doc.message,
    }
    if release is not None:
        fields["release"] = release
    return fields
