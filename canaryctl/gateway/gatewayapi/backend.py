"""canaryctl's `Gateway` on the Gateway API: one HTTPRoute per application, weights per rule.

The backend watches the routes it writes (label-selected, in the watched namespaces) with
the same list/watch machinery as the Service informer, so:
- `list_apps` (start-up, resync) answers from that watch: no read per application;
- a change canaryctl did not make — a hand edit, the implementation's status — is told to
  the controller at once through `start(notify)`; the controller then reads the app again
  (`read_app`) and reconciles, which reverts a hand edit within milliseconds. Not told:
  changes that carry the resourceVersion of canaryctl's own write, and routes that are
  exactly as canaryctl writes them without a problem (nothing to do about those).
`read_app` is an authoritative read (one list by name, whoever created the route), so a
route of the same name canaryctl did not create shows up as a foreign app; such names are
remembered and read again at every `list_apps`, so a resync keeps reporting the conflict.

Routes can only reach Services of their own namespace here (`cross_namespace_members`): the
backend creates no ReferenceGrant.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence

from canaryctl.cache import ObjectStore
from canaryctl.gateway.base import TransientGatewayError
from canaryctl.gateway.gatewayapi.client import BACKEND, RouteClient
from canaryctl.gateway.gatewayapi.plan import Plan, plan, refuse_foreign
from canaryctl.gateway.gatewayapi.route import SELECTOR, route_name
from canaryctl.gateway.gatewayapi.state import RouteView, app_state, view_of
from canaryctl.gateway.model import AppSpec, AppState, ParentRef
from canaryctl.informer import Informer

log = logging.getLogger(__name__)
Notify = Callable[[str], None]


class GatewayApiGateway:
    """The HTTPRoutes canaryctl keeps for its applications, attached to `default_parent`."""

    name = BACKEND  # what the decision calls this backend (what it can express: matching.py)
    cross_namespace_members = False  # a member must live in its route's namespace

    def __init__(
        self,
        client: RouteClient,
        default_parent: ParentRef,
        namespaces: Sequence[str] | None = None,
        cluster_domain: str = "cluster.local",
        sync_timeout: float = 60.0,
        **watch_options: object,
    ):
        self.client, self.default_parent = client, default_parent
        self.namespaces = list(namespaces) if namespaces else None
        self.cluster_domain, self.sync_timeout = cluster_domain, sync_timeout
        self._notify: Notify | None = None
        self._lock = threading.Lock()
        self._own_versions: dict[str, str] = {}  # route key -> resourceVersion canaryctl wrote
        self._deleting: set[str] = set()  # route keys canaryctl is deleting
        self._foreign: set[str] = set()  # app names held by routes canaryctl did not create
        self.routes: ObjectStore[RouteView] = ObjectStore()
        self.informer: Informer[RouteView] = Informer(
            lambda scope: client.list_request(scope, label_selector=SELECTOR),
            view_of,
            self.routes,
            self._route_changed,
            self.namespaces,
            kind="route",
            **watch_options,  # type: ignore[arg-type]
        )

    def __repr__(self) -> str:
        return f"GatewayApiGateway({self.client!r}, parent={str(self.default_parent)!r})"

    # watching (the optional part of the Gateway protocol) -------------------------------------

    def start(self, notify: Notify) -> None:
        """Start watching canaryctl's routes; `notify(app)` whenever one changes behind us."""
        self._notify = notify
        self.informer.start()

    def has_synced(self) -> bool:
        return self.informer.has_synced()

    def stop(self) -> None:
        self.informer.stop()

    # the Gateway protocol ----------------------------------------------------------------------

    def list_apps(self) -> dict[str, AppState]:
        """Every application canaryctl's routes hold (from the watch), and known foreign ones."""
        if not self.informer.wait_for_sync(self.sync_timeout):
            raise TransientGatewayError("the HTTPRoute watch has not listed the routes yet")
        by_app: dict[str, list[RouteView]] = defaultdict(list)
        for view in self.routes.list():
            by_app[view.app].append(view)
        apps = {app: self._state(views) for app, views in by_app.items()}
        with self._lock:
            foreign = sorted(self._foreign - set(apps))
        for name in foreign:
            state = self.read_app(name)
            if state is not None:
                apps[name] = state
        return apps

    def read_app(self, name: str) -> AppState | None:
        """The application's routes as the apiserver holds them now (ours first), or None."""
        found = [
            view_of(route) for scope in self._scopes() for route in self.client.named(scope, name)
        ]
        owned = [view for view in found if view.owned and view.app == name]
        with self._lock:
            if owned or not found:
                self._foreign.discard(name)
            else:
                self._foreign.add(name)
        if owned:
            return self._state(owned)
        return self._state(found) if found else None

    def apply(self, current: AppState | None, desired: AppSpec) -> AppState:
        """Make the app's route route as `desired` with one apply (none if it already does)."""
        if current is not None and current.matches(desired):
            return current
        writes = plan(current, desired, self.default_parent)
        name = route_name(desired.name)
        if not writes.force:
            writes = self._check_unclaimed(writes, current, desired)
        stored = view_of(self.client.apply(writes.namespace, name, writes.body, writes.force))
        self._remember_write(stored)
        for stale in writes.stale:
            self._delete(stale)
        return self._state([stored])

    def delete(self, current: AppState) -> None:
        """Delete the app's routes (only canaryctl's: `plan` refuses foreign ones)."""
        refuse_foreign(current, "delete")
        for view in current.raw or ():
            self._delete(view)

    # internals -----------------------------------------------------------------------------------

    def _check_unclaimed(self, writes: Plan, current: AppState | None, desired: AppSpec) -> Plan:
        """Before creating: a route of that name may exist unseen (foreign, or ours unwatched)."""
        existing = self.client.get(writes.namespace, route_name(desired.name))
        if existing is None:
            return writes
        view = view_of(existing)
        state = self._state([view, *((current.raw or ()) if current else ())])
        return plan(state, desired, self.default_parent)  # foreign: raises; ours: forced

    def _delete(self, view: RouteView) -> None:
        with self._lock:
            self._deleting.add(view.key)
        self.client.delete(view.namespace, view.name, view.uid)

    def _remember_write(self, view: RouteView) -> None:
        with self._lock:
            self._own_versions[view.key] = view.resource_version

    def _state(self, views: Sequence[RouteView]) -> AppState:
        return app_state(tuple(views), self.default_parent, self.cluster_domain)

    def _worth_a_look(self, old: RouteView | None, new: RouteView) -> bool:
        """A route that is not as canaryctl writes it, or has a problem (or just lost one).

        A conforming route without problems needs nothing, whoever wrote it: this also covers
        canaryctl's own write when its watch event overtakes the write's answer.
        """
        state = self._state([new])
        if not state.conforms or state.problem:
            return True
        before = self._state([old]) if old is not None else None
        return before is not None and (not before.conforms or bool(before.problem))

    def _scopes(self) -> list[str | None]:
        return list(self.namespaces) if self.namespaces else [None]

    def _route_changed(self, old: RouteView | None, new: RouteView | None) -> None:
        """Informer handler: tell the controller about changes canaryctl did not make."""
        if self._notify is None or not self.informer.has_synced():
            return  # the initial list: the controller looks at every app at start anyway
        view = new or old
        assert view is not None
        with self._lock:
            if new is not None and self._own_versions.get(new.key) == new.resource_version:
                return
            if new is None:
                self._own_versions.pop(view.key, None)
                if view.key in self._deleting:
                    self._deleting.discard(view.key)
                    return
        if new is not None and not self._worth_a_look(old, new):
            return
        log.info("route changed outside canaryctl", extra={"app": view.app, "route": view.key})
        self._notify(view.app)


__all__ = ["BACKEND", "GatewayApiGateway"]
