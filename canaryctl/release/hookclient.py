"""Call a release's HTTP hooks: one POST with a JSON body, bounded in time, retries included.

The verdict is what the release needs to count a call: 2xx is *pass*; any other answer is
*fail* (a redirect too: redirects are not followed); no answer at all — refused, reset,
timed out, a TLS failure — is *error*, so a hook that is down is never taken for a no.
Answers a retry may change (429, 502, 503, 504) and missing answers are retried with a
doubling backoff (0.1 s up to 1 s) while the call's budget (`canary-hook-timeout`, 10 s by
default) lasts. Every attempt gets what is left of the budget and a watchdog shuts its socket
when that runs out, so a hook that hangs, or answers one byte at a time, costs one budget,
never more (per-read socket timeouts alone would not bound a slow drip). TLS certificates
and host names are verified against the system's trust store; proxies from the environment
are not used (hooks are expected inside the cluster). The host is resolved first and only an
address `HookTargets` (`--hook-allow`) admits is connected to; a refused one is sent nothing
and is an *error* (counted as `refused`), never a no.

`call` is made from the reconciler's observe step (pre, step, promote gate), on a worker of
the controller's pool, so one slow hook holds one application for at most its budget.
`notify` is fire-and-forget for the rollback hook: a small queue and two daemon threads
off the reconcile path; when the queue is full the notice is dropped and counted.
"""

from __future__ import annotations

import http.client
import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Literal
from urllib.parse import urlsplit

import canaryctl
from canaryctl import metrics
from canaryctl.release.hooks import HookCall
from canaryctl.release.hooktargets import HookTargets
from canaryctl.release.observations import HookOutcome, HookResult

log = logging.getLogger(__name__)

RETRIED_STATUSES = frozenset({429, 502, 503, 504})
FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 1.0
CONNECT_TIMEOUT_S = 3.0  # at most, per attempt
EXCERPT = 200  # characters of an answer's body shown in messages
_READ_LIMIT = 4096  # bytes of an answer's body read at most
_NOTICE_QUEUE = 64
_NOTIFIERS = 2
Attempt = HookOutcome | Literal["refused"]  # refused: the host is not allowed, nothing sent


class _NoAnswer(Exception):
    """An attempt that got no HTTP answer; the message says why in a few words."""


class _Refused(Exception):
    """The URL's host is not a place hooks may call (`HookTargets`): nothing was sent."""


