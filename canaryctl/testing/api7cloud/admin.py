"""The API7 emulator's part of the `/_emulator/` control API (see `httpemulation.control`).

Served on the Open API port without a token; never logged, never faulted. Besides the
shared endpoints (faults, request log, resolve map) it adds `GET /_emulator/state`: org,
cluster, and every app with its `apis` and `canary_releases`; `POST /_emulator/split`
`{"app": name or id, "weights": [canary, default] or null}` and `DELETE /_emulator/split`
(the data plane's split, see `Emulator.set_split`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from canaryctl.testing.api7cloud.store import Store
from canaryctl.testing.apisix.dataplane import SplitOverrides
from canaryctl.testing.httpemulation.control import ControlContext, ControlError, json_object
from canaryctl.testing.httpemulation.faults import FaultSet
from canaryctl.testing.httpemulation.requestlog import RequestLog


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


def control_context(
    store: Store,
    faults: FaultSet,
    request_log: RequestLog,
    add_resolve: Callable[[str, str], None],
    overrides: SplitOverrides,
) -> ControlContext:
    extra = {
        ("GET", "state"): lambda body: state(store),
        ("POST", "split"): lambda body: _set_split(overrides, body),
        ("DELETE", "split"): lambda body: {"cleared": overrides.clear()},
    }
    return ControlContext(faults, request_log, add_resolve, extra)


def _set_split(overrides: SplitOverrides, body: bytes) -> dict[str, Any]:
    fields = json_object(body)
    app, weights = fields.get("app"), fields.get("weights")
    valid = weights is None or (
        isinstance(weights, list)
        and len(weights) == 2
        and all(type(w) is int and w >= 0 for w in weights)
        and sum(weights) > 0
    )
    if not isinstance(app, str) or not valid:
        raise ControlError(400, "expected {app: str, weights: [canary, default] or null}")
    overrides.set(app, weights)
    return {"app": app, "weights": weights}
