"""The emulator's own control API under `/_emulator/`, for tests and demos in another process.

Served on the Open API port without a token; never logged, never faulted. JSON in, JSON out.

| method | path | effect |
|---|---|---|
| GET | `/_emulator/faults` | `{"faults": [...]}` |
| POST | `/_emulator/faults` | add one fault (fields of `faults.Fault` minus `id`/`fired`) → `{"id": "..."}` |
| DELETE | `/_emulator/faults` | clear all → `{"cleared": n}` |
| DELETE | `/_emulator/faults/{id}` | remove one (404 if unknown) |
| GET | `/_emulator/requests` | `{"requests": [{method, path, query, status, time}, ...]}` |
| DELETE | `/_emulator/requests` | clear the request log |
| GET | `/_emulator/state` | org, cluster, and every app with its `apis` and `canary_releases` |
| POST | `/_emulator/resolve` | `{"host:port": "addr:port", ...}` added to the data plane's map |

Errors answer `{"error": "..."}` with 400, 404 or 405.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from canaryctl.testing.api7cloud.faults import FaultSet
from canaryctl.testing.api7cloud.requestlog import RequestLog
from canaryctl.testing.api7cloud.store import Store

PREFIX = "/_emulator/"


@dataclass
class AdminContext:
    store: Store
    faults: FaultSet
    request_log: RequestLog
    add_resolve: Callable[[str, str], None]


class _AdminError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise _AdminError(400, "body is not valid JSON") from None
    if not isinstance(value, dict):
        raise _AdminError(400, "body must be a JSON object")
    return value


def _add_fault(ctx: AdminContext, body: bytes) -> dict[str, Any]:
    fields = _json_object(body)
    try:
        return {"id": ctx.faults.add(**fields)}
    except (TypeError, ValueError) as error:
        raise _AdminError(400, str(error)) from None


def _remove_fault(ctx: AdminContext, fault_id: str) -> dict[str, Any]:
    if not ctx.faults.remove(fault_id):
        raise _AdminError(404, f"fault {fault_id} not found")
    return {"removed": fault_id}


def _clear_requests(ctx: AdminContext) -> dict[str, Any]:
    ctx.request_log.clear()
    return {"cleared": True}


def state(store: Store) -> dict[str, Any]:
    """The whole emulator state as JSON: what a human debugging a test wants to see."""
    apps = []
    for app in store.list_apps():
        apps.append(
            {
                **app,
                "apis": store.list_apis(app["id"]),
                "canary_releases": store.list_canaries(app["id"]),
            }
        )
    return {"org_id": store.org_id, "cluster_id": store.cluster_id, "apps": apps}


def _add_resolve(ctx: AdminContext, body: bytes) -> dict[str, Any]:
    entries = _json_object(body)
    if not all(isinstance(value, str) for value in entries.values()):
        raise _AdminError(400, "values must be 'addr:port' strings")
    try:
        for target, address in entries.items():
            ctx.add_resolve(target, address)
    except ValueError as error:
        raise _AdminError(400, str(error)) from None
    return {"added": len(entries)}


def handle(ctx: AdminContext, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Serve one admin request; returns (status, JSON payload)."""
    resource = path[len(PREFIX) :].rstrip("/")
    routes: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
        ("GET", "faults"): lambda: {"faults": ctx.faults.list()},
        ("POST", "faults"): lambda: _add_fault(ctx, body),
        ("DELETE", "faults"): lambda: {"cleared": ctx.faults.clear()},
        ("GET", "requests"): lambda: {"requests": [r.to_dict() for r in ctx.request_log.records()]},
        ("DELETE", "requests"): lambda: _clear_requests(ctx),
        ("GET", "state"): lambda: state(ctx.store),
        ("POST", "resolve"): lambda: _add_resolve(ctx, body),
    }
    try:
        if method == "DELETE" and resource.startswith("faults/"):
            return 200, _remove_fault(ctx, resource[len("faults/") :])
        action = routes.get((method, resource))
        if action is None:
            known = any(name == resource for _, name in routes)
            raise _AdminError(405 if known else 404, f"{method} {path} is not an admin endpoint")
        return 200, action()
    except _AdminError as error:
        return error.status, {"error": str(error)}
