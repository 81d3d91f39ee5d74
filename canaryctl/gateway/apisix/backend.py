"""canaryctl's `Gateway` on a self-hosted APISIX: one route and its upstreams per application.

Thin by design: `diff.calls_for` decides which writes to make and in which order,
`state.app_state` reads the result; this module performs the calls and keeps the raw objects
current from the write answers, so `apply` costs no read in steady state (a weight change is
one PATCH). Before creating an object it looks at the id it is about to PUT, because a PUT
replaces whatever is there: an object canaryctl did not create is never overwritten (the app
is refused), and one it did create (an earlier attempt that landed unseen) is patched instead.
Like every backend it trusts the `AppState` it is given: after a failed write the caller reads
the app again before the next one (see `canaryctl.gateway.cache`).

Reads: `list_apps` pages through the routes and upstreams that have a `managed-by` label (a
request per 500 objects); `read_app` gets the route by id and lists the app's upstreams by
their name prefix (two requests).
"""

from __future__ import annotations

import dataclasses
import logging

from canaryctl import metrics
from canaryctl.gateway.apisix import naming
from canaryctl.gateway.apisix.bodies import MANAGED_BY, ApisixObjects, Json, is_owned
from canaryctl.gateway.apisix.client import AdminClient
from canaryctl.gateway.apisix.diff import (
    DELETE,
    PATCH,
    ROUTES,
    UPSTREAMS,
    Call,
    calls_for,
    calls_for_objects,
    creates,
)
from canaryctl.gateway.apisix.state import app_state, group
from canaryctl.gateway.apisix.transport import BACKEND
from canaryctl.gateway.base import TerminalGatewayError, TransientGatewayError
from canaryctl.gateway.model import AppSpec, AppState

log = logging.getLogger(__name__)


class ApisixGateway:
    """The applications canaryctl keeps in one APISIX cluster, through its Admin API."""

    name = BACKEND  # what the decision calls this backend (what it can express: matching.py)

    def __init__(self, client: AdminClient):
        self.client = client
        metrics.gateway_writes_total.labels(BACKEND)  # every series exists from the first scrape
        metrics.gateway_retries_total.labels(BACKEND)

    def __repr__(self) -> str:
        return f"ApisixGateway({self.client!r})"

    def list_apps(self) -> dict[str, AppState]:
        """Every application canaryctl keeps (and foreign routes at its ids), by name."""
        routes = self.client.list(ROUTES, label=MANAGED_BY)
        upstreams = self.client.list(UPSTREAMS, label=MANAGED_BY)
        return {name: app_state(objects) for name, objects in group(routes, upstreams).items()}

    def read_app(self, name: str) -> AppState | None:
        """The application `name` as APISIX holds it now, or None."""
        route = self.client.get(ROUTES, naming.route_id(name))
        if route is not None and not is_owned(route):
            return app_state(ApisixObjects(name, route))
        listed = self.client.list(UPSTREAMS, name=naming.upstream_name_filter(name))
        upstreams = tuple(u for u in listed if is_owned(u) and _named_for(u, name))
        if route is None and not upstreams:
            return None
        return app_state(ApisixObjects(name, route, upstreams))

    def apply(self, current: AppState | None, desired: AppSpec) -> AppState:
        """Make the owned application route as `desired` with the fewest writes (none if so)."""
        if current is not None and current.matches(desired):
            return current
        calls = calls_for(current, desired)
        objects = current.raw if current is not None else ApisixObjects(desired.name)
        if creates(calls):
            objects = self._claim(objects, creates(calls))
            calls = calls_for_objects(objects, desired)
        for call in calls:
            objects = self._perform(call, objects)
        log.debug("apisix applied %s with %d call(s)", desired.name, len(calls))
        return app_state(objects)

    def delete(self, current: AppState) -> None:
        """Delete the owned application: the route first (no traffic), then its upstreams."""
        if not current.owned:
            raise TerminalGatewayError(
                f"application {current.name!r}: the route in APISIX was not created by "
                "canaryctl; refusing to delete it"
            )
        objects: ApisixObjects = current.raw
        if objects.route is not None:
            self._remove(ROUTES, str(objects.route["id"]))
        for upstream in objects.upstreams:
            self._remove(UPSTREAMS, str(upstream["id"]))

    def _claim(self, objects: ApisixObjects, planned: list[Call]) -> ApisixObjects:
        """Look at every id about to be created (the route's first): free, or ours to patch."""
        found = []
        for call in sorted(planned, key=lambda c: c.resource != ROUTES):
            held = self.client.get(call.resource, call.object_id)
            if held is None:
                continue
            if not is_owned(held):
                raise TerminalGatewayError(
                    f"application {objects.name!r}: APISIX already has {call.resource[:-1]} "
                    f"{call.object_id!r}, not created by canaryctl; refusing to overwrite it"
                )
            found.append((call.resource, held))
        for resource, held in found:
            objects = _with(objects, resource, held)
        return objects

    def _perform(self, call: Call, objects: ApisixObjects) -> ApisixObjects:
        """Make one call; the objects as they are after it, from the call's answer."""
        if call.verb == DELETE:
            self._remove(call.resource, call.object_id)
            if call.resource == ROUTES:
                return dataclasses.replace(objects, route=None)
            kept = tuple(u for u in objects.upstreams if u.get("id") != call.object_id)
            return dataclasses.replace(objects, upstreams=kept)
        assert call.body is not None
        write = self.client.patch if call.verb == PATCH else self.client.put
        metrics.series(metrics.gateway_writes_total, BACKEND).inc()
        try:
            stored = write(call.resource, call.object_id, call.body)
        except TerminalGatewayError as error:
            if error.status != 404:
                raise
            raise TransientGatewayError(
                f"{error}; the application changed under canaryctl and will be read "
                "again before the next attempt"
            ) from error
        return _with(objects, call.resource, stored)

    def _remove(self, resource: str, object_id: str) -> None:
        """One delete; something already gone is deleted."""
        metrics.series(metrics.gateway_writes_total, BACKEND).inc()
        try:
            self.client.delete(resource, object_id)
        except TerminalGatewayError as error:
            if error.status != 404:
                raise


def _with(objects: ApisixObjects, resource: str, stored: Json) -> ApisixObjects:
    """`objects` with `stored` in place of the object of the same id."""
    if resource == ROUTES:
        return dataclasses.replace(objects, route=stored)
    others = tuple(u for u in objects.upstreams if u.get("id") != stored.get("id"))
    return dataclasses.replace(objects, upstreams=(*others, stored))


def _named_for(upstream: Json, app: str) -> bool:
    """True when the upstream's name starts with the app's route id (the filter is a regex)."""
    return str(upstream.get("name") or "").partition(" ")[0] == naming.route_id(app)