class HookClient:
    """Makes hook calls; thread-safe (each attempt opens its own connection)."""

    def __init__(
        self,
        user_agent: str = f"canaryctl/{canaryctl.__version__}",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        targets: HookTargets | None = None,
    ):
        self.user_agent, self.clock, self.sleep = user_agent, clock, sleep
        self.targets = targets or HookTargets()
        self.tls = ssl.create_default_context()
        self._notices: queue.Queue[HookCall | None] = queue.Queue(_NOTICE_QUEUE)
        self._notifiers: list[threading.Thread] = []
        self._lock = threading.Lock()

    def call(self, call: HookCall) -> HookResult:
        """POST `call`'s body and classify the answer; never raises, never exceeds the budget."""
        started = self.clock()
        deadline = started + call.timeout_s
        backoff, attempts = FIRST_BACKOFF_S, 0
        while True:
            attempts += 1
            outcome, status, detail = self._attempt(call, deadline - self.clock())
            final = outcome == "fail" and status not in RETRIED_STATUSES
            if outcome in ("pass", "refused") or final:  # a refused host stays refused
                break
            if deadline - self.clock() <= backoff:
                break
            self.sleep(backoff)
            backoff = min(2 * backoff, MAX_BACKOFF_S)
        result = HookResult(
            call.hook,
            "error" if outcome == "refused" else outcome,  # never sent: never a no
            _message(call, outcome, status, detail, attempts),
            status,
            attempts,
            self.clock() - started,
        )
        metrics.hook_calls_total.labels(call.hook, outcome).inc()
        log.info("%s hook %s", call.hook, result.message, extra={"app": call.context.app})
        return result

    def notify(self, calls: Iterable[HookCall]) -> None:
        """Send `calls` in the background; returns at once."""
        for call in calls:
            self._start_notifiers()
            try:
                self._notices.put_nowait(call)
            except queue.Full:
                metrics.hook_calls_total.labels(call.hook, "dropped").inc()
                log.warning(
                    "%s hook %s not told: %d notices already waiting",
                    call.hook,
                    call.url,
                    _NOTICE_QUEUE,
                    extra={"app": call.context.app},
                )

    def close(self, timeout: float = 5.0) -> None:
        """Stop the notifier threads: notices still queued are dropped (and counted), the ones
        being sent end within their budget; waits up to `timeout` per thread."""
        with self._lock:
            notifiers, self._notifiers = self._notifiers, []
        while True:
            try:
                waiting = self._notices.get_nowait()
            except queue.Empty:
                break
            if waiting is not None:
                metrics.hook_calls_total.labels(waiting.hook, "dropped").inc()
        for _ in notifiers:
            self._notices.put_nowait(None)
        for thread in notifiers:
            thread.join(timeout)

    # --- internals ------------------------------------------------------------------------------

    def _attempt(self, call: HookCall, budget: float) -> tuple[Attempt, int | None, str]:
        """(outcome, HTTP status, an excerpt of the answer or why there was none)."""
        try:
            status, excerpt = self._post(call, max(budget, 0.001))
        except _NoAnswer as error:
            return "error", None, str(error)
        except _Refused as error:
            return "refused", None, str(error)
        return ("pass" if 200 <= status < 300 else "fail"), status, excerpt

    def _post(self, call: HookCall, budget: float) -> tuple[int, str]:
        """One POST that ends within `budget` seconds: (status, excerpt of the answer)."""
        url = urlsplit(call.url)
        host, secure = url.hostname or "", url.scheme.lower() == "https"
        port = url.port or (443 if secure else 80)
        # the connection frames the exchange (Host header and all); the socket is ours
        connection: http.client.HTTPConnection = (
            http.client.HTTPSConnection(host, url.port, context=self.tls)
            if secure
            else http.client.HTTPConnection(host, url.port)
        )
        watchdog = _Watchdog(connection, budget)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        headers = {"Content-Type": "application/json", "User-Agent": self.user_agent}
        try:
            connection.sock = self._connect(host, port, min(budget, CONNECT_TIMEOUT_S))
            if secure:
                connection.sock = self.tls.wrap_socket(connection.sock, server_hostname=host)
            connection.sock.settimeout(budget)
            connection.request("POST", path, body=call.body(), headers=headers)
            answer = connection.getresponse()
            return answer.status, _excerpt(answer.read(_READ_LIMIT))
        except (OSError, http.client.HTTPException) as error:
            raise _NoAnswer("timed out" if watchdog.fired else _reason(error)) from None
        finally:
            watchdog.cancel()
            connection.close()

    def _connect(self, host: str, port: int, timeout: float) -> socket.socket:
        """A TCP connection to the first address of `host` that `targets` allows and that
        accepts; _Refused when it allows none (then nothing was opened)."""
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        allowed, refusal = self.targets.allowed(host, [str(info[4][0]) for info in found])
        if refusal is not None:
            raise _Refused(refusal)
        error: OSError = OSError(f"no address for {host}")
        for family, kind, protocol, _, address in found:
            if address[0] not in allowed:
                continue
            sock = socket.socket(family, kind, protocol)
            try:
                sock.settimeout(timeout)
                sock.connect(address)
                return sock
            except OSError as failed:
                sock.close()
                error = failed
        raise error

    def _start_notifiers(self) -> None:
        with self._lock:
            while len(self._notifiers) < _NOTIFIERS:
                thread = threading.Thread(target=self._notify_forever, name="hooks", daemon=True)
                self._notifiers.append(thread)
                thread.start()

    def _notify_forever(self) -> None:
        while (call := self._notices.get()) is not None:
            try:
                self.call(call)
            except Exception:  # a notifier must outlive any one notice
                log.exception("%s hook %s failed", call.hook, call.url)


def _message(
    call: HookCall, outcome: Attempt, status: int | None, detail: str, attempts: int
) -> str:
    tries = f" ({attempts} attempts)" if attempts > 1 else ""
    if outcome == "refused":
        return f"{call.url}: not called: {detail}"
    if outcome == "error":
        return f"{call.url}: no answer within {call.timeout_s:g} s{tries}: {detail}"
    said = f"{call.url} answered HTTP {status}"
    if status is not None and 300 <= status < 400:
        detail = "redirects are not followed"
    return f"{said}{tries}: {detail}" if detail and outcome == "fail" else f"{said}{tries}"


def _excerpt(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= EXCERPT else text[: EXCERPT - 3] + "..."


def _reason(error: Exception) -> str:
    """Why an attempt got no answer, in a few words."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason}"
    if isinstance(error, socket.gaierror):
        return "cannot resolve the host name"
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, (ConnectionResetError, http.client.RemoteDisconnected)):
        return "connection closed without an answer"
    return type(error).__name__


class _Watchdog:
    """Shuts a connection's socket down when its time is up, so nothing waits past it."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float):
        self.connection, self.fired = connection, False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        sock = self.connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        self._timer.cancel()
