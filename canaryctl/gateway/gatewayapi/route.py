"""What canaryctl writes to the Gateway API for one application: one HTTPRoute, as plain JSON.

The body builder, the state reader and the drift check must agree on one definition of "the
route as canaryctl writes it"; this module is that definition. Every field the apiserver
would default (parentRef group and kind, backendRef group and kind, the PathPrefix match) is
written explicitly, so what is stored equals what was applied and a comparison needs no
knowledge of the schema's defaults. Pure: no I/O.

The route is named after the application (app names are DNS-1123 subdomains, as object names
must be) and lives in the owner namespace. Ownership is the label
`app.kubernetes.io/managed-by: canaryctl`; the application, the owner namespace and the parent
the stable asked for are annotations (label values are limited to 63 characters).
"""

from __future__ import annotations

import json
import re
from typing import Any

from canaryctl.gateway.model import AppSpec, MatchTerm, ParentRef, Upstream
from canaryctl.matching import cookie_header_regex

GROUP = "gateway.networking.k8s.io"
VERSION = "v1"
PLURAL = "httproutes"
KIND = "HTTPRoute"
FIELD_MANAGER = "canaryctl"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "canaryctl"
SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
APP_ANNOTATION = "api7.cloud/application"
OWNER_ANNOTATION = "api7.cloud/owner-namespace"
PARENT_ANNOTATION = "api7.cloud/gateway-api-parent"  # the parent the stable asked for
OUR_ANNOTATIONS = (APP_ANNOTATION, OWNER_ANNOTATION, PARENT_ANNOTATION)
SPEC_FIELDS = ("parentRefs", "hostnames", "rules")  # the spec canaryctl owns, all of it
MATCH_EVERYTHING = [{"path": {"type": "PathPrefix", "value": "/"}}]

Json = dict[str, Any]


def route_name(app: str) -> str:
    """The HTTPRoute of application `app`: the app name itself (already a DNS subdomain)."""
    return app


def route_namespace(spec: AppSpec) -> str:
    """Where the route lives: the owner namespace (the stable's until owners are recorded)."""
    return spec.owner or spec.stable.namespace


def members_elsewhere(spec: AppSpec) -> list[str]:
    """Members outside the route's namespace: a route cannot reach them without a grant."""
    namespace = route_namespace(spec)
    members = [spec.stable] + ([spec.canary] if spec.canary else [])
    return [member.key for member in members if member.namespace != namespace]


def backend_ref(upstream: Upstream, weight: int) -> Json:
    return {
        "group": "",
        "kind": "Service",
        "name": upstream.service,
        "port": upstream.port,
        "weight": weight,
    }


def backend_refs(spec: AppSpec) -> list[Json]:
    """The stable at 100 - weight, and the canary at weight; the stable alone without a canary."""
    if spec.canary is None:
        return [backend_ref(spec.stable, 100)]
    return [backend_ref(spec.stable, 100 - spec.weight), backend_ref(spec.canary, spec.weight)]


def parent_ref(parent: ParentRef) -> Json:
    """The parentRef as written, every defaulted field explicit."""
    ref = {"group": GROUP, "kind": "Gateway", "namespace": parent.namespace, "name": parent.name}
    return {**ref, "sectionName": parent.section} if parent.section else ref


def route_spec(spec: AppSpec, parent: ParentRef) -> Json:
    """The spec canaryctl owns: parent, host `[app]`, one match-everything rule with weights,
    and before it, when the canary has a request predicate, a rule sending matches to it."""
    rules = [{"matches": MATCH_EVERYTHING, "backendRefs": backend_refs(spec)}]
    if spec.canary is not None and spec.match:
        match_rule = {
            "matches": [match_of(spec.match)],
            "backendRefs": [backend_ref(spec.canary, 1)],
        }
        rules.insert(0, match_rule)
    return {"parentRefs": [parent_ref(parent)], "hostnames": [spec.name], "rules": rules}


