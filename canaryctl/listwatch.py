"""The list-then-watch loop of one scope: client-go's reflector, done by hand.

The Python client's `Watch.stream()` gets 410s, read timeouts and ERROR events wrong, so
canaryctl runs its own loop. It lists objects page by page, replaces
its scope in the shared store, reports every added, changed *and vanished* object, then
watches from the list's resourceVersion with bookmarks, advancing the version on every
event. A watch that ends normally is resumed where it stopped; a 410 means the version is
gone and forces a relist; anything else (connection refused, read timeout, 429, 5xx) is
retried after a jittered exponential backoff (`Backoff`).

`canaryctl.informer` runs one loop per namespace and is the `Sink` the loop reports to.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from kubernetes import client

from canaryctl import metrics, wire
from canaryctl.cache import ObjectStore
from canaryctl.kube import ListRequest, describe_error, list_objects

log = logging.getLogger(__name__)

SHORT_WATCH_SECONDS = 1.0  # a watch that ends this fast without events is treated as a failure


class Sink(Protocol):
    """What a loop needs of its informer: the store, the projection and where changes go."""

    store: ObjectStore
    project: Callable[[dict], Any]

    @property
    def stopping(self) -> bool: ...
    def notify(self, old: Any, new: Any) -> None: ...
    def store_resized(self) -> None: ...
    def wait(self, seconds: float) -> None: ...


class WatchExpired(Exception):
    """The resourceVersion we hold is too old (HTTP 410 Gone): only a relist helps."""


class WatchFailed(Exception):
    """The watch broke in a way worth retrying after a backoff."""


# what a flaky network or API server raises; anything else is logged with its traceback
EXPECTED_ERRORS = (
    WatchFailed,
    client.ApiException,
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


class WatchSettings:
    """How every loop of one informer lists and watches; `server_timeout` spreads watch ends."""

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


class ListWatch:
    """The list-then-watch loop of one scope (a namespace, or None for all of them)."""

    def __init__(
        self,
        informer: Sink,
        list_request: ListRequest,
        scope: str | None,
        settings: WatchSettings,
        backoff: Backoff,
    ):
        self.informer, self.list_request, self.scope = informer, list_request, scope
        self.settings, self.backoff = settings, backoff
        self.resource_version = ""
        self.synced = threading.Event()
        self._lock = threading.Lock()
        self._response: wire.Response | None = None

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
            for line in response.lines():
                if self.informer.stopping:
                    return
                self._apply(json.loads(line))
                events += 1
        finally:
            response.close()  # never pool a connection that may still hold unread bytes
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
        if old is None:
            self.informer.store_resized()
        if old is None or old.resource_version != view.resource_version:
            self.informer.notify(old, view)

    def _delete(self, view: Any) -> None:
        old = self.informer.store.delete(view.key)
        if old is not None:
            self.informer.store_resized()
        self.informer.notify(old or view, None)

    # HTTP -----------------------------------------------------------------------------------------

    def _request(self, **params: Any) -> wire.Response:
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


def _raise_for_status(status: dict) -> None:
    """Turn a watch ERROR event (a metav1.Status) into the matching exception."""
    code = status.get("code")
    message = f"watch error {code} {status.get('reason', '')}: {status.get('message', '')}"
    if code == 410:
        raise WatchExpired(message)
    raise WatchFailed(message)
