"""Release notifications end to end through the loop body: a real `Reconciler` over real
caches and an in-memory gateway, its notifier posting to webhook receivers on 127.0.0.1.

What must hold: the notified release moments arrive in order with the release state, as
generic JSON or Slack payloads; a restarted controller re-deciding the same persisted state
notifies nothing; a receiver that hangs or answers 500 never holds up a reconcile, is retried
and then given up (counted); channels named by a Service get its events; no URL is logged.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from canaryctl import annotations as ann
from canaryctl import metrics
from canaryctl.cache import ServiceStore
from canaryctl.gateway.cache import GatewayCache
from canaryctl.notify.config import NOTIFY, ChannelConfig, UrlSource
from canaryctl.notify.notifier import Notifier
from canaryctl.notify.sender import WebhookSender
from canaryctl.objects import Service, ServicePort
from canaryctl.reconciler import INDEXERS, Reconciler
from canaryctl.release.config import FAILURE_LIMIT, STEP_INTERVAL, STEPS
from canaryctl.release.state import CheckResult, MetricCheck
from canaryctl.testing.memory_gateway import MemoryGateway
from canaryctl.testing.processes import wait_until
from canaryctl.testing.webhook import WebhookReceiver

APP = "shop"
T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
SECRET_PATH = "/services/T000/B000/very-secret-token"
PASS = CheckResult(
    "pass", "error rate 0 % <= 1 %", 100, 10, (MetricCheck("error_rate", 0, 1, True),)
)
FAIL = CheckResult(
    "fail", "error rate 9 % > 1 %", 100, 10, (MetricCheck("error_rate", 9, 1, False),)
)


def service(name: str, **annotations: str) -> Service:
    return Service(
        "shop-ns",
        name,
        f"uid-{name}",
        "1",
        MappingProxyType({ann.APP: APP, **annotations}),
        (ServicePort("http", 80),),
    )


def automated_canary(**more: str) -> Service:
    settings = {STEPS: "10,50", STEP_INTERVAL: "10s", FAILURE_LIMIT: "1"}
    return service("v2", **{ann.CANARY: "true", **settings, **more})


class Checks:
    """The analyzer's place in the loop: answers checks from a list."""

    def __init__(self, *answers: CheckResult):
        self.answers = list(answers)

    def check(self, config, canary, stable, window_s, now) -> CheckResult:
        return self.answers.pop(0)


class Loop:
    """A controller's loop body over `store`; a new Loop over the same store is a restart."""

    def __init__(self, store: ServiceStore, gateway: MemoryGateway, notifier: Notifier, checks):
        self.store, self.now = store, T0
        cache = GatewayCache()
        cache.replace(gateway.list_apps())
        self.reconciler = Reconciler(
            store,
            cache,
            gateway,
            self,
            self.patch_status,
            checks,
            now=lambda: self.now,
            notifier=notifier,
        )

    def normal(self, service: Service, reason: str, message: str) -> None:
        pass

    warning = normal

    def patch_status(self, service: Service, value: str | None) -> None:
        annotations = {k: v for k, v in service.annotations.items() if k != ann.STATUS}
        if value is not None:
            annotations[ann.STATUS] = value
        version = str(int(service.resource_version) + 1)
        self.store.upsert(
            Service(
                service.namespace,
                service.name,
                service.uid,
                version,
                MappingProxyType(annotations),
                service.ports,
            )
        )

    def at(self, seconds: float) -> Loop:
        self.now = T0 + timedelta(seconds=seconds)
        self.reconciler.reconcile(APP)
        return self


def store_of(*services: Service) -> ServiceStore:
    store = ServiceStore(INDEXERS)
    for each in services:
        store.upsert(each)
    return store


def sender(name: str, url: str, fmt="json", events=None, **options) -> WebhookSender:
    options = {"timeout": (2.0, 10.0), "retry_delays": (0.05, 0.1, 0.2), **options}
    return WebhookSender(ChannelConfig(name, UrlSource(inline=url), fmt, events), **options)