def match_of(match: tuple[MatchTerm, ...]) -> Json:
    """An HTTPRouteMatch holding when every term does: headers and query parameters, a cookie
    as an exact regular expression on the Cookie header (see `canaryctl.matching`)."""
    headers, queries = [], []
    for term in match:
        kind = "RegularExpression" if term.regex else "Exact"
        if term.kind == "header":
            headers.append({"type": kind, "name": term.name, "value": term.value})
        elif term.kind == "query":
            queries.append({"type": kind, "name": term.name, "value": term.value})
        else:
            regex = cookie_header_regex(term)
            headers.append({"type": "RegularExpression", "name": "cookie", "value": regex})
    found: Json = {"path": {"type": "PathPrefix", "value": "/"}}
    if headers:
        found["headers"] = headers
    if queries:
        found["queryParams"] = queries
    return found


def match_from(found: Json) -> tuple[MatchTerm, ...] | None:
    """The predicate of an HTTPRouteMatch `match_of` wrote; None for anything else."""
    if found.get("path") != {"type": "PathPrefix", "value": "/"} or set(found) - {
        "path",
        "headers",
        "queryParams",
    }:
        return None
    terms = []
    for kind, entries in (("header", found.get("headers")), ("query", found.get("queryParams"))):
        for entry in entries or []:
            term = _term(kind, entry)
            if term is None:
                return None
            terms.append(term)
    return tuple(terms)


def _term(kind: str, entry: Json) -> MatchTerm | None:
    regex = entry.get("type", "Exact") == "RegularExpression"
    name, value = str(entry.get("name", "")), str(entry.get("value", ""))
    if kind == "header" and name.lower() == "cookie" and regex:
        cookie = _COOKIE.fullmatch(value)
        if cookie:
            return MatchTerm("cookie", _unescape(cookie[1]), _unescape(cookie[2]))
    if kind == "header":
        return MatchTerm("header", name.lower(), value, regex)
    return MatchTerm("query", name, value, regex)


_COOKIE = re.compile(r"\(\^\|;\\s\*\)(.+?)=(.+)\(;\|\$\)")


def _unescape(escaped: str) -> str:
    return re.sub(r"\\(.)", r"\1", escaped)


def route_annotations(spec: AppSpec) -> dict[str, str]:
    annotations = {APP_ANNOTATION: spec.name}
    if spec.owner:
        annotations[OWNER_ANNOTATION] = spec.owner
    if spec.parent:
        annotations[PARENT_ANNOTATION] = spec.parent
    return annotations


def route_body(spec: AppSpec, parent: ParentRef) -> Json:
    """The apply configuration: exactly the fields canaryctl owns, nothing else."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": route_name(spec.name),
            "namespace": route_namespace(spec),
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": route_annotations(spec),
        },
        "spec": route_spec(spec, parent),
    }


def canonical_spec(spec: Json, namespace: str) -> str:
    """A route spec as comparable text: defaults filled in, keys sorted, other fields kept.

    Anything canaryctl does not write (a filter, timeouts, a second rule) stays in the text,
    so it makes the comparison fail: the route no longer routes exactly as canaryctl wrote it.
    """
    normal = dict(spec)
    normal["parentRefs"] = [_default_parent(ref, namespace) for ref in spec.get("parentRefs") or []]
    normal["rules"] = [_default_rule(rule) for rule in spec.get("rules") or []]
    return json.dumps(normal, sort_keys=True, separators=(",", ":"))


def _default_parent(ref: Json, namespace: str) -> Json:
    return {"group": GROUP, "kind": "Gateway", "namespace": namespace, **ref}


def _default_rule(rule: Json) -> Json:
    normal = {"matches": MATCH_EVERYTHING, **rule}
    normal["backendRefs"] = [
        {"group": "", "kind": "Service", "weight": 1, **ref}
        for ref in rule.get("backendRefs") or []
    ]
    return normal
