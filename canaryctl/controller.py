"""Wire the controller's threads together: informer -> work queue -> workers -> gateway.

As in sample-controller's `main`, this module only wires: the Service informer fills the
cache and enqueues application names, N workers take names and run `Reconciler.reconcile`, a
resync thread re-reads the gateway so changes made behind canaryctl's back are corrected, and
two small HTTP endpoints expose metrics and health. Workers start only after the Service cache
and the gateway cache are synced. (The informer, the Event recorder and the HTTP endpoints run
threads of their own; this module starts them.)

`canaryctl.assembly.build_controller` assembles the real parts; `Controller` takes them, so
its loop can be tested with an in-memory gateway and a static informer.

Under leader election (`canaryctl.leadership`) every replica runs `start(lead=False)`: caches
synced and kept warm, health served, nothing written. The replica that wins the Lease calls
`start_leading()` (re-read the gateway, enqueue every app, start the workers); a graceful
stop calls `stop_leading()` before the Lease is handed back. Informer events and resyncs
enqueue only while leading: the new leader enqueues everything anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from canaryctl import metrics
from canaryctl.annotations import relevant_fingerprint
from canaryctl.cache import ServiceStore
from canaryctl.gateway.base import Gateway, GatewayError
from canaryctl.gateway.cache import GatewayCache
from canaryctl.objects import Service
from canaryctl.reconciler import (
    APP_INDEX,
    PatchStatus,
    Reconciler,
    ReconcileSettings,
    apps_of,
)
from canaryctl.reconciler import Notifier as ReconcileNotifier  # + flush/stop, below
from canaryctl.release.analysis import Analyzer
from canaryctl.release.hookclient import HookClient
from canaryctl.server import Endpoint, MetricsEndpointFactory, health_endpoint, metrics_endpoint
from canaryctl.tenancy import Bindings
from canaryctl.workqueue import RateLimitingQueue, new_controller_queue

log = logging.getLogger(__name__)
QUEUE_NAME = "service"


@dataclass(frozen=True)
class Settings:
    namespaces: Sequence[str] | None = None  # None: all namespaces
    cluster_domain: str = "cluster.local"
    workers: int = 2
    resync_period: float = 600.0  # seconds between full gateway reads
    metrics_addr: str = ":8080"
    health_addr: str = ":8081"
    dry_run: bool = False
    sync_timeout: float = 120.0
    analyzer: Analyzer | None = None  # release analysis; None without --prometheus-url
    suspect_window: float = 60.0  # seconds a write whose outcome is unknown may still land
    require_app_binding: bool = False  # app names must be listed on their Namespace
    metrics_server: MetricsEndpointFactory = metrics_endpoint  # run --metrics-secure: HTTPS + auth
    notifier: Notifier | None = None  # release events to webhooks (run --notify-*)
    hooks: HookClient | None = None  # release hooks (None: one allowing all but link-local)


class Informer(Protocol):
    def start(self) -> object: ...
    def wait_for_sync(self, timeout: float | None = None) -> bool: ...
    def has_synced(self) -> bool: ...
    def stop(self, timeout: float = 2.0) -> None: ...


class Notifier(ReconcileNotifier, Protocol):
    def flush(self, timeout: float = 5.0) -> bool: ...
    def stop(self, timeout: float = 2.0) -> None: ...


class EventSink(Protocol):
    def normal(self, service: Service, reason: str, message: str) -> None: ...
    def warning(self, service: Service, reason: str, message: str) -> None: ...
    def flush(self, timeout: float = 5.0) -> bool: ...
    def stop(self, timeout: float = 2.0) -> None: ...


class Controller:
    """One canaryctl controller process: start(), then stop() on SIGTERM."""

    informer: Informer  # set by assembly.build_controller (or a test) before start()
    extra_informers: list[Informer]  # more caches the decisions read (Namespace bindings)

    def __init__(
        self,
        store: ServiceStore,
        gateway: Gateway,
        recorder: EventSink,
        patch_status: PatchStatus,
        settings: Settings = Settings(),
        queue: RateLimitingQueue | None = None,
        bindings: Callable[[], Bindings] | None = None,
    ):
        self.settings = settings
        self.store, self.gateway, self.recorder = store, gateway, recorder
        self.extra_informers = []
        self.gateway_cache = GatewayCache()
        self.queue = queue or new_controller_queue(QUEUE_NAME)
        reconcile_settings = ReconcileSettings(
            settings.cluster_domain,
            settings.namespaces,
            settings.dry_run,
            settings.suspect_window,
            bindings,
            cross_namespace=getattr(gateway, "cross_namespace_members", True),
            backend=gateway.name,
        )
        self.reconciler = Reconciler(
            store,
            self.gateway_cache,
            gateway,
            recorder,
            patch_status,
            settings.analyzer,
            reconcile_settings,
            notifier=settings.notifier,
            hooks=settings.hooks,
        )
        self._stopping = threading.Event()
        self._standby = threading.Event()  # set while another replica leads: enqueue nothing
        self._leadership = threading.Lock()  # start_leading vs stop_leading
        self._leadership_over = False  # stop_leading ran: never lead again
        self._threads: list[threading.Thread] = []
        self._workers: list[threading.Thread] = []
        self._endpoints: list[Endpoint] = []

    # start-up ----------------------------------------------------------------------------

    def start(self, lead: bool = True) -> Controller:
        """Serve metrics and health, sync both caches, then (unless `lead` is False: a standby
        under leader election) start leading."""
        metrics.initialise(QUEUE_NAME)
        self._endpoints = [
            self.settings.metrics_server(self.settings.metrics_addr, metrics.REGISTRY).start(),
            health_endpoint(self.settings.health_addr, self.ready).start(),
        ]
        if not lead:
            self._standby.set()
        for informer in (self.informer, *self.extra_informers):
            informer.start()
        for informer in (self.informer, *self.extra_informers):
            if not informer.wait_for_sync(self.settings.sync_timeout):
                raise RuntimeError("the Kubernetes caches did not sync in time")
        self._watch_gateway()
        self.load_gateway_cache(resuming=True)
        self._spawn("gateway-resync", self.resync_gateway_forever)
        apps = len(self.gateway_cache.owned_names())
        log.info("controller started", extra={"services": len(self.store), "apps": apps})
        if lead:
            self.start_leading(reload_gateway=False)
        return self

    def start_leading(self, reload_gateway: bool = True) -> None:
        """Become the writer: enqueue every app, start the workers. A standby's gateway cache
        may predate the old leader's last writes: read it again first, and once more when a
        write that leader sent just before it stopped can no longer land (suspect window)."""
        if reload_gateway:
            self.load_gateway_cache()
            self._spawn("takeover-resync", self._resync_after_suspect_window)
        with self._leadership:  # a stop that came first wins: no worker it could not wait for
            if self._leadership_over:
                return
            self._standby.clear()  # from here informer events enqueue; earlier ones below
            apps = {*self.gateway_cache.owned_names(), *self.store.index_values(APP_INDEX)}
            for app in sorted(apps):  # incl. owned apps whose members left while we were down
                self.queue.add(app)
            for index in range(self.settings.workers):
                self._workers.append(self._spawn(f"worker-{index}", self.run_worker))
        log.info("leading: reconciling every application", extra={"apps": len(apps)})

    def stop_leading(self, timeout: float = 5.0) -> bool:
        """Stop taking work, let in-flight reconciles and queued Events finish (bounded); True
        if all finished in time, so the Lease can be handed back safely."""
        deadline = time.monotonic() + timeout
        with self._leadership:
            self._leadership_over = True
            self._standby.set()
        drain = threading.Thread(target=self.queue.shut_down_with_drain, daemon=True)
        drain.start()
        for thread in [drain, *self._workers]:
            thread.join(max(0.0, deadline - time.monotonic()))
        busy = drain.is_alive() or any(worker.is_alive() for worker in self._workers)
        flushed = self.recorder.flush(max(0.0, deadline - time.monotonic()))
        return not busy and flushed

    def ready(self) -> bool:
        synced = self.informer.has_synced() and self.gateway_cache.loaded
        gateway_synced = getattr(self.gateway, "has_synced", lambda: True)()
        return synced and gateway_synced and not self._stopping.is_set()

    def _watch_gateway(self) -> None:
        """Backends that watch what they wrote (optional `start(notify)`) tell us of changes."""
        start = getattr(self.gateway, "start", None)
        if start is not None:
            start(self.gateway_changed)

    def gateway_changed(self, app: str) -> None:
        """The gateway changed `app` behind canaryctl's back: read it again, then reconcile."""
        self.gateway_cache.mark_suspect(app, until=datetime.now(UTC))
        if not self._standby.is_set():
            self.queue.add(app)

    def load_gateway_cache(self, resuming: bool = False) -> None:
        """Read the whole gateway once; retry with backoff: nothing can be decided without it.

        `resuming` (the process starts): a backend may offer a cheaper read that is enough to
        resume from (`list_apps_to_resume`, see `gateway.base`); resyncs and a new leader's
        takeover read everything."""
        list_apps = self.gateway.list_apps
        if resuming:
            list_apps = getattr(self.gateway, "list_apps_to_resume", list_apps)
        delay = 1.0
        while not self._stopping.is_set():
            try:
                mark = self.gateway_cache.write_mark()
                self.gateway_cache.replace(list_apps(), mark)
                return
            except GatewayError as error:
                log.warning("cannot read the gateway yet: %s; retrying in %.0f s", error, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, 30.0)

    def _spawn(self, name: str, target: Callable[[], None]) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    # event handler: only enqueues ---------------------------------------------------------

    def enqueue_service_change(self, old: Service | None, new: Service | None) -> None:
        """Informer callback: enqueue the application(s) a Service change concerns.

        A change that touches nothing canaryctl reads (e.g. our own status annotation) is
        ignored, so writing status never triggers a reconcile loop.
        """
        if (
            old is not None
            and new is not None
            and old is not new
            and relevant_fingerprint(old) == relevant_fingerprint(new)
        ):
            return
        if self._standby.is_set():
            return
        for app in apps_of(old, new):
            self.queue.add(app)

    def enqueue_namespace(self, namespace: str) -> None:
        """A Namespace's name binding changed: look again at its Services' applications."""
        for service in self.store.list():
            if service.namespace == namespace:
                for app in apps_of(None, service):
                    self.queue.add(app)

    # workers --------------------------------------------------------------------------------

    def run_worker(self) -> None:
        """Process work items until the queue shuts down."""
        while self.process_next_work_item():
            pass

    def process_next_work_item(self) -> bool:
        """Reconcile one application name; False once the queue is shut down."""
        app, shutdown = self.queue.get(timeout=1.0)
        if shutdown:
            return False
        if app is None:
            return True
        assert isinstance(app, str)  # the queue holds application names
        started = time.monotonic()
        try:
            result = self.reconciler.reconcile(app)
        except Exception as error:
            _count("error", started)
            metrics.reconcile_errors_total.labels(metrics.CONTROLLER).inc()
            log.warning(
                "reconcile failed, will retry: %s",
                error,
                extra={"app": app},
                exc_info=not isinstance(error, GatewayError),
            )
            self.queue.add_rate_limited(app)
        else:
            self.queue.forget(app)
            if result.requeue_after is not None:
                _count("requeue_after", started)
                self.queue.add_after(app, result.requeue_after)
            else:
                _count("success", started)
        finally:
            self.queue.done(app)
        return True

    # gateway resync ------------------------------------------------------------------------

    def resync_gateway_forever(self) -> None:
        """Every resync period, re-read the gateway and look at every application again."""
        while not self._stopping.wait(self.settings.resync_period):
            self.resync_gateway()

    def _resync_after_suspect_window(self) -> None:
        if not self._stopping.wait(self.settings.suspect_window):
            self.resync_gateway()

    def resync_gateway(self) -> None:
        """Re-read the gateway; enqueue apps whose state changed, and every published app."""
        try:
            mark = self.gateway_cache.write_mark()
            changed = self.gateway_cache.replace(self.gateway.list_apps(), mark)
        except GatewayError as error:
            log.warning("gateway resync failed: %s", error)
            return
        if self._standby.is_set():
            return
        for name in changed:
            self.queue.add(name)
        for app in self.store.index_values(APP_INDEX):  # level-triggered: look at everything again
            self.queue.add(app)

    # shutdown ------------------------------------------------------------------------------

    def stop(self, timeout: float = 8.0) -> None:
        """Stop taking work, let in-flight reconciles finish (bounded), flush events."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        for informer in (self.informer, *self.extra_informers):
            informer.stop()
        drain = threading.Thread(target=self.queue.shut_down_with_drain, daemon=True)
        drain.start()
        for thread in [drain, *self._threads]:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.recorder.flush(max(0.5, deadline - time.monotonic()))
        self.recorder.stop()
        if self.settings.notifier is not None:
            self.settings.notifier.flush(max(0.5, deadline - time.monotonic()))
            self.settings.notifier.stop()
        for endpoint in self._endpoints:
            endpoint.stop()
        log.info("controller stopped")


def _count(result: str, started: float) -> None:
    metrics.series(metrics.reconcile_total, metrics.CONTROLLER, result).inc()
    metrics.series(metrics.reconcile_time_seconds, metrics.CONTROLLER).observe(
        time.monotonic() - started
    )