def notifier(**senders: WebhookSender) -> Notifier:
    return Notifier(senders)


def count(result: str, channel: str = "default") -> float:
    labels = {"channel": channel, "result": result}
    return metrics.REGISTRY.get_sample_value("canaryctl_notifications_total", labels) or 0.0


@pytest.fixture
def no_url_in_logs(caplog, monkeypatch):
    """Log everything canaryctl says at DEBUG (urllib3 at WARNING, as `logs.setup` sets it);
    afterwards, no record may contain the secret part of a URL."""
    monkeypatch.setattr(logging.getLogger("urllib3"), "level", logging.WARNING)
    caplog.set_level(logging.DEBUG)
    yield caplog
    for record in caplog.records:
        assert "very-secret-token" not in json.dumps(vars(record), default=str)


def test_release_moments_arrive_as_json_with_the_release_state(no_url_in_logs):
    with WebhookReceiver(path=SECRET_PATH) as hook:
        notify = notifier(default=sender("default", hook.url))
        store = store_of(service("v1"), automated_canary())
        loop = Loop(store, MemoryGateway(), notify, Checks(PASS, FAIL))
        loop.at(0).at(11).at(22)
        assert notify.flush(10)
        bodies = hook.bodies()
    assert [b["event"] for b in bodies] == [
        "Started",
        "StepAdvanced",
        "AnalysisFailed",
        "RolledBack",
    ]
    assert [b["release"]["weight"] for b in bodies] == [10, 50, 0, 0]
    assert bodies[0]["release"]["phase"] == "Progressing" and bodies[0]["stepCount"] == 3
    assert bodies[3]["release"]["phase"] == "RolledBack" and bodies[3]["type"] == "Warning"
    assert {b["service"] for b in bodies} == {"shop-ns/v2"} and bodies[0]["app"] == APP
    assert [r.headers["Idempotency-Key"] for r in hook.received] == [
        b["idempotencyKey"] for b in bodies
    ]
    assert len({b["idempotencyKey"] for b in bodies}) == 4
    notify.stop()


def test_slack_receivers_get_text_and_fields():
    with WebhookReceiver() as hook:
        notify = notifier(default=sender("default", hook.url, "slack"))
        Loop(store_of(service("v1"), automated_canary()), MemoryGateway(), notify, Checks()).at(0)
        assert notify.flush(10)
        [body] = hook.bodies()
    assert body["text"].startswith("*Started* shop (shop-ns/v2): release started")
    fields = {f["title"]: f["value"] for f in body["attachments"][0]["fields"]}
    assert fields["Weight"] == "10 %" and fields["Step"] == "1 of 3"
    notify.stop()


def test_a_restarted_controller_notifies_nothing_again():
    with WebhookReceiver() as hook:
        store, gateway = store_of(service("v1"), automated_canary()), MemoryGateway()
        first = notifier(default=sender("default", hook.url))
        Loop(store, gateway, first, Checks(PASS)).at(0).at(11).at(12)  # the last: nothing new
        assert first.flush(10)
        first.stop()
        before = len(hook.received)
        restarted = notifier(default=sender("default", hook.url))  # remembers no key
        Loop(store, gateway, restarted, Checks()).at(13).at(14)
        assert restarted.flush(10)
        assert before == 2 and len(hook.received) == before
        restarted.stop()


