"""What canaryctl writes to APISIX for one application, and the merge patches that get there.

One route per application: `hosts: [app]`, `uri: "/*"`, `upstream_id` the stable's upstream
and, with a canary, `plugins.traffic-split.rules = [{weighted_upstreams: [{upstream_id:
<canary>, weight: p}, {weight: 100 - p}]}]` (an entry with only a weight is the route's own
upstream, apache/apisix `apisix/plugins/traffic-split.lua`); 0 % and 100 % keep the rule, so
they stay reversible. One upstream object per member Service, with the Service's DNS name and
port as its only node. Every object carries canaryctl's labels.

Only the *managed* fields are canaryctl's; changes are sent as Admin API PATCH bodies holding
just the managed fields that differ, so plugins, timeouts or health checks added by hand
survive (and a PATCH cannot undo a hand edit made since canaryctl last read the object, as a
PUT of a stale copy would). APISIX's PATCH merges like `core.table.merge`: objects merge key by
key, `null` deletes, arrays and scalars are replaced. Everything here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from canaryctl.gateway.apisix import naming
from canaryctl.gateway.model import AppSpec, MatchTerm, Upstream

Json = dict[str, Any]
MANAGED_BY, CANARYCTL = "managed-by", "canaryctl"
APP_LABEL, OWNER_LABEL, SERVICE_LABEL = "canaryctl-app", "canaryctl-owner", "canaryctl-service"
SPLIT = "traffic-split"
MATCH_ALL = "/*"
# Route fields that would narrow or redirect what the route matches or where it sends traffic.
_ROUTE_ABSENT = ("host", "uris", "methods", "vars", "filter_func", "upstream", "service_id")
# Upstream fields that would replace the nodes (service discovery).
_UPSTREAM_ABSENT = ("service_name", "discovery_type")


@dataclass(frozen=True)
class ApisixObjects:
    """The APISIX objects behind one application: the `raw` of an `AppState`.

    `route` is the object at the app's route id (None when there is none); `upstreams` are
    the canaryctl upstreams of the app. Treat the dicts as read-only.
    """

    name: str
    route: Json | None = None
    upstreams: tuple[Json, ...] = field(default=())

    def upstream(self, upstream_id: Any) -> Json | None:
        return next((u for u in self.upstreams if u.get("id") == upstream_id), None)


def is_owned(obj: Json) -> bool:
    """True when the object carries canaryctl's ownership label."""
    return (obj.get("labels") or {}).get(MANAGED_BY) == CANARYCTL


def owner_of(obj: Json) -> str:
    """The owner namespace recorded on an object ("" when none is)."""
    return str((obj.get("labels") or {}).get(OWNER_LABEL) or "")


def spec_upstreams(spec: AppSpec) -> list[Upstream]:
    """The upstreams an app needs for `spec`: the stable, then the canary if distinct."""
    if spec.canary is None or spec.canary.key == spec.stable.key:
        return [spec.stable]
    return [spec.stable, spec.canary]


def _labels(spec: AppSpec, upstream: Upstream | None = None) -> dict[str, str | None]:
    """canaryctl's labels on an object of `spec` (None: the label must be absent)."""
    labels: dict[str, str | None] = {
        MANAGED_BY: CANARYCTL,
        APP_LABEL: naming.label_value(spec.name),
        OWNER_LABEL: naming.label_value(spec.owner) if spec.owner else None,
    }
    if upstream is not None:
        labels[SERVICE_LABEL] = naming.label_value(upstream.key)
    return labels


def split_plugin(spec: AppSpec) -> Json | None:
    """The traffic-split configuration for `spec`, None without a canary: a weighted rule, and
    before it, when the canary has a request predicate, a rule sending matches to it."""
    if spec.canary is None or spec.canary.key == spec.stable.key:
        return None
    canary_id = naming.upstream_id(spec.name, spec.canary.key)
    weighted = [{"upstream_id": canary_id, "weight": spec.weight}, {"weight": 100 - spec.weight}]
    rules: list[Json] = [{"weighted_upstreams": weighted}]
    if spec.match:
        matched = {"upstream_id": canary_id, "weight": 1}
        rules.insert(
            0, {"match": [{"vars": match_vars(spec.match)}], "weighted_upstreams": [matched]}
        )
    return {"rules": rules}


def match_vars(match: tuple[MatchTerm, ...]) -> list[list[str]]:
    """A request predicate as lua-resty-expr conditions on nginx variables (all must hold)."""
    return [[_variable(term), "~~" if term.regex else "==", term.value] for term in match]


def vars_match(conditions: Any) -> tuple[MatchTerm, ...] | None:
    """The predicate `match_vars` wrote; None for conditions canaryctl never writes."""
    terms = []
    for condition in conditions if isinstance(conditions, list) else [None]:
        if not (isinstance(condition, list) and len(condition) == 3):
            return None
        variable, operator, value = condition
        kind, _, name = str(variable).partition("_")
        kinds = {"http": "header", "cookie": "cookie", "arg": "query"}
        if kind not in kinds or not name or operator not in ("==", "~~"):
            return None
        name = name.replace("_", "-") if kind == "http" else name
        terms.append(MatchTerm(kinds[kind], name, str(value), operator == "~~"))  # type: ignore[arg-type]
    return tuple(terms)


