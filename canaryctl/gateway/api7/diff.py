"""The API7 calls that take one application from what the gateway holds to what is desired.

Pure data in, pure data out, so every transition is unit-tested without HTTP; the backend
only performs the returned calls in order. The order is chosen so that, between any two
calls, requests go only to upstreams that routed before or that are wanted after — never to
a retiring upstream that had no traffic (the stable after a canary reached 100 %, which the
user may already have taken offline) and never through a rule whose upstream is gone:

1. delete canary releases that hold an upstream the new app drops (their share falls back
   to the default upstream, which exists before and after);
2. replace the app (new default, added and dropped upstreams);
3. create / replace / delete the match-everything API;
4. delete the remaining canary releases that are not kept — on promotion this is the old
   canary, whose version is by now the default, so its share stays on the same upstream;
5. create or replace the one kept canary release (always `in_progress`).

When step 1 would hand traffic to a default that must not get it (the canary routes 100 %
and the default is being replaced), the app is first replaced with the new default *plus*
the retiring canary's upstream, then the canary release is deleted, then the app is
replaced again without that upstream ("bridge").

So adding a canary is PUT app + POST canary, removing it DELETE canary + PUT app, a weight
change one PUT canary, promotion PUT app + DELETE canary, and an app that already routes
as desired yields no call at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from canaryctl.gateway.api7.bodies import (
    IN_PROGRESS,
    Api7Objects,
    Json,
    api_body,
    api_managed_fields,
    app_body,
    app_managed_fields,
    canary_body,
    canary_percent,
    canary_routes_as,
    is_live,
)
from canaryctl.gateway.base import TerminalGatewayError
from canaryctl.gateway.model import AppSpec, AppState

POST, PUT, DELETE = "POST", "PUT", "DELETE"
APP, API, CANARY = "app", "api", "canary"


@dataclass(frozen=True)
class Call:
    """One API7 write. APIs and canaries live under the app, whose id the backend supplies."""

    verb: str  # POST | PUT | DELETE
    kind: str  # app | api | canary
    object_id: str | None = None  # for PUT and DELETE
    body: Json | None = None  # for POST and PUT


def calls_for(current: AppState | None, desired: AppSpec) -> list[Call]:
    """The calls that make the gateway route as `desired`, given `current` (with its `raw`)."""
    if current is None:
        return calls_for_objects(None, desired)
    if not current.owned:
        raise TerminalGatewayError(
            f"application {current.name!r} exists in API7 Cloud but was not created by "
            "canaryctl; refusing to modify it"
        )
    return calls_for_objects(current.raw, desired)


def calls_for_objects(observed: Api7Objects | None, desired: AppSpec) -> list[Call]:
    """`calls_for` on the raw objects of an owned app (or none); also the basis of `conforms`."""
    if observed is None:
        return _create_calls(desired)
    new_app = app_body(desired, observed.app)
    kept = _kept_canary(observed.canaries or (), desired)
    retiring = [c for c in observed.canaries or () if c is not kept]
    new_versions = {entry["version"] for entry in new_app["upstreams"]}
    blocking = [
        c for c in retiring if is_live(c) and c.get("canary_upstream_version") not in new_versions
    ]
    if blocking and not _default_may_route(observed, desired):
        return _bridge_calls(observed, new_app, blocking, retiring, kept, desired)
    calls = [Call(DELETE, CANARY, c["id"]) for c in blocking]
    if app_managed_fields(observed.app) != app_managed_fields(new_app):
        calls.append(Call(PUT, APP, observed.app["id"], new_app))
    calls += _api_calls(observed.apis)
    calls += [Call(DELETE, CANARY, c["id"]) for c in retiring if c not in blocking]
    calls += _canary_calls(kept, desired)
    return calls


def _default_may_route(observed: Api7Objects, desired: AppSpec) -> bool:
    """May the current default upstream receive all requests for a moment?"""
    default = observed.app.get("default_upstream_version")
    wanted = {desired.stable.key} | (
        {desired.canary.key} if desired.canary and desired.weight else set()
    )
    routing = [c for c in observed.canaries or () if c.get("state") == IN_PROGRESS]
    routes_now = not any(c.get("type") == "percent" and canary_percent(c) == 100 for c in routing)
    return default in wanted or routes_now


def _bridge_calls(
    observed: Api7Objects,
    new_app: Json,
    blocking: list[Json],
    retiring: list[Json],
    kept: Json | None,
    desired: AppSpec,
) -> list[Call]:
    """Switch the default while the retiring canaries still have their upstreams, then drop them."""
    held = {c.get("canary_upstream_version") for c in blocking}
    bridge = {
        **new_app,
        "upstreams": new_app["upstreams"]
        + [entry for entry in observed.app.get("upstreams") or [] if entry.get("version") in held],
    }
    app_id = observed.app["id"]
    return [
        Call(PUT, APP, app_id, bridge),
        *_api_calls(observed.apis),
        *[Call(DELETE, CANARY, c["id"]) for c in retiring],
        Call(PUT, APP, app_id, new_app),
        *_canary_calls(kept, desired),
    ]


def _create_calls(desired: AppSpec) -> list[Call]:
    calls = [Call(POST, APP, body=app_body(desired)), Call(POST, API, body=api_body())]
    if desired.canary is not None:
        calls.append(Call(POST, CANARY, body=canary_body(desired)))
    return calls


def _kept_canary(canaries: tuple[Json, ...], desired: AppSpec) -> Json | None:
    """The live canary release for the desired canary version, in-progress ones first."""
    if desired.canary is None:
        return None
    candidates = [
        c for c in canaries if is_live(c) and c.get("canary_upstream_version") == desired.canary.key
    ]
    candidates.sort(key=lambda c: c.get("state") != IN_PROGRESS)
    return candidates[0] if candidates else None


def _api_calls(apis: tuple[Json, ...] | None) -> list[Call]:
    """Exactly one canaryctl API as canaryctl writes it: keep a conforming one, drop duplicates.
    APIs not read since a restart (None) are taken as canaryctl wrote them."""
    if apis is None:
        return []
    if not apis:
        return [Call(POST, API, body=api_body())]
    conforming = [api for api in apis if _api_conforms(api)]
    kept = conforming[0] if conforming else apis[0]
    calls = [Call(DELETE, API, api["id"]) for api in apis if api is not kept]
    if not conforming:
        calls.append(Call(PUT, API, kept["id"], api_body(kept)))
    return calls


def _api_conforms(api: Json) -> bool:
    return api_managed_fields(api) == api_managed_fields(api_body(api))


def _canary_calls(kept: Json | None, desired: AppSpec) -> list[Call]:
    if desired.canary is None:
        return []
    if kept is None:
        return [Call(POST, CANARY, body=canary_body(desired))]
    if canary_routes_as(kept, desired):
        return []
    return [Call(PUT, CANARY, kept["id"], canary_body(desired, kept))]
