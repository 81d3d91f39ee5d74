"""HTTPRoute calls on the kube-apiserver: raw JSON, bounded timeouts, typed errors, metrics.

Kept apart from the backend so the rules that make a call safe live in one place:
- requests go through `kube.api_request` (the ApiClient's settings and credentials, raw
  JSON, no model objects) with a (connect, read) timeout;
- writes are server-side apply (`application/apply-patch+yaml`, fieldManager `canaryctl`):
  idempotent, so a write whose outcome is unknown is simply sent again; `force` is the
  caller's choice (see the backend);
- a few short retries inside a call for connection trouble, 429 and 5xx; then
  `TransientGatewayError` and the work queue's backoff take over. 409 (a conflict with
  another field manager, a failed precondition) is transient: the route changed under
  canaryctl, which a fresh read shows. Other 4xx are terminal. A DELETE that finds nothing
  (404) has succeeded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client

from canaryctl import metrics, wire
from canaryctl.gateway.base import TerminalGatewayError, TransientGatewayError
from canaryctl.gateway.gatewayapi.route import FIELD_MANAGER, GROUP, PLURAL, VERSION, Json
from canaryctl.kube import JSON, ListRequest, api_request, list_request, read_json

BACKEND = "gateway-api"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML: the body is sent as JSON
TIMEOUT = (3.0, 10.0)  # (connect, read) seconds
RETRY_DELAYS = (0.1, 0.4)  # seconds before the 2nd and 3rd attempt
_MAX_MESSAGE = 300


class RouteClient:
    """HTTPRoutes (and the parent Gateway) through one `ApiClient`."""

    def __init__(
        self,
        api_client: client.ApiClient,
        timeout: tuple[float, float] = TIMEOUT,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        sleep: Callable[[float], Any] = time.sleep,
    ):
        self.api_client = api_client
        self.timeout, self.retry_delays, self._sleep = timeout, retry_delays, sleep

    def __repr__(self) -> str:
        return f"RouteClient({self.api_client.configuration.host!r})"

    # routes ---------------------------------------------------------------------------------

    def apply(self, namespace: str, name: str, body: Json, force: bool) -> Json:
        """Server-side apply `body` to the route; the route as stored afterwards."""
        metrics.series(metrics.gateway_writes_total, BACKEND).inc()
        query = {"fieldManager": FIELD_MANAGER, "force": force}
        return self._json(
            "PATCH",
            lambda: self._request(
                "PATCH", _path(PLURAL, namespace, name), query, body, APPLY_PATCH
            ),
        )

    def get(self, namespace: str, name: str) -> Json | None:
        """The route, or None when there is none."""
        return self._get(PLURAL, namespace, name)

    def named(self, namespace: str | None, name: str) -> list[Json]:
        """Every route called `name` in `namespace` (None: in all namespaces), whoever made it."""
        page = self._json(
            "LIST", lambda: self.list_request(namespace)(field_selector=f"metadata.name={name}")
        )
        return list(page.get("items") or [])

    def delete(self, namespace: str, name: str, uid: str) -> None:
        """Delete the route if it is still the one with `uid`; a route already gone is fine."""
        metrics.series(metrics.gateway_writes_total, BACKEND).inc()
        options = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid}}
        try:
            self._json(
                "DELETE",
                lambda: self._request("DELETE", _path(PLURAL, namespace, name), body=options),
            )
        except TerminalGatewayError as error:
            if error.status != 404:
                raise

    def list_request(self, namespace: str | None, **selectors: Any) -> ListRequest:
        """A raw list/watch call for routes of `namespace` (None: all), for the informer."""
        request = list_request(self.api_client, _path(PLURAL, namespace))
        return lambda **params: request(**selectors, **params)

    # the parent -----------------------------------------------------------------------------

    def gateway(self, namespace: str, name: str) -> Json | None:
        """The Gateway `namespace/name`, or None when there is none."""
        return self._get("gateways", namespace, name)

    def _get(self, plural: str, namespace: str, name: str) -> Json | None:
        try:
            return self._json("GET", lambda: self._request("GET", _path(plural, namespace, name)))
        except TerminalGatewayError as error:
            if error.status == 404:
                return None
            raise

    def _request(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Json | None = None,
        content_type: str = JSON,
    ) -> wire.Response:
        return api_request(
            self.api_client,
            method,
            path,
            query=query,
            body=body,
            content_type=content_type,
            timeout=self.timeout,
        )

    # one call, with retries -----------------------------------------------------------------

    def _json(self, method: str, call: Callable[[], Any]) -> Json:
        """Make `call` (a raw request) with bounded retries; its JSON answer."""
        delays = iter(self.retry_delays)
        while True:
            try:
                return self._once(method, call)
            except TransientGatewayError:
                delay = next(delays, None)
                if delay is None:
                    raise
                metrics.gateway_retries_total.labels(BACKEND).inc()
                self._sleep(delay)

    def _once(self, method: str, call: Callable[[], Any]) -> Json:
        started, code = time.monotonic(), "error"
        try:
            answer = read_json(call())
            code = "200"
            return answer
        except client.ApiException as error:
            code = str(error.status or "error")
            raise _typed(error, method) from None
        except (OSError, ValueError) as error:
            raise TransientGatewayError(
                f"kube-apiserver {method} httproutes: {type(error).__name__}: {error}"
            ) from None
        finally:
            metrics.gateway_requests_total.labels(BACKEND, method, code).inc()
            metrics.gateway_request_duration_seconds.labels(BACKEND, method).observe(
                time.monotonic() - started
            )


def _path(plural: str, namespace: str | None, name: str = "") -> str:
    """The API path of the `plural` collection of `namespace` (None: all), or of one object."""
    scope = f"/namespaces/{namespace}" if namespace is not None else ""
    return f"/apis/{GROUP}/{VERSION}{scope}/{plural}" + (f"/{name}" if name else "")


def _typed(error: client.ApiException, method: str) -> Exception:
    """The gateway error an apiserver answer stands for, with the apiserver's own message."""
    status = error.status or 0
    message = f"kube-apiserver {method} httproutes: HTTP {status} {_message(error)}"
    if status in (0, 409, 429) or status >= 500:
        return TransientGatewayError(message)
    return TerminalGatewayError(message, status)


def _message(error: client.ApiException) -> str:
    try:
        text = str(json.loads(error.body or "{}").get("message") or error.reason)
    except (ValueError, AttributeError):
        text = str(error.reason)
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."
