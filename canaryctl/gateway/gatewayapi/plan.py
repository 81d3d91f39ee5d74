"""Which HTTPRoute writes take an application from what it holds to what is desired.

Pure, so every transition is a unit test. One server-side apply puts the whole route in
place (parent, host, rule and both weights at once: there is no in-between state on the
data plane); routes of the same application in other namespaces (left behind when the app
moved) are deleted after it.

`force`: an apply only ever carries the fields canaryctl owns. On a route canaryctl already
owns, `force=true` takes those fields back from whoever hand-edited them (that is the drift
correction). Creating a route is *not* forced: if a route of that name appeared meanwhile
under another field manager, the apiserver answers 409 instead of letting canaryctl take
over someone else's fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from canaryctl.gateway.base import TerminalGatewayError
from canaryctl.gateway.gatewayapi.route import (
    Json,
    members_elsewhere,
    route_body,
    route_namespace,
)
from canaryctl.gateway.gatewayapi.state import RouteView
from canaryctl.gateway.model import PARENT_FORMAT, AppSpec, AppState, ParentRef


@dataclass(frozen=True)
class Plan:
    """One apply into `namespace`, then the deletion of `stale` routes."""

    namespace: str
    body: Json
    force: bool  # the route exists and is canaryctl's: take its fields back
    stale: tuple[RouteView, ...]


def plan(current: AppState | None, desired: AppSpec, default_parent: ParentRef) -> Plan:
    """The writes that make the gateway route as `desired` (refusing what canaryctl must not)."""
    if current is not None:
        refuse_foreign(current, "modify")
    elsewhere = members_elsewhere(desired)
    namespace = route_namespace(desired)
    if elsewhere:
        raise TerminalGatewayError(
            f"{', '.join(elsewhere)} cannot be routed by an HTTPRoute in namespace {namespace}: "
            "the Gateway API backend routes only to Services in the route's own namespace "
            "(no ReferenceGrant is created)"
        )
    parent = parent_of(desired, default_parent)
    views: tuple[RouteView, ...] = current.raw if current is not None else ()
    in_place = [view for view in views if view.namespace == namespace]
    return Plan(
        namespace,
        route_body(desired, parent),
        force=bool(in_place),
        stale=tuple(view for view in views if view.namespace != namespace),
    )


def refuse_foreign(state: AppState, action: str) -> None:
    """Raise unless canaryctl created the app's routes."""
    if not state.owned:
        raise TerminalGatewayError(
            f"an HTTPRoute named {state.name} exists and was not created by canaryctl "
            f"(no app.kubernetes.io/managed-by=canaryctl label); refusing to {action} it"
        )


def parent_of(spec: AppSpec, default_parent: ParentRef) -> ParentRef:
    """The Gateway the app attaches to: the one its stable asks for, else the default."""
    if not spec.parent:
        return default_parent
    parent = ParentRef.parse(spec.parent)
    if parent is None:
        raise TerminalGatewayError(f"parent {spec.parent!r} is not {PARENT_FORMAT}")
    return parent
