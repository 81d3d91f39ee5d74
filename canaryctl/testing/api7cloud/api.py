"""The Open API over HTTP: paths, bearer auth, envelopes, pagination, faults and the request log.

Transport rules from the spec: only 200 is success (creates and deletes too, always with
an envelope), 5xx bodies are plain text, every other error is an envelope with `error`.
Lists take `page` (1-based), `page_size` (default 10) and `search` (substring of `name`)
and answer `{"list": [...], "count": total}` with an empty list past the end.

Envelope `status` codes follow gRPC numbering (the service is Go with gRPC-style codes):
0 OK, 3 InvalidArgument (400), 16 Unauthenticated (401), 7 PermissionDenied (403),
5 NotFound (404), 12 Unimplemented (405), 6 AlreadyExists (409, only ever injected),
8 ResourceExhausted (429). An unexpected exception answers 500 in plain text.

Paths under `/_emulator/` are the control API (see `admin`): no token, not logged, never faulted.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from canaryctl.backgroundhttp import QuietHandler
from canaryctl.testing.api7cloud.resources import ApiError, bad_request
from canaryctl.testing.api7cloud.store import Store
from canaryctl.testing.httpemulation import control
from canaryctl.testing.httpemulation.faults import Fault, FaultSet
from canaryctl.testing.httpemulation.requestlog import RequestLog, RequestRecord

_STATUS_CODES = {
    200: (0, "OK"),
    400: (3, "InvalidArgument"),
    401: (16, "Unauthenticated"),
    403: (7, "PermissionDenied"),
    404: (5, "NotFound"),
    405: (12, "Unimplemented"),
    409: (6, "AlreadyExists"),
    429: (8, "ResourceExhausted"),
}
log = logging.getLogger(__name__)

_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"


@dataclass
class OpenApiContext:
    """What the Open API handler serves from; shared with the Emulator object."""

    store: Store
    token: str
    faults: FaultSet
    request_log: RequestLog
    control: control.ControlContext


# --- routes: (method, path regex, action(store, path params, body)) --------------------

Action = Callable[[Store, dict[str, str], Any], Any]
_CP = r"(?:controlplanes|clusters)"
_ID = r"(?P<{}>[^/]+)"
_APP = f"/api/v1/apps/{_ID.format('app')}"
_ROUTES: list[tuple[str, str, Action]] = [
    ("GET", "/api/v1/user/me", lambda s, p, b: s.user()),
    ("GET", f"/api/v1/orgs/{_ID.format('org')}", lambda s, p, b: s.org(p["org"])),
    ("GET", f"/api/v1/orgs/{_ID.format('org')}/{_CP}", lambda s, p, b: s.clusters(p["org"])),
    ("GET", f"/api/v1/clusters/{_ID.format('cp')}", lambda s, p, b: s.cluster(p["cp"])),
    ("GET", f"/api/v1/{_CP}/{_ID.format('cp')}/apps", lambda s, p, b: s.list_apps(p["cp"])),
    ("POST", f"/api/v1/{_CP}/{_ID.format('cp')}/apps", lambda s, p, b: s.create_app(p["cp"], b)),
    (
        "GET",
        f"/api/v1/{_CP}/{_ID.format('cp')}/apps/{_ID.format('app')}",
        lambda s, p, b: s.get_app(p["cp"], p["app"]),
    ),
    (
        "PUT",
        f"/api/v1/{_CP}/{_ID.format('cp')}/apps/{_ID.format('app')}",
        lambda s, p, b: s.replace_app(p["cp"], p["app"], b),
    ),
    (
        "DELETE",
        f"/api/v1/{_CP}/{_ID.format('cp')}/apps/{_ID.format('app')}",
        lambda s, p, b: s.delete_app(p["cp"], p["app"]),
    ),
    ("GET", f"{_APP}/apis", lambda s, p, b: s.list_apis(p["app"])),
    ("POST", f"{_APP}/apis", lambda s, p, b: s.create_api(p["app"], b)),
    ("GET", f"{_APP}/apis/{_ID.format('api')}", lambda s, p, b: s.get_api(p["app"], p["api"])),
    (
        "PUT",
        f"{_APP}/apis/{_ID.format('api')}",
        lambda s, p, b: s.replace_api(p["app"], p["api"], b),
    ),
    (
        "DELETE",
        f"{_APP}/apis/{_ID.format('api')}",
        lambda s, p, b: s.delete_api(p["app"], p["api"]),
    ),
    ("GET", f"{_APP}/canary_releases", lambda s, p, b: s.list_canaries(p["app"])),
    ("POST", f"{_APP}/canary_releases", lambda s, p, b: s.create_canary(p["app"], b)),
    (
        "GET",
        f"{_APP}/canary_releases/{_ID.format('cr')}",
        lambda s, p, b: s.get_canary(p["app"], p["cr"]),
    ),
    (
        "PUT",
        f"{_APP}/canary_releases/{_ID.format('cr')}",
        lambda s, p, b: s.replace_canary(p["app"], p["cr"], b),
    ),
    (
        "DELETE",
        f"{_APP}/canary_releases/{_ID.format('cr')}",
        lambda s, p, b: s.delete_canary(p["app"], p["cr"]),
    ),
]
_COMPILED = [(method, re.compile(pattern + r"\Z"), action) for method, pattern, action in _ROUTES]


def find_action(method: str, path: str) -> tuple[Action, dict[str, str]]:
    """The action serving `method path`; 404 for an unknown path, 405 for a known path."""
    path_known = False
    for route_method, pattern, action in _COMPILED:
        match = pattern.match(path)
        if match:
            if route_method == method:
                return action, match.groupdict()
            path_known = True
    if path_known:
        raise ApiError(405, f"method {method} is not allowed on {path}")
    raise ApiError(404, f"no such endpoint: {path}")


def _positive_int(query: dict[str, list[str]], key: str, default: int) -> int:
    raw = (query.get(key) or [str(default)])[0]
    if not raw.isdigit() or int(raw) < 1:
        raise bad_request(f"{key} must be a positive integer")
    return int(raw)


def paginate(items: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    """One page of `items` filtered by `search`; `count` is the total after filtering."""
    page, size = _positive_int(query, "page", 1), _positive_int(query, "page_size", 10)
    search = (query.get("search") or [""])[0]
    matching = [item for item in items if search in (item.get("name") or "")]
    return {"list": matching[(page - 1) * size : page * size], "count": len(matching)}


def envelope(status: int, payload: Any = None, error: str | None = None) -> bytes:
    code, message = _STATUS_CODES.get(status, (2, "Unknown"))
    body: dict[str, Any] = {"status": {"code": code, "message": message}}
    if error is None:
        body["payload"] = payload
    else:
        body["error"] = error
    return json.dumps(body).encode()


class OpenApiHandler(QuietHandler):
    """One connection to the Open API port."""

    server_version = "api7-cloud-emulator"
    sys_version = ""

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    @property
    def context(self) -> OpenApiContext:
        return self.server.context

    def _handle(self) -> None:
        url = self._url = urlsplit(self.path)
        body = self.read_body()
        if url.path.startswith(control.PREFIX):
            status, payload = control.handle(self.context.control, self.command, url.path, body)
            self.send_bytes(status, json.dumps(payload).encode(), _JSON)
            return
        self._answer(url.path, url.query, body)

    def send_bytes(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        """Log the call before answering: a client that saw the answer also sees it in the log."""
        if not self._url.path.startswith(control.PREFIX):
            self._record(status)
        super().send_bytes(status, body, content_type, headers)

    def _record(self, status: int) -> None:
        self.context.request_log.record(
            RequestRecord(
                self.command,
                self._url.path,
                status,
                time.time(),
                self._url.query,
                self.headers.get("User-Agent", ""),
            )
        )

    def _answer(self, path: str, query: str, body: bytes) -> int:
        """Serve one Open API request (faults first); returns the status sent (0 = dropped)."""
        decision = self.context.faults.decide(self.command, path)
        if decision.latency_ms:
            self.server.stopping.wait(decision.latency_ms / 1000)
        if decision.action is not None:
            return self._answer_fault(decision.action)
        try:
            payload = self._serve(path, query, body)
        except ApiError as error:
            return self._send_error(error.status, error.message)
        except Exception:  # an emulator bug: answer like a failing service, keep serving
            log.exception("emulator failed on %s %s", self.command, path)
            return self._send_error(500, "internal error")
        self.send_bytes(200, envelope(200, payload), _JSON)
        return 200

    def _serve(self, path: str, query: str, body: bytes) -> Any:
        if not self._authorized():
            raise ApiError(401, "missing or invalid access token")
        action, params = find_action(self.command, path)
        result = action(
            self.context.store,
            params,
            self._json(body) if self.command in ("POST", "PUT") else None,
        )
        return paginate(result, parse_qs(query)) if isinstance(result, list) else result

    def _authorized(self) -> bool:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.context.token.encode()
        )

    @staticmethod
    def _json(body: bytes) -> Any:
        try:
            return json.loads(body or b"null")
        except ValueError:
            raise bad_request("request body is not valid JSON") from None

    def _send_error(self, status: int, message: str, headers: dict[str, str] | None = None) -> int:
        if status >= 500:
            self.send_bytes(status, f"{status} {message}\n".encode(), _TEXT, headers)
        else:
            self.send_bytes(status, envelope(status, error=message), _JSON, headers)
        return status

    def _answer_fault(self, fault: Fault) -> int:
        if fault.kind == "drop":
            self._record(0)  # logged first, like every answer: the client may retry at once
            self.drop_connection()
            return 0
        if fault.kind == "retry_after":
            return self._send_error(
                429, "rate limited (injected fault)", {"Retry-After": str(fault.retry_after)}
            )
        return self._send_error(fault.status, "injected fault")
