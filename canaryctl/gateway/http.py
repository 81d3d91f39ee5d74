"""HTTP plumbing every gateway backend shares: one counted exchange, and bounded retries.

Each backend keeps its own envelope and error words (API7 Cloud's `{status, error, payload}`,
APISIX's `{key, value}` and `error_msg`); what is the same for any HTTP gateway lives here,
so the rules that make a gateway call safe are written once:

- `pin_environment` reads once what `requests` would otherwise read from the environment on
  every request (proxies, REQUESTS_CA_BUNDLE): that look-up costs about 0.4 ms, a third of the
  CPU of a whole weight change's gateway write;
- `send` makes one request and counts it (`canaryctl_gateway_requests_total{backend,method,
  code}` and `_request_duration_seconds`); connection trouble and timeouts become a
  `RetryableFailure`, a TLS failure a `TerminalGatewayError` (retrying will not fix a
  certificate); redirects are not followed (they would carry credentials elsewhere);
- `Retrier.call` runs one logical call: few attempts, a short jittered exponential backoff,
  Retry-After honoured up to a cap, a deadline after which no attempt starts, then a
  `TransientGatewayError` (the controller's work queue does the long-term backoff);
- `Retrier.request` also takes a DELETE's 404 as success once an earlier attempt may have
  landed (only its answer was lost).

A backend's response parser raises `RetryableFailure` for 429 (with `may_have_landed=False`:
the server did nothing) and 5xx, and `TerminalGatewayError` for what retrying cannot fix.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
import tenacity

from canaryctl import metrics
from canaryctl.gateway.base import TerminalGatewayError, TransientGatewayError
from canaryctl.gateway.outcomes import note_unknown_outcome

log = logging.getLogger(__name__)

MAX_MESSAGE = 300  # characters of a server message kept in an error
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one logical call tries before raising `TransientGatewayError`."""

    attempts: int = 4
    deadline: float = 15.0  # seconds; no attempt starts after it
    backoff_initial: float = 0.25  # seconds, doubled per attempt, plus up to as much jitter
    backoff_max: float = 4.0
    retry_after_cap: float = 10.0  # longest Retry-After honoured


DEFAULT_RETRY = RetryPolicy()


class RetryableFailure(Exception):
    """One attempt failed in a way that another attempt may fix."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, may_have_landed: bool = True
    ):
        super().__init__(message)
        self.retry_after = retry_after  # seconds the server asked us to wait
        self.may_have_landed = may_have_landed  # False only when the server said it did nothing


def clip(text: str, secret: str | None = None) -> str:
    """A server message for an error: one line, the secret replaced, at most MAX_MESSAGE chars."""
    line = " ".join(text.split())
    if secret:
        line = line.replace(secret, "***")
    return line[:MAX_MESSAGE]


def pin_environment(session: requests.Session, url: str, ca_bundle: str | None) -> str | bool:
    """Settle on `session`, once, what `requests` reads from the environment for every request
    to `url` (its proxy, or none per NO_PROXY), and stop it from looking again. Returns the
    `verify` to send with each request: `ca_bundle` if given (a session-level bundle would
    lose to REQUESTS_CA_BUNDLE, requests#3829), else the bundle the environment names, else
    the system's."""
    session.proxies.update(requests.utils.get_environ_proxies(url))
    session.trust_env = False
    environ = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return ca_bundle or environ or True


def send(
    session: requests.Session,
    backend: str,
    where: str,
    method: str,
    url: str,
    *,
    secret: str | None = None,
    **request_args: Any,
) -> requests.Response:
    """One HTTP request, counted in the gateway metrics; `where` names it in errors and logs."""
    started = time.monotonic()
    try:
        response = session.request(method, url, allow_redirects=False, **request_args)
    except requests.exceptions.SSLError as error:
        _observe(backend, method, "error", started, where)
        raise TerminalGatewayError(
            f"{where}: TLS failed (check the address and the CA bundle): {clip(str(error), secret)}"
        ) from None
    except (
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
    ) as error:
        _observe(backend, method, "error", started, where)
        raise RetryableFailure(
            f"{where}: {type(error).__name__}: {clip(str(error), secret)}"
        ) from None
    _observe(backend, method, str(response.status_code), started, where)
    return response


def _observe(backend: str, method: str, code: str, started: float, where: str) -> None:
    elapsed = time.monotonic() - started
    metrics.gateway_requests_total.labels(backend, method, code).inc()
    metrics.gateway_request_duration_seconds.labels(backend, method).observe(elapsed)
    log.debug("%s -> %s in %.1f ms", where, code, elapsed * 1000)


def retry_after(response: requests.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None if absent or bad."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(email.utils.parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


class Retrier:
    """The bounded retry loop of one backend (`backend` is its metrics label)."""

    def __init__(self, backend: str, policy: RetryPolicy = DEFAULT_RETRY):
        self.backend = backend
        self.policy = policy

    def call(self, attempt: Callable[[], T]) -> T:
        """`attempt()` until it returns, raises something else than `RetryableFailure`, or the
        policy is used up (then `TransientGatewayError` with the last failure)."""
        return self._retrying()(attempt)

    def request(self, method: str, attempt: Callable[[], T]) -> T | None:
        """`call` for one idempotent request: a DELETE's 404 after an attempt that may have
        landed is success (None)."""
        maybe_landed = False

        def once() -> T | None:
            nonlocal maybe_landed
            try:
                return attempt()
            except TerminalGatewayError as error:
                if method == "DELETE" and error.status == 404 and maybe_landed:
                    return None  # an earlier attempt deleted it; only the answer was lost
                raise
            except RetryableFailure as failure:
                maybe_landed = maybe_landed or failure.may_have_landed
                if method != "GET" and failure.may_have_landed:
                    note_unknown_outcome()  # the write may still land later
                raise

        return self.call(once)

    def _retrying(self) -> tenacity.Retrying:
        policy = self.policy
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RetryableFailure),
            stop=tenacity.stop_after_attempt(policy.attempts)
            | tenacity.stop_before_delay(policy.deadline),
            wait=self._wait,
            before_sleep=self._count_retry,
            retry_error_callback=self._give_up,
        )

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        policy = self.policy
        if isinstance(failure, RetryableFailure) and failure.retry_after is not None:
            return min(failure.retry_after, policy.retry_after_cap)
        exponential = policy.backoff_initial * 2 ** (state.attempt_number - 1)
        return min(exponential + random.uniform(0, policy.backoff_initial), policy.backoff_max)

    def _count_retry(self, state: tenacity.RetryCallState) -> None:
        metrics.gateway_retries_total.labels(self.backend).inc()
        failure = state.outcome.exception() if state.outcome else None
        log.debug("%s retrying in %.2fs after: %s", self.backend, state.upcoming_sleep, failure)

    @staticmethod
    def _give_up(state: tenacity.RetryCallState) -> Any:
        failure = state.outcome.exception() if state.outcome else None
        raise TransientGatewayError(
            f"{failure} (gave up after {state.attempt_number} attempts in "
            f"{state.seconds_since_start:.1f}s)"
        ) from failure
