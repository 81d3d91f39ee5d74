"""canaryctl's `Gateway` on API7 Cloud: applications, their match-everything API and canary.

Thin by design: `diff.plan` decides which calls to make and in which order, `state.app_state`
reads the result; this module only performs calls and keeps the raw objects current from
the write responses, so `apply` costs no read.

One piece of memory makes it robust to a caller that retries with an outdated `AppState`
(a work queue retrying after `TransientGatewayError`): an application whose writes failed
midway is *suspect*, and the next `apply` or `delete` for it starts from a fresh read
instead of the caller's state — otherwise a retry could create a second API or canary, or
trip over a name that the failed attempt already created.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator

from canaryctl import metrics
from canaryctl.gateway.api7.bodies import Api7Objects, Json, is_owned
from canaryctl.gateway.api7.client import Api7Client
from canaryctl.gateway.api7.diff import API, APP, DELETE, POST, Call, plan
from canaryctl.gateway.api7.state import app_state
from canaryctl.gateway.api7.transport import BACKEND
from canaryctl.gateway.base import GatewayError, TerminalGatewayError, TransientGatewayError
from canaryctl.gateway.model import AppSpec, AppState

log = logging.getLogger(__name__)


class Api7Gateway:
    """The applications of one API7 Cloud cluster, as canaryctl sees and writes them."""

    def __init__(self, client: Api7Client, cluster_id: str):
        self.client = client
        self.cluster_id = cluster_id
        self._suspect: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Api7Gateway({self.client!r}, cluster_id={self.cluster_id!r})"

    def list_apps(self) -> dict[str, AppState]:
        """Every application of the cluster by name; owned ones with their APIs and canaries."""
        return {app["name"]: self._state_of(app) for app in self.client.list_apps(self.cluster_id)}

    def read_app(self, name: str) -> AppState | None:
        """The application named `name` as the gateway holds it now, or None."""
        app = self.client.find_app(self.cluster_id, name)
        return None if app is None else self._state_of(app)

    def apply(self, current: AppState | None, desired: AppSpec) -> AppState:
        """Make the owned application route as `desired` with the fewest writes (none if it does)."""
        current = self._fresh(current, desired.name)
        if current is not None and current.matches(desired):
            return current
        calls = plan(current, desired)
        objects = current.raw if current is not None else None
        with self._suspect_on_failure(desired.name):
            for call in calls:
                objects = self._perform(call, objects)
        log.debug("api7 applied %s with %d call(s)", desired.name, len(calls))
        return app_state(objects)

    def delete(self, current: AppState) -> None:
        """Delete the owned application: its canary releases, its APIs, then the app."""
        _refuse_foreign(current)
        fresh = self._fresh(current, current.name)
        if fresh is None:
            return
        _refuse_foreign(fresh)
        objects: Api7Objects = fresh.raw
        app_id = objects.app["id"]
        with self._suspect_on_failure(current.name):
            for canary in objects.canaries:
                self._remove(self.client.delete_canary, app_id, canary["id"])
            for api in objects.apis:
                self._remove(self.client.delete_api, app_id, api["id"])
            self._remove(self.client.delete_app, self.cluster_id, app_id)

    def _state_of(self, app: Json) -> AppState:
        if not is_owned(app):
            return app_state(Api7Objects(app))
        apis = tuple(api for api in self.client.list_apis(app["id"]) if is_owned(api))
        return app_state(Api7Objects(app, apis, tuple(self.client.list_canaries(app["id"]))))

    def _fresh(self, current: AppState | None, name: str) -> AppState | None:
        """`current`, unless an earlier write for `name` failed midway: then a fresh read."""
        with self._lock:
            suspect = name in self._suspect
        if not suspect:
            return current
        fresh = self.read_app(name)
        with self._lock:
            self._suspect.discard(name)
        return fresh

    @contextlib.contextmanager
    def _suspect_on_failure(self, name: str) -> Iterator[None]:
        try:
            yield
        except GatewayError:
            with self._lock:
                self._suspect.add(name)
            raise

    def _perform(self, call: Call, objects: Api7Objects | None) -> Api7Objects:
        """Make one call; the objects as they are after it, from the call's response."""
        if call.kind == APP:
            return self._perform_on_app(call, objects)
        assert objects is not None  # plan() puts the app first
        app_id = objects.app["id"]
        create, replace, delete = self._child_calls(call.kind)
        children = objects.apis if call.kind == API else objects.canaries
        if call.verb == POST:
            children = (*children, self._write(create, app_id, call.body))
        elif call.verb == DELETE:
            self._remove(delete, app_id, call.object_id)
            children = tuple(c for c in children if c["id"] != call.object_id)
        else:
            updated = self._write(replace, app_id, call.object_id, call.body)
            children = tuple(updated if c["id"] == call.object_id else c for c in children)
        field = "apis" if call.kind == API else "canaries"
        return dataclasses.replace(objects, **{field: children})

    def _perform_on_app(self, call: Call, objects: Api7Objects | None) -> Api7Objects:
        if call.verb == POST:
            app = self._write(self.client.create_app, self.cluster_id, call.body)
            if not is_owned(app):
                raise TerminalGatewayError(
                    f"application {app.get('name')!r} appeared in API7 Cloud without "
                    "canaryctl's label; refusing to modify it"
                )
            return Api7Objects(app)
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
        metrics.gateway_writes_total.labels(BACKEND).inc()
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
        metrics.gateway_writes_total.labels(BACKEND).inc()
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
