"""The emulator's etcd: APISIX's stored routes and upstreams, with the Admin API's semantics.

The Admin API server, the data plane and the test's own thread share it, so every public
method takes one lock and hands out deep copies. What it keeps is what APISIX keeps in
etcd under `/apisix/<resource>/<id>`: the validated value (defaults filled in, `id`,
`create_time`, `update_time` in unix seconds) with etcd's `createdIndex` /
`modifiedIndex`. One revision counter counts every write and delete, as etcd's does.

Semantics (apache/apisix `apisix/admin/resource.lua`, `apisix/core/etcd.lua`):
PUT answers 201 when the key is new and 200 when it replaced one; POST takes the id from
an extra write (`%020d` of that revision) and answers 201; PATCH merges (null deletes,
objects merge, arrays and scalars are replaced) or sets one sub-path, then validates the
result, answers 200; DELETE answers 200 `{"deleted": "1", "key"}`; a missing key answers
404 `{"message": "Key not found"}`. An upstream still used by a route (as `upstream_id`
or in traffic-split) is not deleted unless forced. Methods raise `AdminError(status,
body)` for every non-2xx answer.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from canaryctl.testing.apisix import validation

Json = dict[str, Any]
KINDS = {"routes": "route", "upstreams": "upstream"}
PREFIX = "/apisix"


class AdminError(Exception):
    """A non-2xx Admin API answer: status and JSON body."""

    def __init__(self, status: int, body: Json):
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


def bad_request(message: str) -> AdminError:
    return AdminError(400, {"error_msg": message})


NOT_FOUND = {"message": "Key not found"}


@dataclass(frozen=True)
class StoredItem:
    """A stored value with its etcd revisions; the value is the caller's own copy."""

    resource: str
    id: str
    value: Json
    created_index: int
    modified_index: int

    @property
    def key(self) -> str:
        return f"{PREFIX}/{self.resource}/{self.id}"

    def to_node(self) -> Json:
        return {
            "key": self.key,
            "value": self.value,
            "createdIndex": self.created_index,
            "modifiedIndex": self.modified_index,
        }


def merge_patch(origin: Json, patch: Json) -> Json:
    """core.table.merge: null deletes, objects merge, everything else replaces."""
    for name, value in patch.items():
        if value is None:
            origin.pop(name, None)
        elif isinstance(value, dict) and isinstance(origin.get(name), dict) and origin[name]:
            merge_patch(origin[name], value)
        else:
            origin[name] = value
    return origin


def patch_sub_path(value: Json, sub_path: str, new: Any) -> Json:
    """core.table.patch: set the field at `a/b/c` (missing objects on the way are created)."""
    parts = sub_path.split("/")
    target: Any = value
    for depth, part in enumerate(parts[:-1], start=1):
        if target.get(part) is None:
            target[part] = {}
        target = target[part]
        if not isinstance(target, dict):
            raise bad_request("invalid sub-path: /" + "/".join(parts[:depth]))
    if parts[-1] == "":
        if not isinstance(new, dict):
            raise bad_request("invalid configuration")
        return new
    target[parts[-1]] = new
    return value


def upstream_users(routes: list[StoredItem], upstream_id: str) -> str | None:
    """upstreams.lua `delete_checker`: why the upstream may not go, or None."""
    for route in routes:
        split = (route.value.get("plugins") or {}).get("traffic-split") or {}
        for rule in split.get("rules") or []:
            for entry in rule.get("weighted_upstreams") or []:
                if validation.lua_tostring(entry.get("upstream_id")) == upstream_id:
                    return f"can not delete this upstream, plugin in route [{route.id}] " + (
                        "is still using it now"
                    )
        if validation.lua_tostring(route.value.get("upstream_id")) == upstream_id:
            return f"can not delete this upstream, route [{route.id}] is still using it now"
    return None