def test_a_hanging_receiver_never_holds_up_a_reconcile(no_url_in_logs):
    with WebhookReceiver(hang=True, path=SECRET_PATH) as hook:
        notify = notifier(default=sender("default", hook.url, timeout=(2.0, 10.0)))
        loop = Loop(
            store_of(service("v1"), automated_canary()), MemoryGateway(), notify, Checks(PASS)
        )
        loop.at(0)  # Started: its delivery hangs
        wait_until(lambda: hook.in_flight == 1, 10, "the receiver to hold the first delivery")
        started = time.monotonic()
        loop.at(11)  # StepAdvanced: decided, written and queued while the receiver hangs
        took = time.monotonic() - started
        assert hook.in_flight == 1, "the step was taken while the delivery was still held"
        assert loop.store.get("shop-ns/v2").annotations[ann.STATUS].count('"weight":50') == 1
        assert took < 10.0, f"the reconcile waited for the receiver ({took:.3f} s)"
        print(f"reconcile with a hanging receiver: {took * 1000:.1f} ms")
        hook.release()
        assert notify.flush(15)
    assert [b["event"] for b in hook.bodies()] == ["Started", "StepAdvanced"]
    notify.stop()


def test_a_failing_receiver_is_retried_then_given_up_and_counted(no_url_in_logs):
    failed, sent = count("failed"), count("sent")
    retries = metrics.REGISTRY.get_sample_value(
        "canaryctl_notification_retries_total", {"channel": "default"}
    )
    with WebhookReceiver(status=500, path=SECRET_PATH) as hook:
        notify = notifier(default=sender("default", hook.url))
        Loop(store_of(service("v1"), automated_canary()), MemoryGateway(), notify, Checks()).at(0)
        assert notify.flush(10)
    assert len(hook.received) == 4  # the first try and three retries
    assert len({r.headers["Idempotency-Key"] for r in hook.received}) == 1
    assert count("failed") == failed + 1 and count("sent") == sent
    assert (
        metrics.REGISTRY.get_sample_value(
            "canaryctl_notification_retries_total", {"channel": "default"}
        )
        == retries + 3
    )
    assert any("HTTP 500" in r.getMessage() for r in no_url_in_logs.records)
    notify.stop()


def test_a_rejecting_receiver_is_not_retried():
    with WebhookReceiver(status=404) as hook:
        notify = notifier(default=sender("default", hook.url))
        Loop(store_of(service("v1"), automated_canary()), MemoryGateway(), notify, Checks()).at(0)
        assert notify.flush(10)
    assert len(hook.received) == 1
    notify.stop()


def test_services_route_their_events_to_the_channels_they_name():
    unknown = metrics.REGISTRY.get_sample_value("canaryctl_notification_unknown_channels_total")
    with WebhookReceiver() as default, WebhookReceiver() as team, WebhookReceiver() as audit:
        notify = notifier(
            default=sender("default", default.url),
            payments=sender("payments", team.url, "slack"),
            audit=sender("audit", audit.url, events=frozenset({"RolledBack"})),
        )
        canary = automated_canary(**{NOTIFY: "payments, audit, nope"})
        store = store_of(service("v1"), canary)
        Loop(store, MemoryGateway(), notify, Checks(FAIL)).at(0).at(11)
        assert notify.flush(10)
        assert [b["event"] for b in default.bodies()] == ["Started", "AnalysisFailed", "RolledBack"]
        assert [b["text"].split()[0] for b in team.bodies()] == [
            "*Started*",
            "*AnalysisFailed*",
            "*RolledBack*",
        ]
        assert [b["event"] for b in audit.bodies()] == ["RolledBack"]
    now_unknown = metrics.REGISTRY.get_sample_value("canaryctl_notification_unknown_channels_total")
    assert now_unknown > unknown
    notify.stop()


def test_a_full_queue_drops_and_counts_instead_of_blocking():
    dropped = count("dropped", "tiny")
    with WebhookReceiver(hang=True) as hook:
        notify = notifier(default=sender("tiny", hook.url, max_pending=1))
        store = store_of(service("v1"), automated_canary())
        loop = Loop(store, MemoryGateway(), notify, Checks(PASS, FAIL))
        loop.at(0)
        wait_until(lambda: hook.in_flight == 1, 10, "the receiver to hold the first delivery")
        loop.at(11).at(22)  # three more notifications, room for one
        assert count("dropped", "tiny") == dropped + 2
        hook.release()
        assert notify.flush(15)
    notify.stop()
