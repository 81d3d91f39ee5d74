"""Which release events become webhook notifications, and what each receiver is sent: pure.

A reconcile's outcome carries Events (`Outcome.notices`); a few of them are the moments a
release team wants in a chat channel: a release started, advanced a step, failed a check,
paused, rolled back, succeeded, was aborted or retried, got a hand-set weight, and the canary
was promoted to default upstream. Everything else (weight bookkeeping, no-data checks,
drift corrections) stays in Kubernetes Events only.

Every notification carries an idempotency key computed from the application, the Service, the
event and the release state the decision produced (phase, step, weight, step start, counts,
last check time, last action). Release decisions are idempotent — re-deciding an unchanged
state produces no Events — so a restarted controller sends nothing again; and a receiver can
drop a repeat by the key (also sent as the `Idempotency-Key` header).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from canaryctl.release.state import ReleaseState
from canaryctl.timestamps import format_utc

Format = Literal["json", "slack"]
FORMATS: tuple[Format, ...] = ("json", "slack")
SCHEMA = "canaryctl.release/v1"

# Event reason -> notified event name (StepAdvanced without a check yet is the release's start)
NOTIFIED_REASONS = frozenset(
    {
        "StepAdvanced",
        "AnalysisFailed",
        "Paused",
        "Resumed",
        "RolledBack",
        "Succeeded",
        "Aborted",
        "Retried",
        "ManualWeight",
        "Promoted",
    }
)
EVENTS = ("Started", *sorted(NOTIFIED_REASONS))
_COLORS = {"Normal": "good", "Warning": "danger"}


@dataclass(frozen=True)
class Notification:
    """One release event, as every channel receives it."""

    event: str  # one of EVENTS
    type: str  # the Kubernetes Event type: Normal or Warning
    namespace: str
    app: str
    service: str  # namespace/name of the Service the event is about
    message: str
    release: ReleaseState | None  # the canary's release state after the decision, if automated
    step_count: int | None  # steps in the schedule, when the Service still names them
    key: str  # idempotency key

    def to_dict(self, at: datetime) -> dict[str, Any]:
        """The generic JSON payload."""
        return {
            "schema": SCHEMA,
            "event": self.event,
            "type": self.type,
            "namespace": self.namespace,
            "app": self.app,
            "service": self.service,
            "message": self.message,
            "release": None if self.release is None else self.release.to_dict(),
            "stepCount": self.step_count,
            "idempotencyKey": self.key,
            "time": format_utc(at),
        }


def event_name(reason: str, release: ReleaseState | None) -> str | None:
    """The notified event for an Event `reason`, or None when it is not notified."""
    if reason not in NOTIFIED_REASONS:
        return None
    if reason == "StepAdvanced" and release is not None and release.last_check is None:
        return "Started"  # only the start moves a step without a check
    return reason


def idempotency_key(
    app: str, service: str, event: str, release: ReleaseState | None, message: str
) -> str:
    """The same key for the same decided state, a new one for any new decision.

    Without a release state (a promotion to default upstream) the message stands in for it.
    """
    if release is None:
        state: Any = message
    else:
        data = release.to_dict()
        check = data.pop("lastCheck") or {}
        data.pop("reason")
        state = {**data, "lastCheckAt": check.get("at")}
    text = json.dumps([app, service, event, state], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def payload(notification: Notification, fmt: Format, at: datetime) -> dict[str, Any]:
    """The body for a receiver of format `fmt`."""
    if fmt == "slack":
        return slack_payload(notification)
    return notification.to_dict(at)


def slack_payload(notification: Notification) -> dict[str, Any]:
    """Slack's incoming-webhook format: a text line, and the release's numbers as fields."""
    n = notification
    text = (
        f"*{_slack_escape(n.event)}* {_slack_escape(n.app)} "
        f"({_slack_escape(n.service)}): {_slack_escape(n.message)}"
    )
    fields = [{"title": "Event", "value": n.event, "short": True}]
    if n.release is not None:
        fields += [
            {"title": "Phase", "value": n.release.phase, "short": True},
            {"title": "Weight", "value": f"{n.release.weight} %", "short": True},
            {"title": "Step", "value": _step_text(n), "short": True},
        ]
    attachment = {
        "color": _COLORS.get(n.type, "warning"),
        "fallback": text,
        "fields": [{**f, "value": _slack_escape(str(f["value"]))} for f in fields],
        "footer": f"canaryctl · key {n.key}",
    }
    return {"text": text, "attachments": [attachment]}


def _step_text(notification: Notification) -> str:
    assert notification.release is not None
    count = notification.step_count
    return f"{notification.release.step + 1} of {'?' if count is None else count}"


def _slack_escape(text: str) -> str:
    """Slack reads &, < and > as markup; everything else is plain text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def summary(payload_dict: Mapping[str, Any]) -> str:
    """One line naming a delivered payload, for logs (never the URL)."""
    return str(payload_dict.get("event") or payload_dict.get("text", ""))[:80]
