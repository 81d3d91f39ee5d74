"""A stand-in Gateway API data plane: follows HTTPRoutes' weights, spreads requests by them.

No Gateway API implementation runs in the test kit yet, so this small one plays its data
plane: it watches every HTTPRoute attached to its Gateway (with canaryctl's own informer
machinery: list, then watch, relist on 410), and serves HTTP on 127.0.0.1. A request's
`Host` picks the route whose `hostnames` hold it; the first rule whose matches hold (headers
and query parameters, Exact or RegularExpression; a rule without them matches everything)
chooses among its backendRefs by *smooth weighted round robin* (nginx's: every pick adds each
backend's weight to its credit, takes the highest credit and subtracts the total from it), so
90/10 sends exactly
10 of every 100 consecutive requests to the second backend, in an even spread. A change of
the route's weights (a new resourceVersion) starts the spread over from the new weights.
Service DNS names do not resolve here: `add_resolve` maps `svc.ns.svc.cluster.local:port` to
a local backend. No route: 404; no backend with weight: 500 (as the Gateway API asks).
`set_split` makes it spread a route differently from what the route says, as the API7 and
APISIX emulators' `set_split` do: a data plane gone wrong, for tests of the observed split.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from kubernetes import client

from canaryctl.backgroundhttp import BackgroundHTTPServer, QuietHandler
from canaryctl.cache import ObjectStore
from canaryctl.gateway.gatewayapi.client import RouteClient
from canaryctl.gateway.model import ParentRef
from canaryctl.informer import Informer
from canaryctl.testing.httpemulation.proxy import forward, forwardable
from canaryctl.testing.httpemulation.resolve import Resolver, host_without_port

Backend = tuple[str, int]  # ("namespace/service", weight)


Condition = tuple[str, str, str, str]  # (header|query, name, Exact|RegularExpression, value)


@dataclass(frozen=True)
class FollowedRule:
    """One rule: the matches that select it (any of them; none: everything), its backends."""

    matches: tuple[tuple[Condition, ...], ...]
    backends: tuple[tuple[str, int, int], ...]  # (namespace/service, port, weight)

    def selects(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        return not self.matches or any(
            all(_holds(c, headers, query) for c in match) for match in self.matches
        )


@dataclass(frozen=True)
class FollowedRoute:
    """What the data plane keeps of one HTTPRoute: hosts, parents, rules."""

    namespace: str
    name: str
    resource_version: str
    hostnames: tuple[str, ...]
    parents: tuple[str, ...]  # "namespace/name" of each parentRef
    rules: tuple[FollowedRule, ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def backends(self) -> tuple[tuple[str, int, int], ...]:
        """The weighted split: the last rule's backends."""
        return self.rules[-1].backends if self.rules else ()


def follow(route: Mapping[str, Any]) -> FollowedRoute:
    meta, spec = route.get("metadata") or {}, route.get("spec") or {}
    namespace = meta.get("namespace", "")
    parents = tuple(
        f"{ref.get('namespace') or namespace}/{ref.get('name')}"
        for ref in spec.get("parentRefs") or []
    )
    return FollowedRoute(
        namespace,
        meta.get("name", ""),
        meta.get("resourceVersion", ""),
        tuple(spec.get("hostnames") or ()),
        parents,
        tuple(_rule(rule, namespace) for rule in spec.get("rules") or [{}]),
    )


def _rule(rule: Mapping[str, Any], namespace: str) -> FollowedRule:
    backends = tuple(
        (
            f"{ref.get('namespace') or namespace}/{ref['name']}",
            int(ref.get("port") or 0),
            int(ref.get("weight", 1)),
        )
        for ref in rule.get("backendRefs") or []
    )
    matches = tuple(
        tuple(
            (kind, str(c.get("name", "")), str(c.get("type", "Exact")), str(c.get("value", "")))
            for kind, field in (("header", "headers"), ("query", "queryParams"))
            for c in match.get(field) or []
        )
        for match in rule.get("matches") or []
    )
    return FollowedRule(tuple(m for m in matches if m) if any(matches) else (), backends)