class Store:
    """Thread-safe routes and upstreams as APISIX's Admin API keeps them in etcd."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._lock = threading.RLock()
        self._clock = clock
        self._revision = 1
        self._items: dict[str, dict[str, StoredItem]] = {name: {} for name in KINDS}

    # --- reads ---------------------------------------------------------------------

    def get(self, resource: str, resource_id: str) -> StoredItem:
        with self._lock:
            item = self._items[resource].get(resource_id)
            if item is None:
                raise AdminError(404, dict(NOT_FOUND))
            return copy.deepcopy(item)

    def list(self, resource: str) -> list[StoredItem]:
        """Every item of a resource in etcd's key order."""
        with self._lock:
            items = sorted(self._items[resource].values(), key=lambda item: item.key.encode())
            return copy.deepcopy(items)

    def find(self, resource: str, resource_id: Any) -> StoredItem | None:
        with self._lock:
            item = self._items[resource].get(validation.lua_tostring(resource_id))
            return copy.deepcopy(item)

    def exists(self, resource: str, resource_id: Any) -> bool:
        with self._lock:
            return validation.lua_tostring(resource_id) in self._items.get(resource, {})

    # --- writes --------------------------------------------------------------------

    def put(self, resource: str, url_id: str | None, conf: Any) -> tuple[int, Json]:
        with self._lock:
            resource_id = self._checked(resource, url_id, conf, need_id=True)
            previous = self._items[resource].get(resource_id)
            now = int(self._clock())
            conf.setdefault(
                "create_time", previous.value.get("create_time", now) if previous else now
            )
            conf.setdefault("update_time", now)
            item = self._set(resource, resource_id, conf)
            return (200 if previous else 201), {"key": item.key, "value": copy.deepcopy(conf)}

    def post(self, resource: str, url_id: str | None, conf: Any) -> tuple[int, Json]:
        with self._lock:
            self._checked(resource, url_id, conf, need_id=False)
            self._revision += 1  # APISIX writes /gen_id to draw the id
            resource_id = f"{self._revision:020d}"
            conf["id"] = resource_id
            now = int(self._clock())
            conf.setdefault("create_time", now)
            conf.setdefault("update_time", now)
            item = self._set(resource, resource_id, conf)
            return 201, {"key": item.key, "value": copy.deepcopy(conf)}

    def patch(
        self, resource: str, url_id: str | None, conf: Any, sub_path: str
    ) -> tuple[int, Json]:
        kind = KINDS[resource]
        if url_id is None:
            raise bad_request(f"missing {kind} id")
        if conf is validation.ABSENT:
            raise bad_request("missing new configuration")
        if not sub_path and not isinstance(conf, dict):
            raise bad_request("invalid configuration")
        with self._lock:
            value = self.get(resource, url_id).value
            if sub_path:
                value = patch_sub_path(value, sub_path, conf)
                value["update_time"] = int(self._clock())
            else:
                value = merge_patch(value, conf)
                if conf.get("update_time") is None:
                    value["update_time"] = int(self._clock())
            value.setdefault("create_time", int(self._clock()))
            self._checked(resource, url_id, value, need_id=True, allow_time=True)
            item = self._set(resource, url_id, value)
            return 200, {"key": item.key, "value": copy.deepcopy(value)}

    def delete(self, resource: str, url_id: str | None, force: bool = False) -> tuple[int, Json]:
        if url_id is None:
            raise bad_request(f"missing {KINDS[resource]} id")
        with self._lock:
            if resource == "upstreams" and not force:
                reason = upstream_users(self.list("routes"), url_id)
                if reason:
                    raise bad_request(reason)
            if url_id not in self._items[resource]:
                raise AdminError(404, dict(NOT_FOUND))
            del self._items[resource][url_id]
            self._revision += 1
            return 200, {"deleted": "1", "key": f"{PREFIX}/{resource}/{url_id}"}

    # --- internals -----------------------------------------------------------------

    def _checked(
        self, resource: str, url_id: str | None, conf: Any, need_id: bool, allow_time: bool = False
    ) -> str:
        """resource.lua `check_conf`; returns the id to store under."""
        resource_id, error = validation.check_id(KINDS[resource], url_id, conf, need_id)
        if error is None and not allow_time:
            error = validation.forbidden_timestamps(conf)
        if error is None:
            if resource == "routes":
                error = validation.check_route(conf, self.exists)
            else:
                error = validation.check_upstream(conf)
        if error is not None:
            raise bad_request(error)
        return validation.lua_tostring(resource_id) if resource_id is not None else ""

    def _set(self, resource: str, resource_id: str, value: Json) -> StoredItem:
        self._revision += 1
        previous = self._items[resource].get(resource_id)
        created = previous.created_index if previous else self._revision
        item = StoredItem(resource, resource_id, copy.deepcopy(value), created, self._revision)
        self._items[resource][resource_id] = item
        return item
