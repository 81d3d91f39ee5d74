"""Reading APISIX objects back as the backend-neutral `AppState`, and grouping listed objects.

The decision (`decision.decide`) sees only `AppState`, so this module reports exactly what
routes: the route's upstream as the stable, the traffic-split rule's upstream and its share of
the weights as the canary (a rule with a `match` takes no share of ordinary traffic), and
`conforms` — defined as "planning the observed routing again yields no call", so the verdict can
never disagree with what `apply` would write (planned only when first asked: `model.plans_nothing`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from canaryctl.gateway.apisix import naming
from canaryctl.gateway.apisix.bodies import (
    APP_LABEL,
    SPLIT,
    ApisixObjects,
    Json,
    is_owned,
    owner_of,
    upstream_of,
    vars_match,
)
from canaryctl.gateway.apisix.diff import calls_for_objects
from canaryctl.gateway.model import AppSpec, AppState, MatchTerm, plans_nothing


def app_state(objects: ApisixObjects) -> AppState:
    """The state of one application from its route and upstreams."""
    route = objects.route
    if route is None:  # only upstreams left: a create or delete that stopped half-way
        owner = next((owner_of(u) for u in objects.upstreams if owner_of(u)), "")
        return AppState(objects.name, True, None, None, 0, False, owner, raw=objects)
    owned, owner = is_owned(route), owner_of(route)
    stable = upstream_of(objects.upstream(route.get("upstream_id")))
    canary_id, weight, match = routed_split(route)
    canary = None
    if canary_id is not None and canary_id != route.get("upstream_id"):
        canary = upstream_of(objects.upstream(canary_id))
    weight = weight if canary is not None else 0
    match = match if canary is not None else ()
    as_routed = None
    if stable is not None and match is not None:
        as_routed = AppSpec(objects.name, stable, canary, weight, owner, match=match)
    conforms = (
        owned
        and as_routed is not None
        and plans_nothing(functools.partial(calls_for_objects, objects, as_routed))
    )
    return AppState(
        objects.name,
        owned,
        stable,
        canary,
        weight,
        conforms,
        owner,
        match=match or (),
        raw=objects,
    )


def routed_split(route: Json) -> tuple[str | None, int, tuple[MatchTerm, ...] | None]:
    """(canary upstream id, percent of ordinary requests it gets, its request predicate) from
    the route's traffic-split rules: the weighted rule is the last; a first rule with a
    `match` sends the requests it selects to the canary (None: a match canaryctl never wrote)."""
    conf = (route.get("plugins") or {}).get(SPLIT)
    if not isinstance(conf, dict):
        return None, 0, ()
    rules = conf.get("rules")
    if not rules or not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        return None, 0, ()
    match = _rule_match(rules[0]) if len(rules) == 2 else ()
    entries = [e for e in rules[-1].get("weighted_upstreams") or [] if isinstance(e, dict)]
    canary = next((e for e in entries if e.get("upstream_id") is not None), None)
    if canary is None:
        return None, 0, match
    total = sum(_weight(e) for e in entries)
    if rules[-1].get("match") or total == 0 or _disabled(conf):
        return str(canary["upstream_id"]), 0, match
    return str(canary["upstream_id"]), round(100 * _weight(canary) / total), match


def _rule_match(rule: Json) -> tuple[MatchTerm, ...] | None:
    """The predicate of a first traffic-split rule as `split_plugin` writes it."""
    matches = rule.get("match")
    if not isinstance(matches, list) or len(matches) != 1 or not isinstance(matches[0], dict):
        return None
    return vars_match(matches[0].get("vars"))


def _weight(entry: Json) -> int:
    weight = entry.get("weight", 1)  # traffic-split's schema default
    return weight if isinstance(weight, int) and weight > 0 else 0


def _disabled(conf: Json) -> bool:
    return bool((conf.get("_meta") or {}).get("disable"))


def group(routes: Iterable[Json], upstreams: Iterable[Json]) -> dict[str, ApisixObjects]:
    """Listed canaryctl routes and upstreams as the objects of each application, by name.

    A route belongs to the app its `desc` names when its id is that app's route id (else its
    first host is tried); an upstream to the app whose route id starts its `name`. Upstreams
    without a route keep their app if the app label names it exactly. What cannot be placed
    (hand-edited beyond recognition) is left alone.
    """
    owned_upstreams = [u for u in upstreams if is_owned(u)]
    by_route_id: dict[str, list[Json]] = {}
    for upstream in owned_upstreams:
        route_id = str(upstream.get("name") or "").partition(" ")[0]
        by_route_id.setdefault(route_id, []).append(upstream)
    apps: dict[str, ApisixObjects] = {}
    for route in routes:  # a route at an app's id without canaryctl's label: a foreign app
        name = _route_app(route)
        if name is not None:
            members = by_route_id.pop(str(route["id"]), []) if is_owned(route) else []
            apps[name] = ApisixObjects(name, route, tuple(members))
    for route_id, members in by_route_id.items():
        name = str((members[0].get("labels") or {}).get(APP_LABEL) or "")
        if name and naming.route_id(name) == route_id and name not in apps:
            apps[name] = ApisixObjects(name, None, tuple(members))
    return apps


def _route_app(route: Json) -> str | None:
    """The application a listed route was written for, if its id says so."""
    for candidate in (route.get("desc"), *(route.get("hosts") or [])[:1]):
        if isinstance(candidate, str) and naming.route_id(candidate) == route.get("id"):
            return candidate
    return None
