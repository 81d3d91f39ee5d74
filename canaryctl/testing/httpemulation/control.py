"""The `/_emulator/` control API every emulator serves, for tests and demos in another process.

Served without credentials, never logged, never faulted. JSON in, JSON out.

| method | path | effect |
|---|---|---|
| GET | `/_emulator/faults` | `{"faults": [...]}` |
| POST | `/_emulator/faults` | add one fault (`faults.Fault` fields but `id`, `fired`) → `{"id"}` |
| DELETE | `/_emulator/faults` | clear all → `{"cleared": n}` |
| DELETE | `/_emulator/faults/{id}` | remove one (404 if unknown) |
| GET | `/_emulator/requests` | `{"requests": [{method, path, query, status, time, user_agent}]}` |
| DELETE | `/_emulator/requests` | clear the request log |
| POST | `/_emulator/resolve` | `{"host:port": "addr:port", ...}` added to the data plane's map |

An emulator adds its own endpoints (e.g. `GET /_emulator/state`) through `extra`. Errors
answer `{"error": "..."}` with 400, 404 or 405.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from canaryctl.testing.httpemulation.faults import FaultSet
from canaryctl.testing.httpemulation.requestlog import RequestLog

PREFIX = "/_emulator/"

Endpoint = Callable[[bytes], dict[str, Any]]


class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class ControlContext:
    faults: FaultSet
    request_log: RequestLog
    add_resolve: Callable[[str, str], None]
    extra: dict[tuple[str, str], Endpoint] = field(default_factory=dict)


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, else ControlError 400."""
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise ControlError(400, "body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ControlError(400, "body must be a JSON object")
    return value


def _add_fault(ctx: ControlContext, body: bytes) -> dict[str, Any]:
    try:
        return {"id": ctx.faults.add(**json_object(body))}
    except (TypeError, ValueError) as error:
        raise ControlError(400, str(error)) from None


def _remove_fault(ctx: ControlContext, fault_id: str) -> dict[str, Any]:
    if not ctx.faults.remove(fault_id):
        raise ControlError(404, f"fault {fault_id} not found")
    return {"removed": fault_id}


def _clear_requests(ctx: ControlContext) -> dict[str, Any]:
    ctx.request_log.clear()
    return {"cleared": True}


def _add_resolve(ctx: ControlContext, body: bytes) -> dict[str, Any]:
    entries = json_object(body)
    if not all(isinstance(value, str) for value in entries.values()):
        raise ControlError(400, "values must be 'addr:port' strings")
    try:
        for target, address in entries.items():
            ctx.add_resolve(target, address)
    except ValueError as error:
        raise ControlError(400, str(error)) from None
    return {"added": len(entries)}


def _endpoints(ctx: ControlContext) -> dict[tuple[str, str], Endpoint]:
    return {
        ("GET", "faults"): lambda body: {"faults": ctx.faults.list()},
        ("POST", "faults"): lambda body: _add_fault(ctx, body),
        ("DELETE", "faults"): lambda body: {"cleared": ctx.faults.clear()},
        ("GET", "requests"): lambda body: {
            "requests": [r.to_dict() for r in ctx.request_log.records()]
        },
        ("DELETE", "requests"): lambda body: _clear_requests(ctx),
        ("POST", "resolve"): lambda body: _add_resolve(ctx, body),
        **ctx.extra,
    }


def handle(ctx: ControlContext, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Serve one control request; returns (status, JSON payload)."""
    resource = path[len(PREFIX) :].rstrip("/")
    endpoints = _endpoints(ctx)
    try:
        if method == "DELETE" and resource.startswith("faults/"):
            return 200, _remove_fault(ctx, resource[len("faults/") :])
        endpoint = endpoints.get((method, resource))
        if endpoint is None:
            known = any(name == resource for _, name in endpoints)
            raise ControlError(405 if known else 404, f"{method} {path} is not a control endpoint")
        return 200, endpoint(body)
    except ControlError as error:
        return error.status, {"error": str(error)}
