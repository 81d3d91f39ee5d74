"""A standby's watch on the one Lease it contends for, so a released Lease is taken at once.

Polling alone (client-go's way) notices a release only at the standby's next try, up to
2.2 retry periods later (4.4 s by default), which is longer than a graceful handover may
take. So standbys also watch the Lease (a watch with `fieldSelector=metadata.name=<lease>`,
which RBAC can limit to that one name) and hand every version they see, stamped with the
local time it arrived, to the elector. The elector alone decides what to do with it; the
watch changes when a standby tries, never the rules by which it may take a held Lease:
every takeover still reads the Lease first and judges expiry by when it saw that version.

The first watch starts without a resourceVersion, so the API server begins with the Lease as
it is now (or nothing, if it does not exist yet) — no separate GET, no `list` permission. A
stream that ends is resumed from the last version seen; 410 Gone starts over. A refused
watch (no `watch` permission) is logged once and given up: polling still works.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable

from kubernetes import client

from canaryctl import wire
from canaryctl.leaderelection.leaselock import LeaseLock

log = logging.getLogger(__name__)

OnChange = Callable[[dict | None, float], object]  # (the Lease, or None if deleted; seen at)
SERVER_TIMEOUT = (300, 600)  # seconds the API server keeps one watch open, drawn at random
READ_TIMEOUT = 70.0  # longer than the ~60 s between bookmarks
SHORT_WATCH = 1.0  # a watch ending this fast without any event counts as a failure
BACKOFF = (0.5, 30.0)  # first and longest wait after a failure


class LatestVersion:
    """The newest version a LeaseWatch saw, until the election thread takes it; `wake` tells it.

    Only the election thread changes its state, between tries, so a version arriving while a
    try is under way can never slip into that try's write.
    """

    def __init__(self) -> None:
        self.wake = threading.Event()
        self._guard = threading.Lock()
        self._latest: tuple[dict | None, float] | None = None

    def put(self, lease: dict | None, seen_at: float) -> None:
        with self._guard:
            self._latest = (lease, seen_at)
        self.wake.set()

    def take(self) -> tuple[dict | None, float] | None:
        with self._guard:
            latest, self._latest = self._latest, None
        return latest


class WatchGone(Exception):
    """410 Gone: the resourceVersion is too old; start over without one."""


class LeaseWatch:
    """Streams the versions of one Lease to `on_change` on a daemon thread until stopped."""

    def __init__(
        self,
        lock: LeaseLock,
        on_change: OnChange,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._lock, self._on_change = lock, on_change
        self._clock, self._rng = clock, rng
        self._stop = threading.Event()
        self._guard = threading.Lock()
        self._response: wire.Response | None = None
        self._thread: threading.Thread | None = None
        self.resource_version = ""

    def start(self) -> LeaseWatch:
        self._thread = threading.Thread(target=self.run, name="lease-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """End the watch: cut the open stream and join the thread (bounded)."""
        self._stop.set()
        with self._guard:
            response = self._response
        if response is not None:
            try:
                response.shutdown()
            except (ValueError, RuntimeError, OSError):
                pass  # already finished
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def run(self) -> None:
        """Watch, resume, back off, until stopped or refused."""
        failures = 0
        while not self._stop.is_set():
            try:
                healthy = self._watch_once()
                failures = 0 if healthy else failures + 1
            except WatchGone:
                self.resource_version = ""
                continue
            except client.ApiException as error:
                if error.status == 410:
                    self.resource_version = ""
                    continue
                if error.status in (401, 403):
                    log.warning(
                        "cannot watch lease %s (HTTP %s): standing by with polling only",
                        self._lock.name,
                        error.status,
                    )
                    return
                failures += 1
            except (OSError, ValueError) as error:
                if self._stop.is_set():
                    return
                log.debug("lease watch failed: %s: %s", type(error).__name__, error)
                failures += 1
            if failures:
                self._stop.wait(self._backoff(failures))

    def _backoff(self, failures: int) -> float:
        first, longest = BACKOFF
        return min(first * 2 ** (failures - 1), longest) * (1 - 0.2 * self._rng())

    def _watch_once(self) -> bool:
        """One watch request; True unless it ended at once without a single event."""
        low, high = SERVER_TIMEOUT
        started, events = self._clock(), 0
        response = self._lock.watch(
            self.resource_version, int(low + (high - low) * self._rng()), READ_TIMEOUT
        )
        with self._guard:
            self._response = response
        try:
            if self._stop.is_set():
                return True
            for line in response.lines():
                self._apply(json.loads(line))
                events += 1
        finally:
            with self._guard:
                self._response = None
            response.close()
        return events > 0 or self._clock() - started >= SHORT_WATCH

    def _apply(self, event: dict) -> None:
        kind, lease = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if lease.get("code") == 410:
                raise WatchGone(lease.get("message", ""))
            raise ValueError(f"watch error {lease.get('code')}: {lease.get('message', '')}")
        version = (lease.get("metadata") or {}).get("resourceVersion")
        if version:
            self.resource_version = version
        if kind in ("ADDED", "MODIFIED"):
            self._on_change(lease, self._clock())
        elif kind == "DELETED":
            self._on_change(None, self._clock())
