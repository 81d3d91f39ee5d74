"""HTTP plumbing every gateway backend shares: one counted exchange, and bounded retries.

Each backend keeps its own envelope and error words (API7 Cloud's `{status, error, payload}`,
APISIX's `{key, value}` and `error_msg`); what is the same for any HTTP gateway lives here,
so the rules that make a gateway call safe are written once:

- `Endpoint` is one gateway address: a keep-alive connection pool whose TLS trust, proxy and
  default headers are settled once, from the flags and the environment as `requests` reads
  it (REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, HTTP(S)_PROXY / NO_PROXY, else certifi's CAs). It
  is urllib3 itself: `requests` spends about 0.4 ms more per request merging session
  settings, cookies and hooks, and re-reading the environment, than the request takes —
  the biggest part of a weight change's gateway write;
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
import json
import logging
import os
import random
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
import tenacity
import urllib3

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


@dataclass(frozen=True)
class Response:
    """A gateway's answer, read whole; `headers` ignore case."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.body)


class Endpoint:
    """One gateway address (`base_url`) and the connections kept open to it."""

    def __init__(
        self,
        base_url: str,
        *,
        ca_bundle: str | None = None,
        user_agent: str | None = None,
        pool_size: int = 10,
    ):
        self.base_url = base_url.rstrip("/")
        trust = (
            ca_bundle
            or os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or requests.utils.DEFAULT_CA_BUNDLE_PATH  # certifi: what requests trusts
        )
        where = "ca_cert_dir" if os.path.isdir(trust) else "ca_certs"
        options: dict[str, Any] = {"maxsize": pool_size, "cert_reqs": "CERT_REQUIRED", where: trust}
        scheme = urllib.parse.urlsplit(self.base_url).scheme
        proxy = requests.utils.get_environ_proxies(self.base_url).get(scheme)
        self._pool = (
            urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
        )
        self._headers = {"User-Agent": user_agent or "canaryctl"}

    def __repr__(self) -> str:
        return f"Endpoint({self.base_url!r})"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: tuple[float, float],
    ) -> Response:
        """One request, no retry, no redirect; raises urllib3's errors."""
        query = {key: value for key, value in (params or {}).items() if value is not None}
        url = self.base_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        answer = self._pool.request(
            method,
            url,
            body=None if body is None else json.dumps(body).encode(),
            headers={**self._headers, **(headers or {})},
            timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
            retries=False,
            redirect=False,
        )
        return Response(answer.status, answer.headers, answer.data)

    def close(self) -> None:
        self._pool.clear()


def send(
    endpoint: Endpoint,
    backend: str,
    where: str,
    method: str,
    path: str,
    *,
    secret: str | None = None,
    **request_args: Any,
) -> Response:
    """One HTTP request, counted in the gateway metrics; `where` names it in errors and logs."""
    started = time.monotonic()
    try:
        response = endpoint.request(method, path, **request_args)
    except urllib3.exceptions.SSLError as error:
        _observe(backend, method, "error", started, where)
        raise TerminalGatewayError(
            f"{where}: TLS failed (check the address and the CA bundle): {clip(str(error), secret)}"
        ) from None
    except urllib3.exceptions.LocationValueError as error:
        _observe(backend, method, "error", started, where)
        raise TerminalGatewayError(f"{where}: bad address: {clip(str(error), secret)}") from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        _observe(backend, method, "error", started, where)
        raise RetryableFailure(
            f"{where}: {type(error).__name__}: {clip(str(error), secret)}"
        ) from None
    _observe(backend, method, str(response.status), started, where)
    return response


def _observe(backend: str, method: str, code: str, started: float, where: str) -> None:
    elapsed = time.monotonic() - started
    metrics.gateway_requests_total.labels(backend, method, code).inc()
    metrics.gateway_request_duration_seconds.labels(backend, method).observe(elapsed)
    log.debug("%s -> %s in %.1f ms", where, code, elapsed * 1000)


def retry_after(response: Response) -> float | None:
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