def _variable(term: MatchTerm) -> str:
    """nginx's variable for a header (`http_x_canary`), cookie (`cookie_NAME`) or argument."""
    if term.kind == "header":
        return "http_" + term.name.replace("-", "_")
    return ("cookie_" if term.kind == "cookie" else "arg_") + term.name


def route_fields(spec: AppSpec) -> Json:
    """The managed fields of the route for `spec` (None: must be absent)."""
    fields: Json = dict.fromkeys(_ROUTE_ABSENT)
    fields.update(
        name=naming.fit(spec.name, naming.NAME_MAX),
        desc=spec.name,
        hosts=[spec.name],
        uri=MATCH_ALL,
        upstream_id=naming.upstream_id(spec.name, spec.stable.key),
        status=1,
        labels=_labels(spec),
        plugins={SPLIT: split_plugin(spec)},
    )
    return fields


def upstream_fields(spec: AppSpec, upstream: Upstream) -> Json:
    """The managed fields of `upstream`'s object in `spec`'s app (None: must be absent)."""
    fields: Json = dict.fromkeys(_UPSTREAM_ABSENT)
    fields.update(
        name=naming.upstream_name(spec.name, upstream.key),
        desc=upstream.key,
        type="roundrobin",
        scheme="http",
        nodes=[{"host": upstream.host, "port": upstream.port, "weight": 1}],
        labels=_labels(spec, upstream),
    )
    return fields


def create_body(fields: Json) -> Json:
    """A PUT body creating an object with `fields`: the absent ones left out."""
    body = {name: value for name, value in fields.items() if value is not None}
    for nested in ("labels", "plugins"):
        if nested in body:
            body[nested] = {k: v for k, v in body[nested].items() if v is not None}
    if not body.get("plugins"):
        body.pop("plugins", None)
    return body


def merge_patch(current: Json, fields: Json) -> Json:
    """The PATCH body that makes `current`'s managed `fields` as given ({} when they are)."""
    patch: Json = {}
    for name, wanted in fields.items():
        have = current.get(name)
        if name in ("labels", "plugins"):
            inner = _keys_patch(have if isinstance(have, dict) else {}, wanted)
            if inner:
                patch[name] = inner
        elif name == "nodes":
            if _node_set(have) != _node_set(wanted):
                patch[name] = _nodes_patch(have, wanted)
        elif _differs(have, wanted, name in current):
            patch[name] = wanted
    return patch


def _differs(have: Any, wanted: Any, present: bool) -> bool:
    if wanted is None:
        return present
    return have != wanted


def _keys_patch(have: Json, wanted: dict[str, Any]) -> Json:
    """Per-key patch of an object canaryctl shares with others (labels, plugins)."""
    patch: Json = {}
    for key, value in wanted.items():
        if key == SPLIT:
            if split_rules(have.get(SPLIT)) != split_rules(value):
                patch[key] = None if value is None else {"rules": value["rules"]}
        elif _differs(have.get(key), value, key in have):
            patch[key] = value
    return patch


def split_rules(conf: Any) -> Any:
    """The managed part of a traffic-split configuration: its rules (None: no plugin)."""
    return conf.get("rules") if isinstance(conf, dict) else None


def node_list(nodes: Any) -> list[tuple[str, int, int]]:
    """(host, port, weight) of every node, from the array or the `{"host:port": w}` form."""
    if isinstance(nodes, dict):
        found = []
        for target, weight in nodes.items():
            host, _, port = str(target).rpartition(":")
            found.append((host, int(port) if port.isdigit() else 0, int(weight or 0)))
        return found
    return [
        (str(n.get("host", "")), int(n.get("port") or 0), int(n.get("weight") or 0))
        for n in nodes or []
        if isinstance(n, dict)
    ]


def _node_set(nodes: Any) -> list[tuple[str, int, int]]:
    return sorted(node_list(nodes))


def _nodes_patch(have: Any, wanted: list[Json]) -> Any:
    """New nodes in the form the object uses: a map form merges, so old targets are nulled."""
    if not isinstance(have, dict) or not have:
        return wanted
    patch: dict[str, Any] = dict.fromkeys(have)
    patch.update({f"{n['host']}:{n['port']}": n["weight"] for n in wanted})
    return patch


def upstream_of(obj: Json | None) -> Upstream | None:
    """The neutral upstream of one of canaryctl's upstream objects (its first node)."""
    if obj is None or not obj.get("desc"):
        return None
    nodes = node_list(obj.get("nodes"))
    if not nodes:
        return None
    host, port, _ = nodes[0]
    return Upstream.from_key(str(obj["desc"]), host, port)
