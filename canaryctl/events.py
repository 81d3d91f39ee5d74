"""Kubernetes Events on Services: what users see with `kubectl describe service`.

Recording must never slow down or break a reconcile, so `normal()`/`warning()` only put
the event on a bounded queue (dropping, and counting, when it is full) and one background
thread sends it. Before that, `event_correlator` decides as client-go's EventCorrelator
does: similar events (same Service, type and reason) beyond 10 distinct messages in ten
minutes go to one "(combined from similar events)" Event; a Service gets a burst of 25
events per type, then one per five minutes, and the rest are dropped (counted). An event
identical to one written in the last ten minutes does not create a new object: the
existing Event's `count`, `lastTimestamp` and message are patched, so a Warning that
repeats on every retry shows up once, "x12". If that Event has already expired (404), a
new one is created. With leader election, `may_send` is asked right before each send: a
replica that is no longer the leader drops what is still queued (counted) instead.
"""

from __future__ import annotations

import datetime
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from canaryctl import metrics
from canaryctl.event_correlator import (
    DEDUPE_WINDOW_SECONDS,
    EventCorrelator,
    EventLog,
    Involved,
    Written,
)
from canaryctl.kube import MERGE_PATCH, api_request, describe_error, read_json
from canaryctl.objects import Service
from canaryctl.sendqueue import SendQueue

log = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 1024
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
    key: tuple  # what identical writes share (the correlator's key)
    at: datetime.datetime
    event_name: str  # fixed per occurrence, so a retried create cannot make a duplicate


class EventRecorder:
    """Records core/v1 Events on Services asynchronously, aggregating identical repeats."""

    def __init__(
        self,
        api_client: client.ApiClient,
        component: str = "canaryctl",
        host: str | None = None,
        *,
        max_pending: int = 1000,
        window: float = DEDUPE_WINDOW_SECONDS,
        autostart: bool = True,
        clock: Callable[[], float] = time.monotonic,
        correlator: EventCorrelator | None = None,
        may_send: Callable[[], bool] | None = None,
    ):
        self._api = api_client
        self.component = component
        self.host = host or socket.gethostname()
        self._may_send = may_send
        self._correlator = correlator or EventCorrelator(clock)
        self._log = EventLog(clock, window)
        self._queue = SendQueue("event-recorder", self._send_with_retries, max_pending)
        self.dropped = 0
        if autostart:
            self.start()

    # recording (any thread, never blocks) ------------------------------------------------------

    def normal(self, service: Service, reason: str, message: str) -> None:
        self._record(service, "Normal", reason, message)

    def warning(self, service: Service, reason: str, message: str) -> None:
        self._record(service, "Warning", reason, message)

    def _record(self, service: Service, event_type: str, reason: str, message: str) -> None:
        involved = Involved(service.namespace, service.name, service.uid)
        admitted = self._correlator.admit(involved, event_type, reason, message)
        if admitted is None:
            self._drop("spam_filter", service, reason)
            return
        name = f"{service.name}.{time.time_ns():x}"  # client-go's naming: object name + ns in hex
        text = admitted.message[:MAX_MESSAGE_LENGTH]
        occurrence = _Occurrence(service, event_type, reason, text, admitted.key, _now(), name)
        refused = self._queue.offer(occurrence)
        if refused is not None:
            self._drop(refused, service, reason)
            return
        metrics.series(metrics.events_total, reason).inc()

    def _drop(self, why: str, service: Service, reason: str) -> None:
        self.dropped += 1
        metrics.series(metrics.events_dropped_total, why).inc()
        if self.dropped % 100 == 1:  # the first drop of every hundred
            log.warning(
                "dropped %d events so far (last: %s)",
                self.dropped,
                why,
                extra={"service": service.key, "reason": reason},
            )

    # lifecycle -----------------------------------------------------------------------------------

    def start(self) -> EventRecorder:
        """Start the sending thread (done by the constructor unless autostart=False)."""
        self._queue.start()
        return self

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every recorded event has been sent (or given up on); False on timeout."""
        return self._queue.flush(timeout)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the sending thread; events still queued are dropped (flush() first to keep them)."""
        discarded = self._queue.stop(timeout)
        self.dropped += discarded
        metrics.events_dropped_total.labels("stopped").inc(discarded)

    # sending (background thread) -----------------------------------------------------------------

    def _send_with_retries(self, occurrence: _Occurrence) -> None:
        """Send one event; retry server and connection failures briefly, then give up (logged)."""
        for delay in (*RETRY_DELAYS, None):
            if self._may_send is not None and not self._may_send():
                self._drop("not_leader", occurrence.service, occurrence.reason)
                return
            try:
                self._send(occurrence)
                return
            except Exception as error:  # noqa: BLE001 - an event is never worth a crash
                if (
                    delay is None
                    or not _worth_retrying(error)
                    or self._queue.sleep_unless_stopped(delay)
                ):
                    log.warning(
                        "cannot record event: %s",
                        describe_error(error),
                        extra={"service": occurrence.service.key, "reason": occurrence.reason},
                    )
                    return

    def _send(self, occurrence: _Occurrence) -> None:
        """Patch the Event of an identical recent occurrence, or create a new one."""
        sent = self._log.recent(occurrence.key)
        if sent is not None:
            try:
                self._patch(sent, occurrence)
                return
            except client.ApiException as error:
                if error.status != 404:
                    raise
        self._create(occurrence)

    def _patch(self, sent: Written, occurrence: _Occurrence) -> None:
        body = {
            "count": sent.count + 1,
            "lastTimestamp": _timestamp(occurrence.at),
            "message": occurrence.message,  # an aggregated Event shows the latest one
        }
        path = f"/api/v1/namespaces/{sent.namespace}/events/{sent.name}"
        _call(self._api, "PATCH", path, body, content_type=MERGE_PATCH)
        self._log.remember(occurrence.key, sent.namespace, sent.name, sent.count + 1)

    def _create(self, occurrence: _Occurrence) -> None:
        service, name = occurrence.service, occurrence.event_name
        try:
            path = f"/api/v1/namespaces/{service.namespace}/events"
            _call(self._api, "POST", path, self._event_body(name, occurrence))
        except client.ApiException as error:
            if error.status != 409:  # 409: an earlier try of this very create went through
                raise
        self._log.remember(occurrence.key, service.namespace, name, 1)

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


def _call(api: client.ApiClient, method: str, path: str, body: dict, **options: Any) -> dict:
    """One API call with a bounded timeout; the raw JSON answer (no model objects)."""
    return read_json(api_request(api, method, path, body=body, timeout=REQUEST_TIMEOUT, **options))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _timestamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _worth_retrying(error: Exception) -> bool:
    """Server-side and connection failures may pass; a rejected event (4xx) will not."""
    if isinstance(error, client.ApiException):
        return error.status == 0 or error.status == 429 or error.status >= 500
    return isinstance(error, OSError)
