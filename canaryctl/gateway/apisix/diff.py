"""The Admin API writes that take one application from what APISIX holds to what is desired.

Pure data in, pure data out; the backend performs the returned calls in order. The order
keeps every request routable between any two calls — a route never references an upstream
that is not there, and traffic only moves when the route changes, in one atomic write:

1. create or patch the upstreams the new route will use (the canary's before it gets a share);
2. create or patch the route (new default upstream, new or removed traffic-split rule);
3. delete the app's upstreams the route no longer uses.

So publishing an app is PUT upstream + PUT route, adding a canary PUT upstream + PATCH route,
a weight change one PATCH of the route, removing a canary PATCH route + DELETE upstream, and
promotion (route -> the canary's upstream, rule removed, in one PATCH) PATCH route + DELETE the
old stable's upstream. The old stable gets no request after promotion (it may already be
offline), and an app that already routes as desired yields no call at all.

A PUT is only planned for an id the caller checked is free (see the backend): APISIX's PUT
replaces whatever is there, and canaryctl never overwrites an object it did not create.
"""

from __future__ import annotations

from dataclasses import dataclass

from canaryctl.gateway.apisix import naming
from canaryctl.gateway.apisix.bodies import (
    ApisixObjects,
    Json,
    create_body,
    merge_patch,
    route_fields,
    spec_upstreams,
    upstream_fields,
)
from canaryctl.gateway.base import TerminalGatewayError
from canaryctl.gateway.model import AppSpec, AppState

PUT, PATCH, DELETE = "PUT", "PATCH", "DELETE"
ROUTES, UPSTREAMS = "routes", "upstreams"


@dataclass(frozen=True)
class Call:
    """One Admin API write: PUT (create), PATCH (merge patch) or DELETE of one object."""

    verb: str
    resource: str  # routes | upstreams
    object_id: str
    body: Json | None = None  # for PUT and PATCH


def calls_for(current: AppState | None, desired: AppSpec) -> list[Call]:
    """The calls that make APISIX route as `desired`, given `current` (with its `raw`)."""
    if current is not None and not current.owned:
        raise TerminalGatewayError(
            f"application {current.name!r}: the route in APISIX was not created by canaryctl; "
            "refusing to modify it"
        )
    return calls_for_objects(current.raw if current is not None else None, desired)


def calls_for_objects(observed: ApisixObjects | None, desired: AppSpec) -> list[Call]:
    """`calls_for` on the raw objects of an owned app (or none); also the basis of `conforms`."""
    observed = observed or ApisixObjects(desired.name)
    calls: list[Call] = []
    wanted = {naming.upstream_id(desired.name, u.key): u for u in spec_upstreams(desired)}
    for upstream_id, upstream in wanted.items():
        calls += _write(
            UPSTREAMS,
            upstream_id,
            observed.upstream(upstream_id),
            upstream_fields(desired, upstream),
        )
    calls += _write(ROUTES, naming.route_id(desired.name), observed.route, route_fields(desired))
    calls += [
        Call(DELETE, UPSTREAMS, str(u["id"]))
        for u in sorted(observed.upstreams, key=lambda u: str(u.get("id")))
        if u.get("id") not in wanted
    ]
    return calls


def _write(resource: str, object_id: str, held: Json | None, fields: Json) -> list[Call]:
    """Create the object, patch what differs, or nothing when it is as canaryctl writes it."""
    if held is None:
        return [Call(PUT, resource, object_id, create_body(fields))]
    patch = merge_patch(held, fields)
    return [Call(PATCH, resource, object_id, patch)] if patch else []


def creates(calls: list[Call]) -> list[Call]:
    """The calls that create an object (their ids must be checked free before)."""
    return [call for call in calls if call.verb == PUT]
