"""Notification benchmark: what webhooks cost a reconcile, and what a bad receiver costs.

Runs the loop body (`Reconciler` over real caches and an in-memory gateway) through N
automated releases, each started by one reconcile that decides a step and notifies `Started`,
against: no notifier, a healthy receiver on 127.0.0.1, a receiver answering 500, and one
that never answers. Prints the reconcile time (p50/p99/max) per case, and how the
deliveries ended (sent, failed, dropped), so "a dead receiver never delays a release" is a
number.

    python tests/bench/bench_notify.py [--releases 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from types import MappingProxyType

from canaryctl import annotations as ann
from canaryctl import metrics
from canaryctl.cache import ServiceStore
from canaryctl.gateway.cache import GatewayCache
from canaryctl.notify.config import ChannelConfig, UrlSource
from canaryctl.notify.notifier import Notifier
from canaryctl.notify.sender import WebhookSender
from canaryctl.objects import Service, ServicePort
from canaryctl.reconciler import INDEXERS, Reconciler
from canaryctl.release.config import STEPS
from canaryctl.testing.memory_gateway import MemoryGateway
from canaryctl.testing.webhook import WebhookReceiver


class Sink:
    """Events and status patches go nowhere (the benchmark measures the notifier's share)."""

    def normal(self, service, reason, message) -> None:
        pass

    warning = normal

    def patch_status(self, service, value) -> None:
        pass


def services(app: str) -> list[Service]:
    ports = (ServicePort("http", 80),)
    stable = MappingProxyType({ann.APP: app})
    canary = MappingProxyType({ann.APP: app, ann.CANARY: "true", STEPS: "10,50"})
    return [
        Service("bench", f"{app}-v1", "u1", "1", stable, ports),
        Service("bench", f"{app}-v2", "u2", "1", canary, ports),
    ]


def reconcile_times(releases: int, notifier: Notifier | None) -> list[float]:
    store, sink = ServiceStore(INDEXERS), Sink()
    gateway = MemoryGateway()
    cache = GatewayCache()
    cache.replace({})
    reconciler = Reconciler(
        store, cache, gateway, sink, sink.patch_status, notifier=notifier,
        now=lambda: datetime.now(UTC),
    )  # fmt: skip
    times = []
    for index in range(releases):
        app = f"app-{index}"
        for service in services(app):
            store.upsert(service)
        started = time.perf_counter()
        reconciler.reconcile(app)
        times.append(time.perf_counter() - started)
    return times


def results(channel: str) -> str:
    counts = {
        result: metrics.REGISTRY.get_sample_value(
            "canaryctl_notifications_total", {"channel": channel, "result": result}
        )
        or 0
        for result in ("sent", "failed", "dropped")
    }
    return ", ".join(f"{name} {value:.0f}" for name, value in counts.items())


def report(case: str, times: list[float], deliveries: str = "") -> None:
    ms = sorted(t * 1000 for t in times)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    line = f"{case:<22} reconcile p50 {statistics.median(ms):6.2f} ms  p99 {p99:6.2f} ms  "
    print(line + f"max {ms[-1]:6.2f} ms" + (f"  | deliveries: {deliveries}" if deliveries else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=200)
    args = parser.parse_args()
    report("no notifier", reconcile_times(args.releases, None))
    for case, options in (
        ("healthy receiver", {}),
        ("receiver answering 500", {"status": 500}),
        ("receiver never answering", {"hang": True}),
    ):
        with WebhookReceiver(**options) as hook:
            name = case.split()[1]
            channel = ChannelConfig(name, UrlSource(inline=hook.url))
            sender = WebhookSender(channel, timeout=(1.0, 2.0), retry_delays=(0.1, 0.2))
            notifier = Notifier({"default": sender})
            times = reconcile_times(args.releases, notifier)
            if not options.get("hang"):
                notifier.flush(120)
            report(case, times, results(name))
            hook.release()
            notifier.stop()


if __name__ == "__main__":
    main()
