"""Kubernetes Events on Services: what users see with `kubectl describe service`.

Recording must never slow down or break a reconcile, so `normal()`/`warning()` only put
the event on a bounded queue (dropping, and counting, when it is full) and one background
thread sends it. Like client-go's EventCorrelator, an event identical to one sent in the
last ten minutes (same Service uid, type, reason and message) does not create a new
object: the existing Event's `count` and `lastTimestamp` are patched, so a Warning that
repeats on every retry shows up once, "x12", instead of flooding the namespace. If that
Event has already expired (404), a new one is created.
"""

from __future__ import annotations

import collections
import datetime
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import urllib3
from kubernetes import client

from canaryctl import metrics
from canaryctl.kube import MERGE_PATCH, describe_error, read_json
from canaryctl.objects import Service

log = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 1024
AGGREGATION_WINDOW_SECONDS = 600.0
REMEMBERED_EVENTS = 4096  # client-go's LRU size for the correlator
REQUEST_TIMEOUT = (5.0, 15.0)
RETRY_DELAYS = (
    1.0,
    2.0,
)  # seconds before the 2nd and 3rd try of a failed send (5xx, no connection)


@dataclass(frozen=True)
class _Occurrence:
    """One call to normal()/warning(): what happened to which Service, and when."""

    service: Service
    type: str
    reason: str
    message: str
    at: datetime.datetime
    event_name: str  # fixed per occurrence, so a retried create cannot make a duplicate

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return self.service.uid, self.type, self.reason, self.message


@dataclass
class _Sent:
    """An Event object we created, remembered so repeats can bump its count."""

    namespace: str
    name: str
    count: int
    last_sent: float  # recorder clock


