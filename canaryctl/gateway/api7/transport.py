"""HTTP to API7 Cloud: one exchange, the envelope, typed errors, metrics and safe retries.

Kept apart from the resource methods (`client`) so the rules that make a gateway call safe
live in one place:
- only HTTP 200 is success; 5xx bodies are plain text; other statuses carry the envelope's
  `error`, which becomes the message of a typed error (see `canaryctl.gateway.base`);
- retries are few and short (the controller's work queue does the long-term backoff):
  connection errors, timeouts, 429 (honouring Retry-After) and 5xx are retried for GET, PUT
  and DELETE; a POST is retried only after looking up by name that the previous attempt did
  not land (see `create`); a DELETE whose earlier attempt may have landed takes a 404 as
  success; every write attempt that ended without a trustworthy answer is reported to
  `canaryctl.gateway.outcomes`, as it may still land later. The retry loop and the counted
  exchange are shared with the other backends (`canaryctl.gateway.http`);
- the token lives only in the `Authorization` header, is never logged, never part of an
  error message and never in a repr.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from canaryctl.gateway.base import TerminalGatewayError
from canaryctl.gateway.http import (
    DEFAULT_RETRY,
    Endpoint,
    Response,
    Retrier,
    RetryableFailure,
    RetryPolicy,
    clip,
    retry_after,
    send,
)
from canaryctl.gateway.outcomes import note_unknown_outcome

log = logging.getLogger(__name__)

BACKEND = "api7"
DEFAULT_BASE_URL = "https://api.api7.cloud"
DEFAULT_TIMEOUT = (3.05, 10.0)  # (connect, read) seconds
API_PREFIX = "/api/v1"

Getter = Callable[[str, dict[str, Any]], Any]  # (path, query) -> payload

__all__ = ["BACKEND", "DEFAULT_RETRY", "RetryPolicy", "Transport"]


class _BearerToken:
    """The access token, as each request's `Authorization` header; its repr never shows it."""

    def __init__(self, token: str):
        self._token = token

    def header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    @property
    def secret(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return "_BearerToken(***)"


class Transport:
    """Calls `/api/v1/...` paths of one API7 Cloud address with one token."""

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        ca_bundle: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        user_agent: str | None = None,
    ):
        self._endpoint = Endpoint(base_url, ca_bundle=ca_bundle, user_agent=user_agent)
        self.base_url = self._endpoint.base_url
        self.timeout = timeout
        self.retry = retry
        self._retrier = Retrier(BACKEND, retry)
        self._auth = _BearerToken(token)

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r}, timeout={self.timeout!r})"

    def close(self) -> None:
        self._endpoint.close()

    def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        """A GET, PUT or DELETE with retries; returns the envelope's payload."""
        request_id = uuid.uuid4().hex
        return self._retrier.request(
            method,
            lambda: self.exchange(method, path, params=params, body=body, request_id=request_id),
        )

    def create(
        self, path: str, body: dict[str, Any], find_existing: Callable[[Getter], Any]
    ) -> Any:
        """A POST that creates one object; retried only when `find_existing` says it did not land.

        `find_existing(get)` looks the object up (by name) with the single-attempt `get` and
        returns it or None; when an earlier attempt did land, that object is the result.
        """
        request_id = uuid.uuid4().hex
        maybe_landed = False

        def get_once(get_path: str, params: dict[str, Any]) -> Any:
            return self.exchange("GET", get_path, params=params, request_id=request_id)

        def attempt() -> Any:
            nonlocal maybe_landed
            if maybe_landed:
                found = find_existing(get_once)
                if found is not None:
                    log.debug("api7 POST %s: an earlier attempt had landed; using it", path)
                    return found
            try:
                return self.exchange("POST", path, body=body, request_id=request_id)
            except RetryableFailure as failure:
                maybe_landed = maybe_landed or failure.may_have_landed
                if failure.may_have_landed:
                    note_unknown_outcome()  # the create may still land later
                raise
            except TerminalGatewayError as error:
                # a slow earlier attempt may land between our look-up and this POST ("name taken")
                found = find_existing(get_once) if maybe_landed and error.status == 400 else None
                if found is None:
                    raise
                return found

        return self._retrier.call(attempt)

    def pages(
        self, get: Getter, path: str, params: dict[str, Any], page_size: int, max_pages: int
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list: pages until an empty one (or `count` items are in)."""
        seen: set[str] = set()
        for page in range(1, max_pages + 1):
            payload = get(path, {**params, "page": page, "page_size": page_size}) or {}
            items = payload.get("list") or []
            for item in items:
                if item.get("id") not in seen:  # an item may shift pages under concurrent writes
                    seen.add(item.get("id"))
                    yield item
            count = payload.get("count")
            if not items or (count is not None and len(seen) >= int(count)):
                return
        raise TerminalGatewayError(
            f"API7 Cloud GET {path}: list did not end after {max_pages} pages"
        )

    def exchange(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        request_id: str | None = None,
    ) -> Any:
        """One HTTP request, no retry: the payload, or a typed error / `RetryableFailure`."""
        headers = {
            "X-Request-ID": request_id or uuid.uuid4().hex,
            "Accept": "application/json",
            **self._auth.header(),
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = send(
            self._endpoint,
            BACKEND,
            f"API7 Cloud {method} {path}",
            method,
            API_PREFIX + path,
            secret=self._auth.secret,
            params=params,
            body=body,
            headers=headers,
            timeout=self.timeout,
        )
        return self._payload(method, path, response)

    def _payload(self, method: str, path: str, response: Response) -> Any:
        status = response.status
        where = f"API7 Cloud {method} {path}"
        if status >= 500:
            raise RetryableFailure(f"{where}: {status} {self._clip(response.text)}")
        envelope = _envelope(response)
        if envelope is None:
            if status == 200:
                raise RetryableFailure(f"{where}: 200 with a body that is not an envelope")
            envelope = {"error": response.text}
        message = self._clip(
            str(envelope.get("error") or (envelope.get("status") or {}).get("message") or "")
        )
        if status == 200:
            return envelope.get("payload")
        if status == 429:
            raise RetryableFailure(
                f"{where}: 429 {message}", retry_after=retry_after(response), may_have_landed=False
            )
        if status == 401:
            raise TerminalGatewayError(f"API7 Cloud rejected the token (401): {message}", status)
        if status == 403:
            raise TerminalGatewayError(f"{where}: access denied (403): {message}", status)
        if status == 404:
            raise TerminalGatewayError(f"{where}: not found (404): {message}", status)
        raise TerminalGatewayError(f"{where}: {status} {message}", status)

    def _clip(self, text: str) -> str:
        return clip(text, self._auth.secret)


def _envelope(response: Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
