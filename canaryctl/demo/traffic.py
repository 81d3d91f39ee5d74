"""Steady traffic through the gateway's data plane, so Prometheus has something to judge.

A bounded load generator: one thread sends `rate` requests per second with `Host: <app>`
until stopped or until `max_seconds` have passed, and counts answers by version.
"""

from __future__ import annotations

import collections
import threading
import time

import requests


class LoadGenerator:
    """Send GET /api/error_page at a fixed rate in the background; use as a context manager."""

    def __init__(
        self, url: str, host: str = "error-page", rate: float = 50.0, max_seconds: float = 900.0
    ):
        self.url, self.host, self.rate, self.max_seconds = url, host, rate, max_seconds
        self.answers: collections.Counter = collections.Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    def __enter__(self) -> LoadGenerator:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.answers)

    def _run(self) -> None:
        period, started = 1.0 / self.rate, time.monotonic()
        next_at = started
        with requests.Session() as session:
            while not self._stop.is_set() and time.monotonic() - started < self.max_seconds:
                self._send(session)
                next_at += period
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _send(self, session: requests.Session) -> None:
        try:
            response = session.get(
                f"{self.url}/api/error_page", headers={"Host": self.host}, timeout=5
            )
            answer = f"{response.json().get('version', '?')} {response.status_code}"
        except (requests.RequestException, ValueError):
            answer = "error"
        with self._lock:
            self.answers[answer] += 1
