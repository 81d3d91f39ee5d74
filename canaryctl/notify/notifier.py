"""The reconciler's notifier: turn one reconcile's release Events into channel deliveries.

`Reconciler.act` calls `notify(outcome, services)` once the gateway write succeeded and the
statuses were written, so a notification always describes a state that was applied and
persisted. This only picks the notified Events (`canaryctl.notify.messages`), builds each
notification with the canary's release state from the outcome, and hands it to the sender of
every channel that wants it — the `default` channel, and those the Service names in
`api7.cloud/canary-notify` — without waiting for any delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from canaryctl import metrics
from canaryctl.annotations import STATUS
from canaryctl.notify.config import DEFAULT_CHANNEL, ChannelConfig, requested_channels
from canaryctl.notify.messages import Notification, event_name, idempotency_key
from canaryctl.notify.sender import WebhookSender
from canaryctl.objects import Service
from canaryctl.outcome import Outcome, ServiceEvent
from canaryctl.release.config import STEPS, parse_steps
from canaryctl.release.state import ReleaseState
from canaryctl.status import MemberStatus

log = logging.getLogger(__name__)


class Notifier:
    """Routes release Events to webhook channels; one sending thread per channel."""

    def __init__(self, senders: Mapping[str, WebhookSender]):
        self.senders = dict(senders)
        self._warned_unknown: set[str] = set()

    @classmethod
    def from_channels(cls, channels: Mapping[str, ChannelConfig]) -> Notifier:
        return cls({name: WebhookSender(channel) for name, channel in channels.items()})

    def notify(self, outcome: Outcome, services: Mapping[str, Service]) -> None:
        """Queue a notification for every notified Event of `outcome`; never blocks."""
        for event in outcome.notices:
            service = services.get(event.service_key)
            if service is None:
                continue
            notification = self._notification(outcome, event, service)
            if notification is not None:
                for sender in self._senders_for(service, notification.event):
                    sender.submit(notification)

    def flush(self, timeout: float = 5.0) -> bool:
        return all(sender.flush(timeout) for sender in self.senders.values())

    def stop(self, timeout: float = 2.0) -> None:
        for sender in self.senders.values():
            sender.stop(timeout)

    def _notification(
        self, outcome: Outcome, event: ServiceEvent, service: Service
    ) -> Notification | None:
        release = _release_after(outcome, service)
        name = event_name(event.reason, release)
        if name is None:
            return None
        return Notification(
            event=name,
            type=event.type,
            namespace=service.namespace,
            app=outcome.app,
            service=service.key,
            message=event.message,
            release=release,
            step_count=_step_count(service),
            key=idempotency_key(outcome.app, service.key, name, release, event.message),
        )

    def _senders_for(self, service: Service, event: str) -> list[WebhookSender]:
        wanted, invalid = requested_channels(service.annotations)
        unknown = [name for name in wanted if name not in self.senders]
        if invalid or unknown:
            self._warn_unknown(service, invalid + len(unknown))
        names = dict.fromkeys([DEFAULT_CHANNEL, *wanted])
        senders = [self.senders[name] for name in names if name in self.senders]
        return [s for s in senders if s.channel.events is None or event in s.channel.events]

    def _warn_unknown(self, service: Service, count: int) -> None:
        metrics.notification_unknown_channels_total.inc(count)
        if service.key not in self._warned_unknown:  # once per Service: names are user input
            self._warned_unknown.add(service.key)
            log.warning(
                "the Service names %d notification channel(s) the controller does not know "
                "(see --notify-config)",
                count,
                extra={"service": service.key},
            )


def _release_after(outcome: Outcome, service: Service) -> ReleaseState | None:
    """The release state the outcome decided for `service`, else the one it carries."""
    if service.key in outcome.statuses:
        status = outcome.statuses[service.key]
        return None if status is None else status.release
    found = MemberStatus.parse(service.annotations.get(STATUS))
    return None if found is None else found.release


def _step_count(service: Service) -> int | None:
    raw = service.annotations.get(STEPS)
    steps = None if raw is None else parse_steps(raw.strip())
    return None if steps is None else len(steps)
