"""Wire the controller's threads together: informer -> work queue -> workers -> gateway.

This is the only module that starts threads for the controller (sample-controller's
`main`): the Service informer fills the cache and enqueues application keys, N workers
take keys and run `Reconciler.reconcile`, a resync thread re-reads the gateway so changes
made behind canaryctl's back are corrected, and two small HTTP endpoints expose metrics and
health. Workers start only after the Service cache and the gateway view are synced.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from canaryctl import metrics
from canaryctl.annotations import relevant_fingerprint
from canaryctl.cache import ServiceStore
from canaryctl.events import EventRecorder
from canaryctl.gateway.base import Gateway, GatewayError
from canaryctl.gateway.cache import GatewayCache
from canaryctl.informer import ServiceInformer
from canaryctl.kube import patch_service_annotations
from canaryctl.objects import Service
from canaryctl.reconciler import APP_INDEX, INDEXERS, Reconciler, apps_of
from canaryctl.release.analysis import Analyzer
from canaryctl.release.runner import ReleaseRunner
from canaryctl.server import MetricsEndpointFactory, health_endpoint, metrics_endpoint
from canaryctl.workqueue import new_controller_queue

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
    metrics_server: MetricsEndpointFactory = metrics_endpoint  # run --metrics-secure: HTTPS + auth


class Controller:
    """One canaryctl controller process: start(), then stop() on SIGTERM."""

    def __init__(self, api_client, gateway: Gateway, settings: Settings = Settings()):
        self.settings = settings
        self.gateway = gateway
        self.store = ServiceStore(INDEXERS)
        self.view = GatewayCache()
        self.queue = new_controller_queue(QUEUE_NAME)
        self.recorder = EventRecorder(api_client)
        self.reconciler = Reconciler(
            self.store,
            self.view,
            gateway,
            self.recorder,
            lambda namespace, name, changes: patch_service_annotations(
                api_client, namespace, name, changes
            ),
            cluster_domain=settings.cluster_domain,
            dry_run=settings.dry_run,
            releases=ReleaseRunner(settings.analyzer),
            namespaces=settings.namespaces,
        )
        self.informer = ServiceInformer(
            api_client, self.store, self.enqueue_service_change, namespaces=settings.namespaces
        )
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._endpoints = []

    # start-up ----------------------------------------------------------------------------

    def start(self) -> Controller:
        """Serve metrics and health, sync both caches, then start the workers."""
        metrics.initialise(QUEUE_NAME)
        self._endpoints = [
            self.settings.metrics_server(self.settings.metrics_addr, metrics.REGISTRY).start(),
            health_endpoint(self.settings.health_addr, self.ready).start(),
        ]
        self.informer.start()
        if not self.informer.wait_for_sync(self.settings.sync_timeout):
            raise RuntimeError("the Service cache did not sync in time")
        self._load_gateway_view()
        for name in self.view.owned_names():  # apps whose members vanished while we were down
            self.queue.add(name)
        for index in range(self.settings.workers):
            self._spawn(f"worker-{index}", self.run_worker)
        self._spawn("gateway-resync", self.resync_gateway)
        log.info(
            "controller started",
            extra={"services": len(self.store), "apps": len(self.view.owned_names())},
        )
        return self

    def ready(self) -> bool:
        return self.informer.has_synced() and self.view.loaded and not self._stopping.is_set()

    def _load_gateway_view(self) -> None:
        """Read the whole gateway once; retry with backoff, since nothing can be decided without it."""
        delay = 1.0
        while not self._stopping.is_set():
            try:
                mark = self.view.write_mark()
                self.view.replace(self.gateway.list_apps(), mark)
                return
            except GatewayError as error:
                log.warning("cannot read the gateway yet: %s; retrying in %.0f s", error, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, 30.0)

    def _spawn(self, name: str, target) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

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
        for app in apps_of(old, new):
            self.queue.add(app)

    # workers --------------------------------------------------------------------------------

    def run_worker(self) -> None:
        """Process work items until the queue shuts down."""
        while self.process_next_work_item():
            pass

    def process_next_work_item(self) -> bool:
        """Reconcile one application key; False once the queue is shut down."""
        app, shutdown = self.queue.get(timeout=1.0)
        if shutdown:
            return False
        if app is None:
            return True
        started = time.monotonic()
        try:
            result = self.reconciler.reconcile(app)
        except Exception as error:
            self._count("error", started)
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
                self._count("requeue_after", started)
                self.queue.add_after(app, result.requeue_after)
            else:
                self._count("success", started)
        finally:
            self.queue.done(app)
        return True

    @staticmethod
    def _count(result: str, started: float) -> None:
        metrics.reconcile_total.labels(metrics.CONTROLLER, result).inc()
        metrics.reconcile_time_seconds.labels(metrics.CONTROLLER).observe(
            time.monotonic() - started
        )

    # gateway resync ------------------------------------------------------------------------

    def resync_gateway(self) -> None:
        """Every resync period, re-read the gateway and reconcile apps whose state changed."""
        while not self._stopping.wait(self.settings.resync_period):
            try:
                mark = self.view.write_mark()
                changed = self.view.replace(self.gateway.list_apps(), mark)
            except GatewayError as error:
                log.warning("gateway resync failed: %s", error)
                continue
            for name in changed:
                self.queue.add(name)
            for app in self.store.index_values(
                APP_INDEX
            ):  # level-triggered: look at everything again
                self.queue.add(app)

    # shutdown ------------------------------------------------------------------------------

    def stop(self, timeout: float = 8.0) -> None:
        """Stop taking work, let in-flight reconciles finish (bounded), flush events."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        self.informer.stop()
        drain = threading.Thread(target=self.queue.shut_down_with_drain, daemon=True)
        drain.start()
        for thread in [drain, *self._threads]:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.recorder.flush(max(0.5, deadline - time.monotonic()))
        self.recorder.stop()
        for endpoint in self._endpoints:
            endpoint.stop()
        log.info("controller stopped")