class EventRecorder:
    """Records core/v1 Events on Services asynchronously, aggregating identical repeats."""

    def __init__(
        self,
        api_client: client.ApiClient,
        component: str = "canaryctl",
        host: str | None = None,
        *,
        max_pending: int = 1000,
        window: float = AGGREGATION_WINDOW_SECONDS,
        autostart: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._api = client.CoreV1Api(api_client)
        self.component = component
        self.host = host or socket.gethostname()
        self._max_pending, self._window, self._clock = max_pending, window, clock
        self._pending: collections.deque[_Occurrence] = collections.deque()
        self._busy = False
        self._stopped = False
        self._changed = threading.Condition()
        self._sent: collections.OrderedDict[tuple, _Sent] = collections.OrderedDict()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        if autostart:
            self.start()

    # recording (any thread, never blocks) ------------------------------------------------------

    def normal(self, service: Service, reason: str, message: str) -> None:
        self._record(service, "Normal", reason, message)

    def warning(self, service: Service, reason: str, message: str) -> None:
        self._record(service, "Warning", reason, message)

    def _record(self, service: Service, event_type: str, reason: str, message: str) -> None:
        name = f"{service.name}.{time.time_ns():x}"  # client-go's naming: object name + nanoseconds in hex
        occurrence = _Occurrence(
            service, event_type, reason, message[:MAX_MESSAGE_LENGTH], _now(), name
        )
        with self._changed:
            if self._stopped or len(self._pending) >= self._max_pending:
                self.dropped += 1
                metrics.events_dropped_total.inc()
                if self.dropped % 100 == 1:  # the first drop of every hundred
                    log.warning(
                        "dropped %d events so far (queue full or recorder stopped)",
                        self.dropped,
                        extra={"service": service.key, "reason": reason},
                    )
                return
            self._pending.append(occurrence)
            self._changed.notify_all()
        metrics.events_total.labels(reason).inc()

    # lifecycle -----------------------------------------------------------------------------------

    def start(self) -> EventRecorder:
        """Start the sending thread (done by the constructor unless autostart=False)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._send_forever, name="event-recorder", daemon=True
            )
            self._thread.start()
        return self

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every recorded event has been sent (or given up on); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._busy, timeout)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the sending thread; events still queued are dropped (flush() first to keep them)."""
        with self._changed:
            self._stopped = True
            self.dropped += len(self._pending)
            metrics.events_dropped_total.inc(len(self._pending))
            self._pending.clear()
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    # sending (background thread) -------------------------------------------------------------------

    def _send_forever(self) -> None:
        while True:
            with self._changed:
                self._busy = False
                self._changed.notify_all()
                self._changed.wait_for(lambda: self._pending or self._stopped)
                if self._stopped:
                    return
                occurrence = self._pending.popleft()
                self._busy = True
            self._send_with_retries(occurrence)

    def _send_with_retries(self, occurrence: _Occurrence) -> None:
        """Send one event; retry server and connection failures briefly, then give up (logged)."""
        for delay in (*RETRY_DELAYS, None):
            try:
                self._send(occurrence)
                return
            except Exception as error:  # noqa: BLE001 - an event is never worth a crash
                if delay is None or not _worth_retrying(error) or self._sleep_unless_stopped(delay):
                    log.warning(
                        "cannot record event: %s",
                        describe_error(error),
                        extra={"service": occurrence.service.key, "reason": occurrence.reason},
                    )
                    return

    def _sleep_unless_stopped(self, seconds: float) -> bool:
        """Wait `seconds`; True if stop() was called meanwhile."""
        with self._changed:
            return self._changed.wait_for(lambda: self._stopped, seconds)

    def _send(self, occurrence: _Occurrence) -> None:
        """Patch the Event of an identical recent occurrence, or create a new one."""
        sent = self._sent.get(occurrence.identity)
        if sent is not None and self._clock() - sent.last_sent < self._window:
            try:
                self._patch(sent, occurrence)
                return
            except client.ApiException as error:
                if error.status != 404:
                    raise
        self._create(occurrence)

    def _patch(self, sent: _Sent, occurrence: _Occurrence) -> None:
        body = {"count": sent.count + 1, "lastTimestamp": _timestamp(occurrence.at)}
        read_json(
            self._api.patch_namespaced_event(
                sent.name,
                sent.namespace,
                body,
                _content_type=MERGE_PATCH,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        )
        sent.count += 1
        sent.last_sent = self._clock()
        self._sent.move_to_end(occurrence.identity)

    def _create(self, occurrence: _Occurrence) -> None:
        service, name = occurrence.service, occurrence.event_name
        try:
            read_json(
                self._api.create_namespaced_event(
                    service.namespace,
                    self._event_body(name, occurrence),
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            )
        except client.ApiException as error:
            if error.status != 409:  # 409: an earlier try of this very create went through
                raise
        self._sent[occurrence.identity] = _Sent(service.namespace, name, 1, self._clock())
        self._sent.move_to_end(occurrence.identity)
        while len(self._sent) > REMEMBERED_EVENTS:
            self._sent.popitem(last=False)

    def _event_body(self, name: str, occurrence: _Occurrence) -> dict:
        service, at = occurrence.service, _timestamp(occurrence.at)
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": service.namespace},
            "involvedObject": {
                "kind": "Service",
                "apiVersion": "v1",
                "name": service.name,
                "namespace": service.namespace,
                "uid": service.uid,
                "resourceVersion": service.resource_version,
            },
            "type": occurrence.type,
            "reason": occurrence.reason,
            "message": occurrence.message,
            "source": {"component": self.component, "host": self.host},
            "reportingComponent": self.component,
            "reportingInstance": self.host,
            "count": 1,
            "firstTimestamp": at,
            "lastTimestamp": at,
        }


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _timestamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _worth_retrying(error: Exception) -> bool:
    """Server-side and connection failures may pass; a rejected event (4xx) will not."""
    if isinstance(error, client.ApiException):
        return error.status == 0 or error.status == 429 or error.status >= 500
    return isinstance(error, (urllib3.exceptions.HTTPError, OSError))
