"""HTTP to APISIX's Admin API (v3): the key, the answers' shapes, typed errors, safe retries.

Kept apart from the resource methods (`client`) so the rules that make an Admin API call safe
live in one place (apache/apisix `apisix/admin/init.lua`, `v3_adapter.lua`, `resource.lua`):

- every request carries the key in `X-API-KEY`; the key is never logged, never part of an
  error message and never in a repr. A missing or wrong key is 401 `failed to check token`;
- successful answers from a resource carry `X-API-VERSION: v3` and are JSON: one object
  `{key, value, createdIndex, modifiedIndex}` (GET, PUT, PATCH; the `value` is returned), a
  list `{list: [...], total}` or a deletion `{deleted, key}`; an answer without the v3 header
  comes from an Admin API canaryctl does not speak (APISIX 2.x) and is refused;
- 4xx answers carry `{"error_msg": ...}` (a missing key: `{"message": "Key not found"}`; a bad
  page size: plain text) and become `TerminalGatewayError` with the status; 429 (honouring
  Retry-After) and 5xx (503: etcd trouble) are retried, as are connection errors and timeouts;
- canaryctl's ids are deterministic and every write is a PUT, a merge PATCH or a DELETE, so
  any write may be repeated: no look-up is needed before a retry. A DELETE's 404 after an
  attempt that may have landed is success. The retry loop is shared with the other backends
  (`canaryctl.gateway.http`).
"""

from __future__ import annotations

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

BACKEND = "apisix"
DEFAULT_ADMIN_URL = "http://127.0.0.1:9180"
DEFAULT_TIMEOUT = (3.05, 10.0)  # (connect, read) seconds
ADMIN_PREFIX = "/apisix/admin"
WHERE = "APISIX Admin API"


class _AdminKey:
    """The Admin API key, as each request's `X-API-KEY` header; its repr never shows it."""

    def __init__(self, key: str | None):
        self._key = key

    def header(self) -> dict[str, str]:
        return {"X-API-KEY": self._key} if self._key else {}

    @property
    def secret(self) -> str | None:
        return self._key

    def __repr__(self) -> str:
        return "_AdminKey(***)"


class Transport:
    """Calls `/apisix/admin/...` paths of one Admin API with one key."""

    def __init__(
        self,
        key: str | None,
        admin_url: str = DEFAULT_ADMIN_URL,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        ca_bundle: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        user_agent: str | None = None,
    ):
        self.admin_url = admin_url.rstrip("/").removesuffix(ADMIN_PREFIX)
        self.timeout = timeout
        self._retrier = Retrier(BACKEND, retry)
        self._auth = _AdminKey(key)
        self._endpoint = Endpoint(self.admin_url, ca_bundle=ca_bundle, user_agent=user_agent)

    def __repr__(self) -> str:
        return f"Transport(admin_url={self.admin_url!r}, timeout={self.timeout!r})"

    def close(self) -> None:
        self._endpoint.close()

    def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        """One Admin API call with retries: the parsed answer (None for a DELETE of nothing)."""
        return self._retrier.request(
            method, lambda: self.exchange(method, path, params=params, body=body)
        )

    def exchange(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        """One HTTP request, no retry: the parsed answer, or a typed error / `RetryableFailure`."""
        headers = {"Accept": "application/json", **self._auth.header()}
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = send(
            self._endpoint,
            BACKEND,
            f"{WHERE} {method} {path}",
            method,
            ADMIN_PREFIX + path,
            secret=self._auth.secret,
            params=params,
            body=body,
            headers=headers,
            timeout=self.timeout,
        )
        return self._answer(method, path, response)

    def _answer(self, method: str, path: str, response: Response) -> Any:
        status = response.status
        where = f"{WHERE} {method} {path}"
        if status >= 500:
            raise RetryableFailure(f"{where}: {status} {self._clip(response.text)}")
        body = _json(response)
        if status in (200, 201):
            if response.headers.get("X-API-VERSION") != "v3":
                raise TerminalGatewayError(
                    f"{where}: the answer is not from an Admin API v3 (no X-API-VERSION: v3); "
                    "canaryctl needs APISIX 3.x",
                    status,
                )
            if body is None:
                raise RetryableFailure(f"{where}: {status} with a body that is not JSON")
            return body
        message = self._clip(_message(body, response.text))
        if status == 429:
            raise RetryableFailure(
                f"{where}: 429 {message}", retry_after=retry_after(response), may_have_landed=False
            )
        if status == 401:
            raise TerminalGatewayError(f"{WHERE} rejected the key (401): {message}", status)
        if status == 403:
            raise TerminalGatewayError(f"{where}: access denied (403): {message}", status)
        if status == 404:
            raise TerminalGatewayError(f"{where}: not found (404): {message}", status)
        raise TerminalGatewayError(f"{where}: {status} {message}", status)

    def _clip(self, text: str) -> str:
        return clip(text, self._auth.secret)


def _json(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _message(body: Any, text: str) -> str:
    """The Admin API's words for an error: `error_msg` (+ `description`), `message` or the text."""
    if not isinstance(body, dict):
        return text
    message = str(body.get("error_msg") or body.get("message") or text)
    if body.get("description"):
        message += f" ({body['description']})"
    return message
