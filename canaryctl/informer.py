"""Keep a cache in step with the API server: list, then watch, forever.

Per namespace (or once for the whole cluster) a thread runs `canaryctl.listwatch`'s loop,
which keeps its part of the shared store current and reports each change here. Raw JSON is
projected straight into slim immutable views; the client's model objects are never built.

`Informer` is the machinery for any kind: it takes a raw list request per scope and a
projection. `ServiceInformer` is the controller's (Services into the `ServiceStore`); the
Gateway API backend and the namespace bindings use the same machinery.

The handler receives `(old, new)`: `(None, service)` added, `(old, service)` changed,
`(old, None)` deleted, `(service, service)` periodic resync. It runs on the informer's threads
(one per namespace, plus the resync thread), so it must be quick and thread-safe.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic

from kubernetes import client

from canaryctl import metrics
from canaryctl.cache import K, ObjectStore, ServiceStore
from canaryctl.kube import ListRequest, service_list_request
from canaryctl.listwatch import Backoff, ListWatch, WatchSettings
from canaryctl.objects import Service

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], None]  # (old, new) projections; None for "not there"
RequestFor = Callable[[str | None], ListRequest]  # scope (namespace, None: all) -> raw list call
ALL_NAMESPACES = None


class Informer(Generic[K]):
    """Objects of some namespaces (None: all) mirrored into `store`, changes told to `handler`.

    `request_for(scope)` is the raw list/watch call of one scope (`kube.list_request`);
    `project` turns one JSON object into the view kept.
    """

    def __init__(
        self,
        request_for: RequestFor,
        project: Callable[[dict], K],
        store: ObjectStore[K],
        handler: Handler,
        namespaces: Sequence[str] | None = ALL_NAMESPACES,
        *,
        kind: str = "object",
        on_size: Callable[[int], None] | None = None,
        resync_period: float | None = None,
        watch_timeout: tuple[int, int] = (300, 600),
        connect_timeout: float = 10.0,
        read_timeout: float = 70.0,
        page_size: int = 500,
        backoff: Callable[[], Backoff] = Backoff,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ):
        self.store = store
        self.project, self.kind = project, kind
        self._handler = handler
        self._on_size = on_size or (lambda size: None)
        self._resync_period = resync_period
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        settings = WatchSettings(
            watch_timeout, (connect_timeout, read_timeout), page_size, clock, rng
        )
        if namespaces is not None and not namespaces:
            raise ValueError("namespaces: give at least one, or None for all namespaces")
        scopes = list(dict.fromkeys(namespaces)) if namespaces is not None else [ALL_NAMESPACES]
        self._loops = [
            ListWatch(self, request_for(scope), scope, settings, backoff()) for scope in scopes
        ]
        self._threads: list[threading.Thread] = []

    # lifecycle --------------------------------------------------------------------------------

    def start(self) -> Informer[K]:
        """Start one list/watch thread per namespace (and the resync thread, if any)."""
        for loop in self._loops:
            self._spawn(f"informer-{loop.scope or 'all'}", loop.run)
        if self._resync_period:
            self._spawn("informer-resync", self._resync_forever)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Make every thread exit: cut open connections, then join them (bounded by `timeout`)."""
        self._stop.set()
        for loop in self._loops:
            loop.interrupt()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def has_synced(self) -> bool:
        """True once every namespace has been listed at least once."""
        return all(loop.synced.is_set() for loop in self._loops)

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Block until has_synced() (True) or `timeout` seconds passed (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for loop in self._loops:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not loop.synced.wait(remaining):
                return False
        return True

    def last_sync_resource_version(self, namespace: str | None = ALL_NAMESPACES) -> str:
        """The resourceVersion the loop for `namespace` resumes from ("" before the first list)."""
        return next(loop.resource_version for loop in self._loops if loop.scope == namespace)

    # shared by the loops -----------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def notify(self, old: K | None, new: K | None) -> None:
        """Call the handler; its failures are logged, never allowed to stop the informer."""
        try:
            self._handler(old, new)
        except Exception:
            changed = new or old
            log.exception(
                "informer handler failed",
                extra={self.kind: changed.key if changed is not None else None},
            )

    def store_resized(self) -> None:
        self._on_size(len(self.store))

    def wait(self, seconds: float) -> None:
        self._sleep(seconds)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _resync_forever(self) -> None:
        """Every resync period, hand every cached object to the handler as (object, object)."""
        while not self._stop.wait(self._resync_period):
            if self.has_synced():
                for cached in self.store.list():
                    self.notify(cached, cached)


class ServiceInformer(Informer[Service]):
    """The controller's Services of some namespaces (None: all) in a `ServiceStore`; with
    `keep_annotation`, only the annotations it accepts are kept (the controller keeps its
    own: others can be large, kubectl's last-applied-configuration repeats the object)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        store: ServiceStore,
        handler: Handler,
        namespaces: Sequence[str] | None = ALL_NAMESPACES,
        keep_annotation: Callable[[str], bool] | None = None,
        **options: Any,
    ):
        super().__init__(
            lambda scope: service_list_request(api_client, scope),
            functools.partial(Service.from_dict, keep_annotation=keep_annotation),
            store,
            handler,
            namespaces,
            kind="service",
            on_size=metrics.cached_services.set,
            **options,
        )
