"""The emulator's state: one organization, its cluster(s), and their apps, APIs and canaries.

Both servers (Open API and data plane) and the test's own thread read and write it, so
every public method takes one lock and hands out deep copies: nobody can mutate the state
except through the semantics implemented here (spec "Semantics the emulator implements"):
one `in_progress` canary per application, `finished` making the canary's version the
app's default, read-only `canary_release_id` / `canary_upstream_version_list` derived on
every read, duplicate app names refused, 404 for unknown or mismatched ids.

Ids are decimal strings from one counter starting above 2**53, so a client that turns
them into floats somewhere fails loudly. Empty read-only lists are `null`, as the Go
service marshals a nil slice.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from canaryctl.testing.api7cloud.resources import (
    NORMAL_STATUS,
    Json,
    api_spec,
    application_spec,
    bad_request,
    canary_spec,
    not_found,
)
from canaryctl.testing.api7cloud.routing import host_matches

_FIRST_ID = 10**17 + 424_242_000_000  # > 2**53: ids must survive as strings
CLUSTER_STATUS_NORMAL = 3


def rfc3339_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class PublishedApp:
    """Everything the data plane needs to route one application: copies, safe to keep."""

    app: Json
    apis: list[Json]
    live_canary: Json | None  # the in_progress canary, if any


class Store:
    """Thread-safe API7 Cloud state with the Open API's semantics."""

    def __init__(
        self,
        org_name: str = "default",
        cluster_name: str = "default",
        org_id: str | None = None,
        cluster_id: str | None = None,
        clock: Callable[[], str] = rfc3339_now,
    ):
        for fixed in (org_id, cluster_id):
            if fixed is not None and not fixed.isdigit():
                raise ValueError(f"ids are decimal strings, got {fixed!r}")
        self._lock = threading.RLock()
        self._ids = itertools.count(_FIRST_ID)
        self._reserved_ids = {org_id, cluster_id}
        self._clock = clock
        now = clock()
        self.org_id = org_id or self._new_id()
        self.cluster_id = cluster_id or self._new_id()
        self.user_id = "user-" + self._new_id()
        self._org = {
            "id": self.org_id,
            "name": org_name,
            "created_at": now,
            "updated_at": now,
            "plan_id": self._new_id(),
            "owner_id": self.user_id,
        }
        self._clusters = {
            self.cluster_id: {
                "id": self.cluster_id,
                "name": cluster_name,
                "org_id": self.org_id,
                "region_id": self._new_id(),
                "status": CLUSTER_STATUS_NORMAL,
                "domain": f"{cluster_name}.api7.cloud.local",
                "settings": {},
                "created_at": now,
                "updated_at": now,
            }
        }
        self._apps: dict[str, Json] = {}
        self._apis: dict[str, Json] = {}
        self._canaries: dict[str, Json] = {}

    def _new_id(self) -> str:
        while (candidate := str(next(self._ids))) in self._reserved_ids:
            pass
        return candidate

    # --- user, organization, clusters -------------------------------------------------

    def user(self) -> Json:
        return {
            "id": self.user_id,
            "first_name": "Emulated",
            "last_name": "User",
            "email": "user@api7.cloud.local",
            "org_ids": [self.org_id],
        }

    def org(self, org_id: str) -> Json:
        if org_id != self.org_id:
            raise not_found("organization", org_id)
        return copy.deepcopy(self._org)

    def clusters(self, org_id: str) -> list[Json]:
        self.org(org_id)
        with self._lock:
            return copy.deepcopy(list(self._clusters.values()))

    def cluster(self, cluster_id: str) -> Json:
        with self._lock:
            if cluster_id not in self._clusters:
                raise not_found("cluster", cluster_id)
            return copy.deepcopy(self._clusters[cluster_id])

    # --- applications ------------------------------------------------------------------

    def list_apps(self, cluster_id: str | None = None) -> list[Json]:
        with self._lock:
            cluster_id = self._known_cluster(cluster_id)
            return [
                self._app_view(app)
                for app in self._apps.values()
                if app["cluster_id"] == cluster_id
            ]

    def get_app(self, cluster_id: str | None, app_id: str) -> Json:
        with self._lock:
            return self._app_view(self._app(cluster_id, app_id))

    def create_app(self, cluster_id: str | None, body: Any) -> Json:
        spec = application_spec(body)
        with self._lock:
            cluster_id = self._known_cluster(cluster_id)
            self._refuse_duplicate_name(cluster_id, spec["name"], None)
            app_id, now = self._new_id(), self._clock()
            self._apps[app_id] = {
                **spec,
                "id": app_id,
                "cluster_id": cluster_id,
                "control_plane_id": cluster_id,
                "status": NORMAL_STATUS,
                "created_at": now,
                "updated_at": now,
            }
            return self._app_view(self._apps[app_id])

    def replace_app(self, cluster_id: str | None, app_id: str, body: Any) -> Json:
        spec = application_spec(body)
        with self._lock:
            app = self._app(cluster_id, app_id)
            self._refuse_duplicate_name(app["cluster_id"], spec["name"], app_id)
            app.update(spec, updated_at=self._clock())
            return self._app_view(app)

    def delete_app(self, cluster_id: str | None, app_id: str) -> None:
        with self._lock:
            self._app(cluster_id, app_id)
            del self._apps[app_id]
            for table in (self._apis, self._canaries):
                for child_id in [key for key, child in table.items() if child["app_id"] == app_id]:
                    del table[child_id]

    def _known_cluster(self, cluster_id: str | None) -> str:
        cluster_id = cluster_id or self.cluster_id
        if cluster_id not in self._clusters:
            raise not_found("cluster", cluster_id)
        return cluster_id

    def _app(self, cluster_id: str | None, app_id: str) -> Json:
        """The stored app (not a copy); 404 when unknown or not in `cluster_id`."""
        self._known_cluster(cluster_id)
        app = self._apps.get(app_id)
        if app is None or (cluster_id is not None and app["cluster_id"] != cluster_id):
            raise not_found("application", app_id)
        return app

    def _refuse_duplicate_name(self, cluster_id: str, name: str, own_id: str | None) -> None:
        for other in self._apps.values():
            if (
                other["cluster_id"] == cluster_id
                and other["name"] == name
                and other["id"] != own_id
            ):
                raise bad_request(f"application name {name!r} is already used in this cluster")

    def _app_view(self, app: Json) -> Json:
        """A copy of the app with its read-only canary fields derived from the canaries."""
        view = copy.deepcopy(app)
        canaries = [c for c in self._canaries.values() if c["app_id"] == app["id"]]
        live_ids = [c["id"] for c in canaries if c["state"] == "in_progress"]
        versions = sorted(
            {c["canary_upstream_version"] for c in canaries if c["state"] != "finished"}
        )
        view["canary_release_id"] = live_ids or None
        view["canary_upstream_version_list"] = versions or None
        return view

    # --- APIs --------------------------------------------------------------------------

    def list_apis(self, app_id: str) -> list[Json]:
        with self._lock:
            self._app(None, app_id)
            return [copy.deepcopy(api) for api in self._apis.values() if api["app_id"] == app_id]

    def get_api(self, app_id: str, api_id: str) -> Json:
        with self._lock:
            return copy.deepcopy(self._child(self._apis, "API", app_id, api_id))

    def create_api(self, app_id: str, body: Any) -> Json:
        spec = api_spec(body)
        with self._lock:
            self._app(None, app_id)
            api_id, now = self._new_id(), self._clock()
            self._apis[api_id] = {
                **spec,
                "id": api_id,
                "app_id": app_id,
                "status": NORMAL_STATUS,
                "created_at": now,
                "updated_at": now,
            }
            return copy.deepcopy(self._apis[api_id])

    def replace_api(self, app_id: str, api_id: str, body: Any) -> Json:
        spec = api_spec(body)
        with self._lock:
            api = self._child(self._apis, "API", app_id, api_id)
            api.update(spec, updated_at=self._clock())
            return copy.deepcopy(api)

    def delete_api(self, app_id: str, api_id: str) -> None:
        with self._lock:
            self._child(self._apis, "API", app_id, api_id)
            del self._apis[api_id]

    def _child(self, table: dict[str, Json], kind: str, app_id: str, child_id: str) -> Json:
        """A stored API or canary of `app_id` (not a copy); 404 when unknown."""
        self._app(None, app_id)
        child = table.get(child_id)
        if child is None or child["app_id"] != app_id:
            raise not_found(kind, child_id)
        return child

    # --- canary releases ---------------------------------------------------------------

    def list_canaries(self, app_id: str) -> list[Json]:
        with self._lock:
            self._app(None, app_id)
            return [copy.deepcopy(c) for c in self._canaries.values() if c["app_id"] == app_id]

    def get_canary(self, app_id: str, canary_id: str) -> Json:
        with self._lock:
            return copy.deepcopy(self._child(self._canaries, "canary release", app_id, canary_id))

    def create_canary(self, app_id: str, body: Any) -> Json:
        with self._lock:
            app = self._app(None, app_id)
            spec = canary_spec(body, self._versions(app))
            self._refuse_second_live_canary(app_id, spec, None)
            canary_id, now = self._new_id(), self._clock()
            canary = {
                **spec,
                "id": canary_id,
                "app_id": app_id,
                "status": NORMAL_STATUS,
                "created_at": now,
                "updated_at": now,
            }
            self._canaries[canary_id] = canary
            self._apply_finish(app, canary, previous_state=None)
            return copy.deepcopy(canary)

    def replace_canary(self, app_id: str, canary_id: str, body: Any) -> Json:
        with self._lock:
            app = self._app(None, app_id)
            canary = self._child(self._canaries, "canary release", app_id, canary_id)
            spec = canary_spec(body, self._versions(app))
            self._refuse_second_live_canary(app_id, spec, canary_id)
            previous_state = canary["state"]
            canary.update(spec, updated_at=self._clock())
            self._apply_finish(app, canary, previous_state)
            return copy.deepcopy(canary)

    def delete_canary(self, app_id: str, canary_id: str) -> None:
        with self._lock:
            self._child(self._canaries, "canary release", app_id, canary_id)
            del self._canaries[canary_id]

    @staticmethod
    def _versions(app: Json) -> list[str]:
        return [entry.get("version") for entry in app.get("upstreams") or []]

    def _refuse_second_live_canary(self, app_id: str, spec: Json, own_id: str | None) -> None:
        if spec["state"] != "in_progress":
            return
        for other in self._canaries.values():
            if (
                other["app_id"] == app_id
                and other["state"] == "in_progress"
                and other["id"] != own_id
            ):
                raise bad_request(
                    f"canary release {other['id']} of this application is already in progress"
                )

    def _apply_finish(self, app: Json, canary: Json, previous_state: str | None) -> None:
        """Entering `finished` makes the canary's version the app's default upstream."""
        if canary["state"] == "finished" and previous_state != "finished":
            app["default_upstream_version"] = canary["canary_upstream_version"]
            app["updated_at"] = canary["updated_at"]

    # --- data plane --------------------------------------------------------------------

    def published_apps(self, host: str) -> list[PublishedApp]:
        """Copies of each published app (`active == 0`) serving `host`, its APIs and live canary."""
        with self._lock:
            result = []
            for app in self._apps.values():
                if app.get("active", 0) != 0 or not host_matches(app, host):
                    continue
                apis = [
                    copy.deepcopy(api) for api in self._apis.values() if api["app_id"] == app["id"]
                ]
                live = [
                    c
                    for c in self._canaries.values()
                    if c["app_id"] == app["id"] and c["state"] == "in_progress"
                ]
                result.append(
                    PublishedApp(copy.deepcopy(app), apis, copy.deepcopy(live[0]) if live else None)
                )
            return result
