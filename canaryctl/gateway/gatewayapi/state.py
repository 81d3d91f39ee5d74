"""Reading HTTPRoutes back as the backend-neutral `AppState`.

The watch keeps a slim, immutable `RouteView` per route (the informer's projection); the
state is computed from views, so the watch, a read and a write's answer all agree. Besides
the routing (backendRefs by position: the stable first, the canary second, the canary's share
from both weights), a view records:
- who else changed what canaryctl owns (`edited_by`, from `metadata.managedFields`): a hand
  edit, which `conforms=False` makes canaryctl restore with a DriftCorrected event;
- what the implementation says (`status.parents[].conditions`): a current-generation
  `Accepted` or `ResolvedRefs` that is False becomes `problem` / `problem_reason`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from canaryctl.gateway.gatewayapi.route import (
    APP_ANNOTATION,
    FIELD_MANAGER,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    OUR_ANNOTATIONS,
    OWNER_ANNOTATION,
    PARENT_ANNOTATION,
    SPEC_FIELDS,
    Json,
    canonical_spec,
    match_from,
    route_annotations,
    route_spec,
)
from canaryctl.gateway.model import AppSpec, AppState, MatchTerm, ParentRef, Upstream

PROBLEM_CONDITIONS = ("Accepted", "ResolvedRefs")


@dataclass(frozen=True)
class RouteView:
    """What canaryctl keeps of one HTTPRoute."""

    namespace: str
    name: str
    uid: str
    resource_version: str
    owned: bool
    app: str  # the application annotation, else the route's name
    annotations: tuple[tuple[str, str], ...]  # canaryctl's annotations, as stored
    spec: str  # the spec's JSON (sorted keys): read with `spec_json()`
    edited_by: tuple[str, ...] = ()
    problem: str = ""
    problem_reason: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def annotation(self, key: str) -> str:
        return dict(self.annotations).get(key, "")

    def spec_json(self) -> Json:
        return json.loads(self.spec)


def view_of(route: Mapping[str, Any]) -> RouteView:
    """Project an HTTPRoute as the API returns it (a JSON dict)."""
    meta = route.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    spec = route.get("spec") or {}
    problem, reason = route_problem(route)
    return RouteView(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        resource_version=meta.get("resourceVersion", ""),
        owned=labels.get(MANAGED_BY_LABEL) == MANAGED_BY,
        app=annotations.get(APP_ANNOTATION) or meta.get("name", ""),
        annotations=tuple(sorted((k, v) for k, v in annotations.items() if k in OUR_ANNOTATIONS)),
        spec=json.dumps(spec, sort_keys=True, separators=(",", ":")),
        edited_by=editors(meta.get("managedFields") or []),
        problem=problem,
        problem_reason=reason,
    )


def editors(managed_fields: Iterable[Json]) -> tuple[str, ...]:
    """Field managers other than canaryctl's apply that own any field canaryctl owns."""
    found = set()
    for entry in managed_fields:
        if entry.get("subresource") or (
            entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply"
        ):
            continue
        if _owns_ours(entry.get("fieldsV1") or {}):
            found.add(str(entry.get("manager") or "(unnamed)"))
    return tuple(sorted(found))


def _owns_ours(fields: Json) -> bool:
    spec = fields.get("f:spec") or {}
    meta = fields.get("f:metadata") or {}
    labels, annotations = meta.get("f:labels") or {}, meta.get("f:annotations") or {}
    return (
        any(f"f:{name}" in spec for name in SPEC_FIELDS)
        or f"f:{MANAGED_BY_LABEL}" in labels
        or any(f"f:{key}" in annotations for key in OUR_ANNOTATIONS)
    )


def route_problem(route: Mapping[str, Any]) -> tuple[str, str]:
    """(message, reason) of the first current-generation Accepted/ResolvedRefs that is False."""
    generation = (route.get("metadata") or {}).get("generation")
    for parent in (route.get("status") or {}).get("parents") or []:
        for condition in parent.get("conditions") or []:
            if (
                condition.get("type") in PROBLEM_CONDITIONS
                and condition.get("status") == "False"
                and condition.get("observedGeneration", generation) == generation
            ):
                ref = parent.get("parentRef") or {}
                where = "/".join(p for p in (ref.get("namespace"), ref.get("name")) if p)
                reason = str(condition.get("reason") or "")
                message = (
                    f"{parent.get('controllerName', 'the Gateway implementation')} reports "
                    f"{condition['type']}=False ({reason}) on parent {where}: "
                    f"{condition.get('message') or 'no message'}"
                )
                return message, reason
    return "", ""


def app_state(
    views: tuple[RouteView, ...], default_parent: ParentRef, cluster_domain: str
) -> AppState:
    """The state of one application from its routes (canaryctl's first, then by namespace)."""
    view = views[0]
    rules = view.spec_json().get("rules") or []
    match = _routed_match(rules)
    weighted = rules[-1] if len(rules) in (1, 2) else {}
    refs = weighted.get("backendRefs") or []
    upstreams = [_upstream(ref, view.namespace, cluster_domain) for ref in refs[:2]]
    stable = upstreams[0] if upstreams else None
    canary = upstreams[1] if len(upstreams) > 1 else None
    weight = _canary_share(refs) if canary is not None else 0
    owner, parent = view.annotation(OWNER_ANNOTATION), view.annotation(PARENT_ANNOTATION)
    state = AppState(
        name=view.app,
        owned=view.owned,
        stable=stable,
        canary=canary,
        weight=weight,
        owner=owner,
        parent=parent,
        parent_recorded=True,
        problem=view.problem,
        problem_reason=view.problem_reason,
        edited_by=view.edited_by,
        match=match or (),
        raw=views,
    )
    conforms = len(views) == 1 and _as_written(view, state, default_parent)
    return replace(state, conforms=conforms)


def _as_written(view: RouteView, state: AppState, default_parent: ParentRef) -> bool:
    """Whether the route is exactly what canaryctl would write for the routing it holds."""
    if not view.owned or view.edited_by or state.stable is None:
        return False
    parent = ParentRef.parse(state.parent) if state.parent else default_parent
    if parent is None or view.name != view.app:
        return False
    spec = AppSpec(
        view.app,
        state.stable,
        state.canary,
        state.weight,
        state.owner,
        state.parent,
        match=state.match,
    )
    expected = route_spec(spec, parent)
    return canonical_spec(view.spec_json(), view.namespace) == canonical_spec(
        expected, view.namespace
    ) and dict(view.annotations) == route_annotations(spec)


def _routed_match(rules: list[Json]) -> tuple[MatchTerm, ...] | None:
    """The canary's predicate: a first rule with one match `match_of` wrote (() without one)."""
    if len(rules) != 2:
        return ()
    matches = rules[0].get("matches") or []
    return match_from(matches[0]) if len(matches) == 1 else None


def _upstream(ref: Json, namespace: str, cluster_domain: str) -> Upstream:
    ns, service = ref.get("namespace") or namespace, str(ref.get("name", ""))
    return Upstream(ns, service, f"{service}.{ns}.svc.{cluster_domain}", int(ref.get("port") or 0))


def _canary_share(refs: list[Json]) -> int:
    """The second backendRef's share of requests, in percent (rounded)."""
    stable, canary = (max(0, int(ref.get("weight", 1))) for ref in refs[:2])
    total = stable + canary
    return round(100 * canary / total) if total else 0
