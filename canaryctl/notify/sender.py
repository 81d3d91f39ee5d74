"""Deliver one channel's notifications to its webhook, off the reconcile path.

A receiver can be slow, down or broken; none of that may delay a release. So, as with
Kubernetes Events (`canaryctl.events`), `submit()` only puts the notification on a bounded
queue (dropping and counting when it is full) and one background thread per channel posts
them in order, so a dead receiver holds up only its own channel. Each POST has a bounded
connect and read timeout and follows no redirect; connection failures, timeouts, 429 and
5xx are retried after 1, 2, 4 and 8 s (a 429's Retry-After is honoured up to 30 s), then
given up. Other answers are final. Every outcome is counted in
`canaryctl_notifications_total{channel,result}`: sent, failed (given up or rejected),
dropped (queue full or stopped) and duplicate (the same idempotency key was submitted
before: the receiver would only have to drop it).

The URL is read from its source at every delivery and never logged: log lines name the
channel, the event and the HTTP status or the error's type only (a requests exception's
text contains the URL).
"""

from __future__ import annotations

import collections
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import requests
from requests.adapters import HTTPAdapter

import canaryctl
from canaryctl import metrics
from canaryctl.notify.config import ChannelConfig
from canaryctl.notify.messages import Notification, payload
from canaryctl.sendqueue import SendQueue

log = logging.getLogger(__name__)

TIMEOUT = (3.05, 5.0)  # (connect, read) seconds per POST
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0)  # seconds before the 2nd ... 5th attempt
MAX_RETRY_AFTER = 30.0
MAX_PENDING = 100  # notifications waiting per channel
REMEMBERED_KEYS = 4096  # idempotency keys remembered per channel, to skip repeats
Verdict = Literal["sent", "retry", "rejected"]


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: a verdict, a wait the receiver asked for, and words for the log."""

    verdict: Verdict
    description: str  # "HTTP 500", "ReadTimeout", ... never a URL
    retry_after: float = 0.0


class WebhookSender:
    """One channel's queue and sending thread."""

    def __init__(
        self,
        channel: ChannelConfig,
        *,
        timeout: tuple[float, float] = TIMEOUT,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        max_pending: int = MAX_PENDING,
        autostart: bool = True,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.channel, self.timeout, self.retry_delays = channel, timeout, retry_delays
        self._now = now
        self._queue = SendQueue(f"notify-{channel.name}", self._deliver, max_pending)
        self._keys: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._keys_lock = threading.Lock()
        self.dropped = 0  # refused by submit() (queue full or stopped)
        self._session = _session()
        for result in ("sent", "failed", "dropped", "duplicate"):
            metrics.notifications_total.labels(channel.name, result)
        metrics.notification_retries_total.labels(channel.name)
        if autostart:
            self.start()

    def submit(self, notification: Notification) -> None:
        """Queue `notification`; never blocks, never raises."""
        with self._keys_lock:
            if notification.key in self._keys:
                self._count("duplicate")
                return
            refused = self._queue.offer(notification)
            if refused is None:
                self._remember(notification.key)
                return
            self._count("dropped")
            self.dropped += 1
            dropped = self.dropped
        if dropped % 100 == 1:  # the first drop of every hundred
            log.warning(
                "dropped %d notifications so far (last: %s)",
                dropped,
                refused.replace("_", " "),
                extra={"channel": self.channel.name, "event": notification.event},
            )

    # lifecycle -----------------------------------------------------------------------------------

    def start(self) -> WebhookSender:
        self._queue.start()
        return self

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued was delivered or given up; False on timeout."""
        return self._queue.flush(timeout)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread; what is still queued is dropped (and counted)."""
        discarded = self._queue.stop(timeout)
        if discarded:
            metrics.notifications_total.labels(self.channel.name, "dropped").inc(discarded)

    # sending (background thread) -----------------------------------------------------------------

    def _deliver(self, notification: Notification) -> None:
        """POST until sent, rejected, out of retries, or stopped."""
        body = json.dumps(payload(notification, self.channel.format, self._now())).encode()
        extra = {"channel": self.channel.name, "event": notification.event, "app": notification.app}
        for delay in (*self.retry_delays, None):
            attempt = self._post(body, notification.key)
            if attempt.verdict == "sent":
                self._count("sent")
                return
            if attempt.verdict == "rejected" or delay is None:
                self._count("failed")
                log.warning("notification not delivered: %s", attempt.description, extra=extra)
                return
            metrics.notification_retries_total.labels(self.channel.name).inc()
            wait = min(max(delay, attempt.retry_after), MAX_RETRY_AFTER)
            if self._queue.sleep_unless_stopped(wait):
                self._count("dropped")
                return

    def _post(self, body: bytes, key: str) -> Attempt:
        try:
            url = self.channel.url.get()
        except ValueError as error:  # names the file, never the URL
            return Attempt("rejected", str(error))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "User-Agent": f"canaryctl/{canaryctl.__version__}",
        }
        try:
            response = self._session.post(
                url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as error:
            return Attempt("retry", type(error).__name__)
        response.close()
        return _judge(response)

    def _remember(self, key: str) -> None:
        self._keys[key] = None
        while len(self._keys) > REMEMBERED_KEYS:
            self._keys.popitem(last=False)

    def _count(self, result: str) -> None:
        metrics.notifications_total.labels(self.channel.name, result).inc()


def _judge(response: requests.Response) -> Attempt:
    status = response.status_code
    description = f"HTTP {status}"
    if 200 <= status < 300:
        return Attempt("sent", description)
    if status == 429 or status >= 500:
        return Attempt("retry", description, _retry_after(response.headers.get("Retry-After")))
    return Attempt("rejected", description)


def _retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header in seconds (an HTTP date is not worth parsing here)."""
    try:
        return max(0.0, float(value or 0))
    except ValueError:
        return 0.0


def _session() -> requests.Session:
    """A session of one pooled connection, without urllib3's own retries (we retry, and its
    retry warnings name the URL's path)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
