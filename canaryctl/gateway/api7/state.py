"""Reading API7 objects back as the backend-neutral `AppState`.

The decision (`decision.decide`) sees only `AppState`, so this module must report exactly what
routes: the default upstream as stable, the live canary release's upstream and share (a paused
one routes 0 %), and `conforms` — defined as "planning the observed routing again yields no
call", so the verdict can never disagree with what `apply` would write (planned only when
first asked: `model.plans_nothing`).
"""

from __future__ import annotations

import functools

from canaryctl.gateway.api7.bodies import (
    IN_PROGRESS,
    Api7Objects,
    Json,
    canary_percent,
    is_live,
    is_owned,
    owner_of,
    rules_match,
    upstreams_by_version,
)
from canaryctl.gateway.api7.diff import calls_for_objects
from canaryctl.gateway.model import AppSpec, AppState, MatchTerm, Upstream, plans_nothing


def app_state(objects: Api7Objects) -> AppState:
    """The state of one application from its app, canaryctl APIs and canary releases."""
    app = objects.app
    upstreams = upstreams_by_version(app)
    default_version = app.get("default_upstream_version")
    stable = _upstream(upstreams.get(default_version))
    live = _live_canary(objects.canaries or ())
    canary, weight = None, 0
    match: tuple[MatchTerm, ...] | None = ()  # None: rules canaryctl never writes
    if live is not None and live.get("canary_upstream_version") != default_version:
        canary = _upstream(upstreams.get(live.get("canary_upstream_version")))
        if canary is not None:
            weight, match = _routed_percent(live), _routed_match(live)
    owned, owner = is_owned(app), owner_of(app)
    as_routed = None
    if stable is not None and match is not None:
        as_routed = AppSpec(app.get("name", ""), stable, canary, weight, owner, match=match)
    conforms = (
        owned
        and as_routed is not None
        and plans_nothing(functools.partial(calls_for_objects, objects, as_routed))
    )
    return AppState(
        name=app.get("name", ""),
        owned=owned,
        stable=stable,
        canary=canary,
        owner=owner,
        weight=weight,
        match=match or (),
        conforms=conforms,
        raw=objects,
    )


def _upstream(entry: Json | None) -> Upstream | None:
    """The neutral upstream of an app's upstream entry (its first target), if it has one."""
    targets = ((entry or {}).get("upstream") or {}).get("targets") or []
    if entry is None or not targets:
        return None
    return Upstream.from_key(
        entry["version"], targets[0].get("host", ""), int(targets[0].get("port") or 0)
    )


def _live_canary(canaries: tuple[Json, ...]) -> Json | None:
    """The canary release that routes (in progress), else a paused one, else none."""
    live = sorted((c for c in canaries if is_live(c)), key=lambda c: c.get("state") != IN_PROGRESS)
    return live[0] if live else None


def _routed_match(canary: Json | None) -> tuple[MatchTerm, ...] | None:
    """The predicate of an in-progress rule canary (() otherwise; None: not canaryctl's kind)."""
    if canary is None or canary.get("state") != IN_PROGRESS or canary.get("type") != "rule":
        return ()
    return rules_match(canary)


def _routed_percent(canary: Json | None) -> int:
    if canary is None or canary.get("state") != IN_PROGRESS or canary.get("type") != "percent":
        return 0
    return canary_percent(canary)
