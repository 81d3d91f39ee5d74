"""canaryctl's `Gateway` on API7 Cloud: applications, their match-everything API and canary.

Thin by design: `diff.calls_for` decides which calls to make and in which order,
`state.app_state` reads the result; this module only performs calls and keeps the raw objects
current from the write responses, so `apply` costs no read. Like every backend it trusts the
`AppState` it is given: after a failed write the caller reads the app again before the next
one (see `canaryctl.gateway.cache`), so a retry never creates a second API or canary.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from canaryctl import metrics
from canaryctl.gateway.api7.bodies import Api7Objects, Json, is_owned
from canaryctl.gateway.api7.client import Api7Client
from canaryctl.gateway.api7.diff import API, APP, DELETE, POST, Call, calls_for
from canaryctl.gateway.api7.state import app_state
from canaryctl.gateway.api7.transport import BACKEND
from canaryctl.gateway.base import TerminalGatewayError, TransientGatewayError
from canaryctl.gateway.model import AppSpec, AppState

log = logging.getLogger(__name__)

# per-app reads in flight when reading the whole cluster: modest, for API7 Cloud rate limits
READ_CONCURRENCY = 4


class Api7Gateway:
    """The applications of one API7 Cloud cluster, as canaryctl sees and writes them."""

    name = BACKEND  # what the decision calls this backend (what it can express: matching.py)

    def __init__(self, client: Api7Client, cluster_id: str):
        self.client = client
        self.cluster_id = cluster_id

    def __repr__(self) -> str:
        return f"Api7Gateway({self.client!r}, cluster_id={self.cluster_id!r})"

    def list_apps(self) -> dict[str, AppState]:
        """Every application of the cluster by name; owned ones with their APIs and canaries."""
        return self._read_all(self._state_of)

    def list_apps_to_resume(self) -> dict[str, AppState]:
        """`list_apps` as a restart reads it: the app list, and one more read per owned app.

        The app list already says which canary releases are live (`canary_release_id`,
        `canary_upstream_version_list`, derived by the server), so an owned app's canary
        releases are read only when one is live: they alone hold its weight and match. Its
        API is then taken as canaryctl wrote it (canaryctl creates the API before any canary);
        an app without a live canary has its API read instead, so an app whose API was never
        created (a crash in between) gets it. What this read cannot see (a hand-edited API
        beside a live canary, finished canary releases) waits for the next full read.
        """
        return self._read_all(self._resumed_state_of)

    def read_app(self, name: str) -> AppState | None:
        """The application named `name` as the gateway holds it now, or None."""
        app = self.client.find_app(self.cluster_id, name)
        return None if app is None else self._state_of(app)

    def apply(self, current: AppState | None, desired: AppSpec) -> AppState:
        """Make the owned app route as `desired` with the fewest writes (none if it does)."""
        if current is not None and current.matches(desired):
            return current
        calls = calls_for(current, desired)
        objects: Api7Objects | None = current.raw if current is not None else None
        for call in calls:
            objects = self._perform(call, objects)
        log.debug("api7 applied %s with %d call(s)", desired.name, len(calls))
        assert objects is not None  # without a current app, calls_for() creates one
        return app_state(objects)

    def delete(self, current: AppState) -> None:
        """Delete the owned application: its canary releases, its APIs, then the app."""
        _refuse_foreign(current)
        objects: Api7Objects = current.raw
        app_id = objects.app["id"]
        apis = self._apis(app_id) if objects.apis is None else objects.apis  # not read at start
        canaries = self._canaries(app_id) if objects.canaries is None else objects.canaries
        for canary in canaries:
            self._remove(self.client.delete_canary, app_id, canary["id"])
        for api in apis:
            self._remove(self.client.delete_api, app_id, api["id"])
        self._remove(self.client.delete_app, self.cluster_id, app_id)

    def _read_all(self, state_of: Callable[[Json], AppState]) -> dict[str, AppState]:
        """The app list, then `state_of` each app, READ_CONCURRENCY apps at a time: a cluster's
        per-app reads add up to seconds at an Internet round trip each. The first failure
        is raised once the reads in flight end; the ones not yet started are dropped."""
        apps = self.client.list_apps(self.cluster_id)
        with ThreadPoolExecutor(READ_CONCURRENCY, thread_name_prefix="api7-read") as pool:
            try:
                states = list(pool.map(state_of, apps))
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
        return {app["name"]: state for app, state in zip(apps, states, strict=True)}

    def _state_of(self, app: Json) -> AppState:
        if not is_owned(app):
            return app_state(Api7Objects(app))
        return app_state(Api7Objects(app, self._apis(app["id"]), self._canaries(app["id"])))

    def _resumed_state_of(self, app: Json) -> AppState:
        if not is_owned(app):
            return app_state(Api7Objects(app))
        if app.get("canary_release_id") or app.get("canary_upstream_version_list"):
            return app_state(Api7Objects(app, None, self._canaries(app["id"])))
        return app_state(Api7Objects(app, self._apis(app["id"]), None))

    def _apis(self, app_id: str) -> tuple[Json, ...]:
        return tuple(api for api in self.client.list_apis(app_id) if is_owned(api))

    def _canaries(self, app_id: str) -> tuple[Json, ...]:
        return tuple(self.client.list_canaries(app_id))

    def _perform(self, call: Call, objects: Api7Objects | None) -> Api7Objects:
        """Make one call; the objects as they are after it, from the call's response."""
        if call.kind == APP:
            return self._perform_on_app(call, objects)
        assert objects is not None  # calls_for() puts the app first
        app_id = objects.app["id"]
        create, replace, delete = self._child_calls(call.kind)
        children = (objects.apis if call.kind == API else objects.canaries) or ()
        if call.verb == POST:
            children = (*children, self._write(create, app_id, call.body))
        elif call.verb == DELETE:
            self._remove(delete, app_id, call.object_id)
            children = tuple(c for c in children if c["id"] != call.object_id)
        else:
            updated = self._write(replace, app_id, call.object_id, call.body)
            children = tuple(updated if c["id"] == call.object_id else c for c in children)
        if call.kind == API:
            return dataclasses.replace(objects, apis=children)
        return dataclasses.replace(objects, canaries=children)

    def _perform_on_app(self, call: Call, objects: Api7Objects | None) -> Api7Objects:
        if call.verb == POST:
            app = self._write(self.client.create_app, self.cluster_id, call.body)
            if not is_owned(app):
                raise TerminalGatewayError(
                    f"application {app.get('name')!r} appeared in API7 Cloud without "
                    "canaryctl's label; refusing to modify it"
                )
            return Api7Objects(app)
        assert objects is not None  # only an app that was read is replaced
        app = self._write(self.client.replace_app, self.cluster_id, call.object_id, call.body)
        return dataclasses.replace(objects, app=app)

    def _child_calls(self, kind: str) -> tuple[Callable, Callable, Callable]:
        client = self.client
        if kind == API:
            return client.create_api, client.replace_api, client.delete_api
        return client.create_canary, client.replace_canary, client.delete_canary

    @staticmethod
    def _write(method: Callable, *args: object) -> Json:
        """One create or replace; a 404 means our view is outdated, which a fresh read fixes."""
        metrics.series(metrics.gateway_writes_total, BACKEND).inc()
        try:
            return method(*args)
        except TerminalGatewayError as error:
            if error.status != 404:
                raise
            raise TransientGatewayError(
                f"{error}; the application changed under canaryctl and will be read "
                "again before the next attempt"
            ) from error

    @staticmethod
    def _remove(method: Callable, *args: object) -> None:
        """One delete; something already gone is deleted."""
        metrics.series(metrics.gateway_writes_total, BACKEND).inc()
        try:
            method(*args)
        except TerminalGatewayError as error:
            if error.status != 404:
                raise


def _refuse_foreign(state: AppState) -> None:
    if not state.owned:
        raise TerminalGatewayError(
            f"application {state.name!r} exists in API7 Cloud but was not created by "
            "canaryctl; refusing to delete it"
        )
