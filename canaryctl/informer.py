"""Keep a cache in step with the API server: list, then watch, forever.

This is client-go's reflector done by hand (see docs/design.md), because
the Python client's `Watch.stream()` gets 410s, read timeouts and ERROR events wrong. Per
namespace (or once for the whole cluster) a thread lists objects page by page, replaces
its part of the shared store, tells the handler about every added, changed *and vanished*
object, then watches from the list's resourceVersion with bookmarks, advancing the version
on every event. A watch that ends normally is resumed where it stopped; a 410 means the
version is gone and forces a relist; anything else (connection refused, read timeout, 429,
5xx) is retried after a jittered exponential backoff. Raw JSON is projected straight into
slim immutable views; the client's model objects are never built.

`Informer` is the machinery for any kind: it takes a raw list request per scope and a
projection. `ServiceInformer` is the controller's (Services into the `ServiceStore`); the
Gateway API backend uses the same machinery for the HTTPRoutes it writes.

The handler receives `(old, new)`: `(None, service)` added, `(old, service)` changed,
`(old, None)` deleted, `(service, service)` periodic resync. It runs on the informer's threads
(one per namespace, plus the resync thread), so it must be quick and thread-safe.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic

import urllib3
from kubernetes import client

from canaryctl import metrics
from canaryctl.cache import K, ObjectStore, ServiceStore
from canaryctl.kube import ListRequest, describe_error, list_objects, service_list_request
from canaryctl.objects import Service

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], None]  # (old, new) projections; None for "not there"
RequestFor = Callable[[str | None], ListRequest]  # scope (namespace, None: all) -> raw list call
ALL_NAMESPACES = None
SHORT_WATCH_SECONDS = 1.0  # a watch that ends this fast without events is treated as a failure


class WatchExpired(Exception):
    """The resourceVersion we hold is too old (HTTP 410 Gone): only a relist helps."""


class WatchFailed(Exception):
    """The watch broke in a way worth retrying after a backoff."""


# what a flaky network or API server raises; anything else is logged with its traceback
EXPECTED_ERRORS = (
    WatchFailed,
    client.ApiException,
    urllib3.exceptions.HTTPError,
    OSError,
    ValueError,
)


class Backoff:
    """Exponential backoff with jitter that starts over after a quiet period (client-go's manager).

    Each delay is the current step minus up to `jitter` of it; the step doubles from
    `initial` up to `cap`, and falls back to `initial` once `reset_after` seconds passed
    since the previous failure.
    """

    def __init__(
        self,
        initial: float = 0.8,
        cap: float = 30.0,
        reset_after: float = 120.0,
        jitter: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ):
        self.initial, self.cap, self.reset_after, self.jitter = initial, cap, reset_after, jitter
        self._clock, self._rng = clock, rng
        self._step = 0.0
        self._last_failure: float | None = None

    def next_delay(self) -> float:
        """Record a failure now and return how long to wait before the next try."""
        now = self._clock()
        if self._last_failure is None or now - self._last_failure > self.reset_after:
            self._step = self.initial
        else:
            self._step = min(self._step * 2, self.cap)
        self._last_failure = now
        return self._step * (1 - self.jitter * self._rng())


class Informer(Generic[K]):
    """Objects of some namespaces (None: all) mirrored into `store`, changes told to `handler`.

    `request_for(scope)` is the raw list/watch call of one scope (kubernetes client method
    called with `_preload_content=False`); `project` turns one JSON object into the view kept.
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
        settings = _WatchSettings(
            watch_timeout, (connect_timeout, read_timeout), page_size, clock, rng
        )
        if namespaces is not None and not namespaces:
            raise ValueError("namespaces: give at least one, or None for all namespaces")
        scopes = list(dict.fromkeys(namespaces)) if namespaces is not None else [ALL_NAMESPACES]
        self._loops = [
            _ListWatch(self, request_for(scope), scope, settings, backoff()) for scope in scopes
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


class _WatchSettings:
    def __init__(
        self,
        watch_timeout: tuple[int, int],
        request_timeout: tuple[float, float],
        page_size: int,
        clock: Callable[[], float],
        rng: Callable[[], float],
    ):
        self.watch_timeout, self.request_timeout, self.page_size = (
            watch_timeout,
            request_timeout,
            page_size,
        )
        self.clock, self.rng = clock, rng

    def server_timeout(self) -> int:
        low, high = self.watch_timeout
        return int(low + (high - low) * self.rng())


class _ListWatch:
    """The list-then-watch loop of one scope (a namespace, or None for all of them)."""

    def __init__(
        self,
        informer: Informer,
        list_request: ListRequest,
        scope: str | None,
        settings: _WatchSettings,
        backoff: Backoff,
    ):
        self.informer, self.list_request, self.scope = informer, list_request, scope
        self.settings, self.backoff = settings, backoff
        self.resource_version = ""
        self.synced = threading.Event()
        self._lock = threading.Lock()
        self._response: urllib3.BaseHTTPResponse | None = None

    def run(self) -> None:
        """List when needed, watch, and decide after each watch how to carry on; until stopped."""
        relist_reason: str | None = "initial"
        while not self.informer.stopping:
            try:
                if relist_reason:
                    self.relist(relist_reason)
                    relist_reason = None
                self.watch()
                if not self.informer.stopping:
                    metrics.watch_restarts_total.labels("closed").inc()
            except WatchExpired:
                log.info("resourceVersion expired, relisting", extra={"namespace": self.scope})
                if relist_reason is None:
                    metrics.watch_restarts_total.labels("expired").inc()
                relist_reason = "expired"
            except Exception as error:  # noqa: BLE001 - the loop must outlive any failure
                if self.informer.stopping:
                    return
                self._back_off(error, listing=relist_reason is not None)

    def interrupt(self) -> None:
        """Unblock a read in progress (called from stop(), on another thread)."""
        with self._lock:
            if self._response is not None:
                try:
                    self._response.shutdown()
                except (ValueError, RuntimeError, OSError):
                    pass  # already finished or released

    def _back_off(self, error: Exception, listing: bool) -> None:
        delay = self.backoff.next_delay()
        if not listing:
            metrics.watch_restarts_total.labels("error").inc()
        log.warning(
            "%s failed, retrying in %.1f s: %s",
            "list" if listing else "watch",
            delay,
            describe_error(error),
            extra={"namespace": self.scope},
            exc_info=not isinstance(error, EXPECTED_ERRORS),
        )
        self.informer.wait(delay)

    # list ---------------------------------------------------------------------------------------

    def relist(self, reason: str) -> None:
        """List every object page by page, replace the scope in the store, notify all changes."""
        listed, self.resource_version = list_objects(
            self._request,
            self.informer.project,
            self.settings.page_size,
            self.settings.request_timeout,
        )
        metrics.relists_total.labels(reason).inc()
        changes = self.informer.store.replace(listed, namespace=self.scope)
        self.informer.store_resized()
        for old, new in (*changes.deleted, *changes.added, *changes.updated):
            self.informer.notify(old, new)
        self.synced.set()  # as client-go's HasSynced: after the listed items were handed out

    # watch --------------------------------------------------------------------------------------

    def watch(self) -> None:
        """One watch request from the current resourceVersion, applied until the stream ends."""
        started, events = self.settings.clock(), 0
        response = self._request(
            watch=True,
            resource_version=self.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.settings.server_timeout(),
            _request_timeout=self.settings.request_timeout,
        )
        try:
            for line in _lines(response):
                if self.informer.stopping:
                    return
                self._apply(json.loads(line))
                events += 1
        finally:
            response.close()  # never pool a connection that may still hold unread bytes
            response.release_conn()
        if (
            events == 0
            and self.settings.clock() - started < SHORT_WATCH_SECONDS
            and not self.informer.stopping
        ):
            raise WatchFailed("watch closed immediately without any event")

    def _apply(self, event: dict) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            _raise_for_status(obj)
        if kind in ("ADDED", "MODIFIED"):
            self._upsert(self.informer.project(obj))
        elif kind == "DELETED":
            self._delete(self.informer.project(obj))
        elif kind != "BOOKMARK":
            log.warning(
                "ignoring watch event of unknown type %r", kind, extra={"namespace": self.scope}
            )
            return
        self.resource_version = (obj.get("metadata") or {}).get(
            "resourceVersion"
        ) or self.resource_version

    def _upsert(self, view: Any) -> None:
        old = self.informer.store.upsert(view)
        self.informer.store_resized()
        if old is None or old.resource_version != view.resource_version:
            self.informer.notify(old, view)

    def _delete(self, view: Any) -> None:
        old = self.informer.store.delete(view.key)
        self.informer.store_resized()
        self.informer.notify(old or view, None)

    # HTTP -----------------------------------------------------------------------------------------

    def _request(self, **params: Any) -> urllib3.BaseHTTPResponse:
        """Send a list or watch request; keep the response where interrupt() can cut it."""
        try:
            response = self.list_request(**params)
        except client.ApiException as error:
            if error.status == 410:
                raise WatchExpired(str(error.reason)) from None
            raise
        with self._lock:
            self._response = response
        if self.informer.stopping:
            self.interrupt()
        return response


def _lines(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """The newline-separated JSON documents of a watch stream, as they arrive."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=True):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        yield from (line for line in complete if line.strip())


def _raise_for_status(status: dict) -> None:
    """Turn a watch ERROR event (a metav1.Status) into the matching exception."""
    code = status.get("code")
    message = f"watch error {code} {status.get('reason', '')}: {status.get('message', '')}"
    if code == 410:
        raise WatchExpired(message)
    raise WatchFailed(message)