def _holds(condition: Condition, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
    kind, name, match_type, value = condition
    actual = headers.get(name.lower()) if kind == "header" else query.get(name)
    if actual is None:
        return False
    return bool(re.search(value, actual)) if match_type == "RegularExpression" else actual == value


class SmoothRoundRobin:
    """nginx's smooth weighted round robin over fixed weights."""

    def __init__(self, weights: list[int]):
        self.weights = weights
        self.credit = [0] * len(weights)

    def pick(self) -> int | None:
        total = sum(self.weights)
        if total <= 0:
            return None
        pairs = zip(self.credit, self.weights, strict=True)
        self.credit = [credit + weight for credit, weight in pairs]
        chosen = max(range(len(self.weights)), key=lambda index: self.credit[index])
        self.credit[chosen] -= total
        return chosen


class RouteFollower:
    """The data plane of Gateway `parent`, on 127.0.0.1; a context manager."""

    def __init__(
        self,
        api_client: client.ApiClient,
        parent: ParentRef,
        namespaces: list[str] | None = None,
        port: int = 0,
    ):
        """Follow the routes of `namespaces` (None: all) attached to `parent`."""
        self.parent = parent
        self.resolver = Resolver()
        self.routes: ObjectStore[FollowedRoute] = ObjectStore()
        self.informer = Informer(
            RouteClient(api_client).list_request,
            follow,
            self.routes,
            self._changed,
            namespaces,
            kind="route",
        )
        self._lock = threading.Lock()
        self._spreads: dict[str, tuple[object, SmoothRoundRobin]] = {}  # rule -> (version, rr)
        self._forced: dict[str, dict[str, int]] = {}  # route -> {namespace/service: weight}
        self._server = BackgroundHTTPServer(_Handler, self, "127.0.0.1", port)

    @property
    def dataplane_url(self) -> str:
        return self._server.url

    @property
    def dataplane_address(self) -> str:
        return f"{self._server.host}:{self._server.port}"

    def add_resolve(self, host_port: str, address: str) -> None:
        self.resolver.add(host_port, address)

    def start(self) -> RouteFollower:
        self.informer.start()
        if not self.informer.wait_for_sync(30):
            raise RuntimeError("the route follower could not list HTTPRoutes")
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
        self.informer.stop()

    def __enter__(self) -> RouteFollower:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def route_for(self, host: str) -> FollowedRoute | None:
        """The attached route serving `host` (the oldest name wins a tie, as in the spec)."""
        attached = [
            route
            for route in self.routes.list()
            if host in route.hostnames and str(self.parent) in route.parents
        ]
        return min(attached, key=lambda route: route.key, default=None)

    def weights(self, host: str) -> list[Backend]:
        """(namespace/service, weight) of the backends the route for `host` spreads over."""
        route = self.route_for(host)
        return [] if route is None else [(key, weight) for key, _, weight in route.backends]

    def set_split(self, route_key: str, weights: Mapping[str, int] | None) -> None:
        """Spread route `route_key` (namespace/name) by `weights` ({namespace/service: weight})
        for the backends named there, whatever the route says; None: follow the route again."""
        with self._lock:
            if weights is None:
                self._forced.pop(route_key, None)
            else:
                self._forced[route_key] = dict(weights)

    def choose(
        self,
        route: FollowedRoute,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> tuple[str, int] | None:
        """The next backend's (namespace/service, port): the first rule that selects the
        request, then smooth weighted round robin among its backends."""
        number, rule = next(
            ((i, r) for i, r in enumerate(route.rules) if r.selects(headers or {}, query or {})),
            (0, None),
        )
        if rule is None:
            return None
        spread_key = f"{route.key}#{number}"
        with self._lock:
            forced = self._forced.get(route.key, {})
            weights = [forced.get(key, weight) for key, _, weight in rule.backends]
            version, spread = self._spreads.get(spread_key, ("", None))
            if spread is None or version != (route.resource_version, weights):
                spread = SmoothRoundRobin(weights)
                self._spreads[spread_key] = ((route.resource_version, weights), spread)
            index = spread.pick()
        if index is None:
            return None
        key, port, _ = rule.backends[index]
        return key, port

    def _changed(self, old: FollowedRoute | None, new: FollowedRoute | None) -> None:
        if new is None and old is not None:
            with self._lock:
                for key in [k for k in self._spreads if k.startswith(old.key + "#")]:
                    del self._spreads[key]


class _Handler(QuietHandler):
    server_version = "route-follower"

    def _serve(self) -> None:
        follower: RouteFollower = self.server.context
        body = self.read_body()
        route = follower.route_for(host_without_port(self.headers.get("Host", "")))
        if route is None:
            self.send_bytes(404, b'{"error": "no route"}', "application/json")
            return
        query_text = self.path.partition("?")[2]
        headers = {name.lower(): value for name, value in self.headers.items()}
        query = {name: values[0] for name, values in parse_qs(query_text).items()}
        chosen = follower.choose(route, headers, query)
        if chosen is None:
            self.send_bytes(500, b'{"error": "no backend with weight"}', "application/json")
            return
        namespace, _, service = chosen[0].partition("/")
        target = follower.resolver.resolve(f"{service}.{namespace}.svc.cluster.local", chosen[1])
        reply = forward(
            self.command, "http", target, self.path, forwardable(self.headers.items()), body, 10
        )
        if reply.failure:
            self.send_bytes(502 if reply.failure == "refused" else 504, b"", "text/plain")
            return
        headers = dict(reply.end_to_end_headers())
        content_type = headers.pop("Content-Type", None) or "application/octet-stream"
        self.send_bytes(reply.status, reply.body, content_type, headers)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve
