"""The Admin API (v3) over HTTP: auth, paths, bodies, the v3 list shape, faults and the log.

apache/apisix `apisix/admin/init.lua` and `apisix/admin/v3_adapter.lua`:

- key from query `api_key`, header `X-API-KEY` or cookie `x_api_key`; missing or wrong:
  401 `{"error_msg": "failed to check token", "description": "missing apikey"}` (or
  `wrong apikey`, or for a viewer key anything but GET: `invalid method for role viewer`);
- `/apisix/admin/{resource}[/{id}[/{sub/path}]]`; a resource APISIX does not have: 404
  `{"error_msg": "Unsupported resource type: x"}`; one the emulator does not implement:
  501;
- a body that is not JSON: 400 `{"error_msg": "invalid request body: ...", "req_body"}`;
  a non-numeric `ttl`: 400 (a numeric one is accepted and ignored);
- answers from a resource carry `X-API-VERSION: v3`; JSON bodies end with a newline;
- lists: filters `name` (regex on the name), `label` (a label *key*), `uri` (regex on
  `uri` or any of `uris`); then `total`; then, only when both `page` and `page_size` are
  numbers, paging by `createdIndex` (`page` < 1 means 1) with `page_size` in 10..500, else
  400 with the plain-text body `page_size must be between 10 and 500`;
- DELETE `?force=true` skips the "still in use" check.

Faults (see `httpemulation.faults`) apply to Admin API paths; a status fault answers
`{"error_msg": "injected fault"}`, a 429 also `Retry-After`. Paths under `/_emulator/`
are the control API: no key, not logged, never faulted.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from canaryctl.backgroundhttp import QuietHandler
from canaryctl.testing.apisix.dataplane import SERVER, nginx_error_page
from canaryctl.testing.apisix.store import KINDS, AdminError, Store, StoredItem, bad_request
from canaryctl.testing.apisix.validation import ABSENT
from canaryctl.testing.httpemulation import control
from canaryctl.testing.httpemulation.faults import Fault, FaultSet
from canaryctl.testing.httpemulation.requestlog import RequestLog, RequestRecord

log = logging.getLogger(__name__)

PREFIX = "/apisix/admin"
APISIX_RESOURCES = frozenset(
    """routes services upstreams consumers credentials schema ssls plugins protos
    global_rules stream_routes plugin_metadata plugin_configs consumer_groups
    secrets""".split()  # noqa: SIM905 - a word list
)
_JSON = "application/json"
_TEXT = "text/plain"


@dataclass
class AdminContext:
    store: Store
    keys: dict[str, str]  # key -> role ("admin" or "viewer"); empty: no key required
    faults: FaultSet
    request_log: RequestLog
    control: control.ControlContext


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # JSON payload, or str for a plain-text answer
    headers: tuple[tuple[str, str], ...] = (("X-API-VERSION", "v3"),)


def token_problem(keys: dict[str, str], method: str, offered: str | None) -> str | None:
    """init.lua `check_token`: None when allowed, else the description of the 401."""
    if not keys:
        return None
    if offered is None:
        return "missing apikey"
    role = next(
        (r for k, r in keys.items() if hmac.compare_digest(k.encode(), offered.encode())), None
    )
    if role is None:
        return "wrong apikey"
    if role == "viewer" and method != "GET":
        return "invalid method for role viewer"
    return None


def filter_and_page(items: list[StoredItem], args: dict[str, str]) -> dict[str, Any] | str:
    """v3_adapter `filter`: the list body, or the plain-text 400 of a bad page size."""
    nodes = [item.to_node() for item in items if _listed(item.value, args)]
    body: dict[str, Any] = {"list": nodes, "total": len(nodes)}
    page, size = _number(args.get("page")), _number(args.get("page_size"))
    if page is None or size is None:
        return body
    if size < 10 or size > 500:
        return "page_size must be between 10 and 500"
    page = max(page, 1)
    ordered = sorted(nodes, key=lambda node: node["createdIndex"])
    body["list"] = ordered[int((page - 1) * size) : int(page * size)]
    return body


def _listed(value: dict[str, Any], args: dict[str, str]) -> bool:
    if "name" in args and not re.search(args["name"], str(value.get("name", "\0"))):
        return False
    if "label" in args and args["label"] not in (value.get("labels") or {}):
        return False
    if "uri" in args:
        uris = [value["uri"]] if value.get("uri") else []
        return any(re.search(args["uri"], uri) for uri in uris + list(value.get("uris") or []))
    return True


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


class AdminHandler(QuietHandler):
    """One client connection to the Admin API port."""

    server_version = SERVER
    sys_version = ""

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    @property
    def context(self) -> AdminContext:
        return self.server.context

    def _handle(self) -> None:
        self._url = urlsplit(self.path)
        body = self.read_body()
        if self._url.path.startswith(control.PREFIX):
            status, payload = control.handle(
                self.context.control, self.command, self._url.path, body
            )
            self.send_bytes(status, json.dumps(payload).encode(), _JSON)
            return
        decision = self.context.faults.decide(self.command, self._url.path)
        if decision.latency_ms:
            self.server.stopping.wait(decision.latency_ms / 1000)
        if decision.action is not None:
            self._answer_fault(decision.action)
            return
        try:
            answer = self._serve(body)
        except AdminError as error:
            answer = Answer(error.status, error.body)
        except Exception:  # an emulator bug: answer like a failing server, keep serving
            log.exception("APISIX emulator failed on %s %s", self.command, self.path)
            answer = Answer(500, {"error_msg": "internal error"}, ())
        self._send(answer)

    def _serve(self, raw_body: bytes) -> Answer:
        path = self._url.path
        if self.command == "HEAD" and path.rstrip("/") == PREFIX:
            return Answer(200, "", ())
        if not path.startswith(PREFIX + "/") or self.command in ("HEAD", "OPTIONS"):
            return Answer(404, nginx_error_page(404).decode(), ())
        args = {k: v[0] for k, v in parse_qs(self._url.query, keep_blank_values=True).items()}
        problem = token_problem(self.context.keys, self.command, self._offered_key(args))
        if problem:
            return Answer(401, {"error_msg": "failed to check token", "description": problem}, ())
        resource, resource_id, sub_path = self._segments(path)
        if resource not in APISIX_RESOURCES:
            return Answer(404, {"error_msg": f"Unsupported resource type: {resource}"}, ())
        if resource not in KINDS:
            message = f"the APISIX emulator does not implement {resource}"
            return Answer(501, {"error_msg": message}, ())
        conf = self._json_body(raw_body)
        if "ttl" in args and _number(args["ttl"]) is None:
            raise bad_request("invalid argument ttl: should be a number")
        return self._dispatch(resource, resource_id, sub_path, conf, args)

    def _dispatch(
        self, resource: str, resource_id: str | None, sub_path: str, conf: Any, args: dict
    ) -> Answer:
        store = self.context.store
        if self.command == "GET" and resource_id is None:
            listed = filter_and_page(store.list(resource), args)
            return Answer(400 if isinstance(listed, str) else 200, listed)
        if self.command == "GET":
            return Answer(200, store.get(resource, str(resource_id)).to_node())
        if self.command == "PUT":
            return Answer(*store.put(resource, resource_id, conf))
        if self.command == "POST":
            return Answer(*store.post(resource, resource_id, conf))
        if self.command == "PATCH":
            return Answer(*store.patch(resource, resource_id, conf, sub_path))
        return Answer(*store.delete(resource, resource_id, force=args.get("force") == "true"))

    @staticmethod
    def _segments(path: str) -> tuple[str, str | None, str]:
        parts = path[len(PREFIX) + 1 :].split("/")
        resource = parts[0]
        resource_id = parts[1] if len(parts) > 1 and parts[1] else None
        return resource, resource_id, "/".join(parts[2:])

    def _offered_key(self, args: dict[str, str]) -> str | None:
        if "api_key" in args:
            return args["api_key"]
        if self.headers.get("X-API-KEY") is not None:
            return self.headers["X-API-KEY"]
        try:
            cookie = SimpleCookie(self.headers.get("Cookie") or "").get("x_api_key")
        except CookieError:
            return None
        return cookie.value if cookie else None

    @staticmethod
    def _json_body(raw: bytes) -> Any:
        if not raw:
            return ABSENT
        try:
            return json.loads(raw)
        except ValueError as error:
            position = getattr(error, "pos", 0) + 1
            found = f"Expected value but found invalid token at character {position}"
            message = f"invalid request body: {found}"
            body = {"error_msg": message, "req_body": raw.decode(errors="replace")}
            raise AdminError(400, body) from None

    def _send(self, answer: Answer) -> None:
        if isinstance(answer.body, str):
            body, content_type = answer.body.encode(), _TEXT
            if answer.body.startswith("<html>"):
                content_type = "text/html"
        else:
            body, content_type = (json.dumps(answer.body) + "\n").encode(), _JSON
        self.send_bytes(answer.status, body, content_type, dict(answer.headers))

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

    def _answer_fault(self, fault: Fault) -> None:
        if fault.kind == "drop":
            self._record(0)
            self.drop_connection()
            return
        if fault.kind == "retry_after":
            retry = (("Retry-After", str(fault.retry_after)),)
            self._send(Answer(429, {"error_msg": "too many requests (injected fault)"}, retry))
            return
        self._send(Answer(fault.status, {"error_msg": "injected fault"}, ()))
