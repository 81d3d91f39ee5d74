"""What canaryctl writes to API7 Cloud, as plain JSON-shaped dicts, and how it compares them.

The diff, the state parser and the backend must agree on one definition of "the object as
canaryctl writes it"; this module is that definition. Each builder starts from the object
the gateway holds (so fields canaryctl does not manage, such as plugins or an upstream's
timeouts tuned in the console, survive a PUT) and overwrites only the managed fields; each
`*_managed_fields` projects an object onto its managed fields so two objects can be compared
with `==`. Everything here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from canaryctl.gateway.model import (
    NAMESPACE_LABEL_PREFIX,
    OWNER_LABEL,
    AppSpec,
    MatchTerm,
    Upstream,
)

API_NAME = "canaryctl"  # the one match-everything API canaryctl creates in an app
CANARY_NAME = "canaryctl"  # the one canary release canaryctl creates in an app
IN_PROGRESS, PAUSED, FINISHED = "in_progress", "paused", "finished"

# Set by the server; never sent back on PUT (the id travels in the path).
_SERVER_MANAGED = (
    "id",
    "status",
    "created_at",
    "updated_at",
    "control_plane_id",
    "cluster_id",
    "app_id",
    "canary_release_id",
    "canary_upstream_version_list",
)

Json = dict[str, Any]


@dataclass(frozen=True)
class Api7Objects:
    """The API7 objects behind one application: the `raw` of an `AppState`.

    `apis` are only those carrying canaryctl's label; `canaries` are all canary releases of
    the app (a canary release has no labels, and inside an owned app they are canaryctl's).
    None: not read, by the read a restart makes (`Api7Gateway.list_apps_to_resume`): APIs
    are then taken as canaryctl wrote them, and canary releases are known not to be live.
    Treat the dicts as read-only.
    """

    app: Json
    apis: tuple[Json, ...] | None = field(default=())
    canaries: tuple[Json, ...] | None = field(default=())


def is_owned(obj: Json) -> bool:
    """True when the object carries canaryctl's ownership label."""
    return OWNER_LABEL in (obj.get("labels") or [])


def writable(obj: Json | None) -> Json:
    """`obj` without the server-managed fields: the base of every body.

    A shallow copy: builders only replace top-level fields, and the nested values they keep
    (plugins, an upstream's timeouts) are shared read-only with `obj`, as all objects are here.
    """
    return {key: value for key, value in (obj or {}).items() if key not in _SERVER_MANAGED}


def owner_of(app: Json) -> str:
    """The owner namespace recorded on an app ("" when none is)."""
    for label in app.get("labels") or []:
        if isinstance(label, str) and label.startswith(NAMESPACE_LABEL_PREFIX):
            return label.removeprefix(NAMESPACE_LABEL_PREFIX)
    return ""


def _labels_with_owner(obj: Json | None, namespace: str = "") -> list[str]:
    """`obj`'s labels plus canaryctl's ownership label (and the owner namespace, if given)."""
    labels = [
        label
        for label in (obj or {}).get("labels") or []
        if not (namespace and isinstance(label, str) and label.startswith(NAMESPACE_LABEL_PREFIX))
    ]
    labels += [] if OWNER_LABEL in labels else [OWNER_LABEL]
    return labels + ([NAMESPACE_LABEL_PREFIX + namespace] if namespace else [])


def spec_upstreams(spec: AppSpec) -> list[Upstream]:
    """The upstreams an app needs for `spec`: the stable, then the canary if distinct."""
    if spec.canary is None or spec.canary.key == spec.stable.key:
        return [spec.stable]
    return [spec.stable, spec.canary]


def _upstream_entry(upstream: Upstream, base: Json | None) -> Json:
    entry = dict(base or {})  # copies of the two levels changed here; the rest is shared
    inner = dict(entry["upstream"]) if isinstance(entry.get("upstream"), dict) else {}
    inner.update(
        scheme="http",
        lb_type="roundrobin",
        targets=[{"host": upstream.host, "port": upstream.port, "weight": 100}],
    )
    entry.update(version=upstream.key, upstream=inner)
    return entry


def upstreams_by_version(app: Json) -> dict[str | None, Json]:
    return {entry.get("version"): entry for entry in app.get("upstreams") or []}


def app_body(spec: AppSpec, base: Json | None = None) -> Json:
    """The application as canaryctl writes it for `spec`, on top of `base` (the held app)."""
    existing = upstreams_by_version(base or {})
    body = writable(base)
    body.update(
        name=spec.name,
        hosts=[spec.name],
        labels=_labels_with_owner(base, spec.owner),
        protocols=["HTTP"],
        path_prefix="/",
        active=0,
        default_upstream_version=spec.stable.key,
        upstreams=[_upstream_entry(u, existing.get(u.key)) for u in spec_upstreams(spec)],
    )
    return body


def api_body(base: Json | None = None) -> Json:
    """The match-everything API as canaryctl writes it, on top of `base`."""
    body = writable(base)
    body.setdefault("name", API_NAME)
    body.update(
        labels=_labels_with_owner(base),
        paths=[{"path": "/", "path_type": "Prefix"}],
        methods=[],
        type="Rest",
        active=0,
        strip_path_prefix=False,
    )
    return body


def canary_body(spec: AppSpec, base: Json | None = None) -> Json:
    """The canary release for `spec` (which has a canary): always in progress, never paused.

    A canary with a request predicate is a release of type `rule` (API7 Cloud cannot combine
    it with a percentage; the decision never asks for both)."""
    assert spec.canary is not None
    body = writable(base)
    body.setdefault("name", CANARY_NAME)
    body.update(state=IN_PROGRESS, canary_upstream_version=spec.canary.key)
    if spec.match:
        body.update(type="rule", rules=match_rules(spec.match), percent=0)
    else:
        body.update(type="percent", percent=spec.weight)
        body.pop("rules", None)
    return body


def match_rules(match: tuple[MatchTerm, ...]) -> list[Json]:
    """A request predicate as API7 canary rules: all must hold."""
    return [
        {
            "position": term.kind,
            "key": term.name,
            "operator": "regex_match" if term.regex else "equal",
            "value": term.value,
        }
        for term in match
    ]


def rules_match(canary: Json) -> tuple[MatchTerm, ...] | None:
    """The predicate of a `rule` canary; None when its rules say something canaryctl never
    writes (another operator or position)."""
    terms = []
    for rule in canary.get("rules") or []:
        operator, kind = rule.get("operator"), rule.get("position")
        if operator not in ("equal", "regex_match") or kind not in ("header", "cookie", "query"):
            return None
        name = str(rule.get("key") or "")
        terms.append(
            MatchTerm(
                kind,
                name.lower() if kind == "header" else name,
                str(rule.get("value") or ""),
                operator == "regex_match",
            )
        )
    return tuple(terms)


def _upstream_managed_fields(entry: Json) -> tuple:
    inner = entry.get("upstream") or {}
    targets = sorted(
        [
            (t.get("host"), int(t.get("port") or 0), t.get("weight"))
            for t in inner.get("targets") or []
        ]
    )
    return inner.get("scheme"), inner.get("lb_type"), tuple(targets)


def app_managed_fields(app: Json) -> tuple:
    """The managed fields of an application, comparable with `==`."""
    upstreams = {
        version: _upstream_managed_fields(entry)
        for version, entry in upstreams_by_version(app).items()
    }
    return (
        tuple(app.get("hosts") or []),
        is_owned(app),
        owner_of(app),
        tuple(app.get("protocols") or []),
        app.get("path_prefix"),
        app.get("active"),
        app.get("default_upstream_version"),
        tuple(sorted(upstreams.items())),
    )


def api_managed_fields(api: Json) -> tuple:
    """The managed fields of an API, comparable with `==`."""
    paths = tuple([(p.get("path"), p.get("path_type")) for p in api.get("paths") or []])
    return (
        is_owned(api),
        paths,
        tuple(sorted(api.get("methods") or [])),
        api.get("type"),
        api.get("active"),
        bool(api.get("strip_path_prefix")),
    )


def canary_percent(canary: Json) -> int:
    """The canary's percent; older SDKs omit it when 0."""
    return int(canary.get("percent") or 0)


def is_live(canary: Json) -> bool:
    """In progress or paused: the canary still holds its upstream version (finished does not)."""
    return canary.get("state") in (IN_PROGRESS, PAUSED)


def canary_routes_as(canary: Json, spec: AppSpec) -> bool:
    """True when `canary` sends exactly `spec.weight` % (or exactly the requests `spec.match`
    selects) to `spec.canary` (paused counts as 0 %)."""
    if spec.canary is None or canary.get("canary_upstream_version") != spec.canary.key:
        return False
    if spec.match:
        return (
            canary.get("type") == "rule"
            and canary.get("state") == IN_PROGRESS
            and canary.get("rules") == match_rules(spec.match)
        )
    if canary.get("type") != "percent":
        return False
    if canary.get("state") == PAUSED:
        return spec.weight == 0
    return canary.get("state") == IN_PROGRESS and canary_percent(canary) == spec.weight
