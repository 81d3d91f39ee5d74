"""The `api7.cloud/canary-status` annotation: what canaryctl tells users on each member Service.

One type, `MemberStatus`, is both what the controller writes and what everyone reads back:
the reconciler (which app a former member belonged to, whether a write would change
anything), the release automation (its persisted state lives under `release`) and
`canaryctl status`. Reading is lenient field by field, so one odd value never hides the rest.

Weights are the member's own share of its application's requests: 90 on a stable whose
canary takes 10, 10 on that canary. `time` says when the content last changed; it is not part
of the content, so re-reconciling an unchanged application never rewrites a status.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from canaryctl.gateway.model import AppState
from canaryctl.release.state import ReleaseState
from canaryctl.timestamps import format_utc, parse_utc

Role = Literal["stable", "canary", "none"]
ROLES: tuple[Role, ...] = ("stable", "canary", "none")
MAX_MESSAGE = 1024  # characters of a status message; longer ones are cut and say so
# Phases: Stable, Canary, Promoted (serving); Invalid, Conflict, Forbidden, Holding (on hold)


@dataclass(frozen=True)
class MemberStatus:
    """One member Service's status, as written into its status annotation."""

    role: Role
    app: str
    desired_weight: int | None  # the member's desired share in percent; None while on hold
    phase: str
    message: str
    applied_weight: int | None = None  # the share the gateway confirmed; None when unknown
    release: ReleaseState | None = None  # an automated canary's release state
    time: datetime | None = None  # when the content last changed

    def with_applied(self, state: AppState | None, key: str) -> MemberStatus:
        """This status with the share `state` routes to the Service `key`."""
        return replace(self, applied_weight=applied_share(state, key))

    def render(self, now: datetime) -> str:
        """The annotation value: compact JSON, stamped with `now`."""
        return json.dumps({**self._content(), "time": format_utc(now)}, separators=(",", ":"))

    def same_content(self, annotation: str | None) -> bool:
        """Whether `annotation` (a status as written before) says exactly this, time aside."""
        previous = _json_object(annotation)
        if previous is None:
            return False
        previous.pop("time", None)
        return bool(previous == self._content())

    @classmethod
    def parse(cls, annotation: str | None) -> MemberStatus | None:
        """The status in `annotation`; None when it is missing or not a JSON object.

        A Service version's status is read several times (each decision about its app, the
        notifier), so a parsed status is remembered by its text."""
        return None if annotation is None else _parse(annotation)

    @classmethod
    def _from_text(cls, annotation: str) -> MemberStatus | None:
        data = _json_object(annotation)
        if data is None:
            return None
        role = data.get("role")
        return cls(
            role=role if role in ROLES else "none",
            app=_text(data.get("app")),
            desired_weight=_percent(data.get("desiredWeight")),
            phase=_text(data.get("phase")),
            message=_text(data.get("message")),
            applied_weight=_percent(data.get("appliedWeight")),
            release=ReleaseState.from_dict(data.get("release")),
            time=_time(data.get("time")),
        )

    def _content(self) -> dict[str, Any]:
        content: dict[str, Any] = {
            "role": self.role,
            "app": self.app,
            "desiredWeight": self.desired_weight,
            "appliedWeight": self.applied_weight,
            "phase": self.phase,
            "message": bounded(self.message),
        }
        if self.release is not None:
            content["release"] = self.release.to_dict()
        return content


def status_app(annotation: str | None) -> str:
    """The app a status annotation names ("" when none): what the informer files a Service
    under on every event, so only this one field is read (`parse` reads everything)."""
    data = _json_object(annotation)
    return "" if data is None else _text(data.get("app"))


def _json_object(annotation: str | None) -> dict[str, Any] | None:
    """The JSON object `annotation` holds; None when it is missing or anything else."""
    try:
        data = json.loads(annotation or "null")
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        return None
    return data if isinstance(data, dict) else None


@functools.lru_cache(maxsize=256)  # enough for the members being reconciled
def _parse(annotation: str) -> MemberStatus | None:
    return MemberStatus._from_text(annotation)  # immutable, so one object can serve every reader


def applied_share(state: AppState | None, key: str) -> int | None:
    """The share of requests `state` routes to Service `key`; None if canaryctl doesn't own it."""
    if state is None or not state.owned:
        return None
    canary_weight = state.weight if state.canary is not None else 0
    if state.canary is not None and state.canary.key == key:
        return canary_weight
    if state.stable is not None and state.stable.key == key:
        return 100 - canary_weight
    return 0


def bounded(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text`, cut to `limit` characters with a note saying so."""
    if len(text) <= limit:
        return text
    kept = limit - 40  # room for the note
    return text[:kept] + f" ... ({len(text) - kept} more characters cut)"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _percent(value: Any) -> int | None:
    return value if type(value) is int and 0 <= value <= 100 else None


def _time(value: Any) -> datetime | None:
    try:
        return parse_utc(value)
    except (TypeError, ValueError):
        return None
