"""Which route serves a request, decided as APISIX's default router (`radixtree_host_uri`) does.

apache/apisix `apisix/http/router/radixtree_host_uri.lua` with lua-resty-radixtree:

- only routes with `status` 1 (the default) take part;
- routes with `host`/`hosts` are tried first: an exact host before wildcard hosts
  (`*.example.com`, longest suffix first); only when none of them has a matching route
  are routes without hosts tried. The request's host is the `Host` header without port;
- within one host, an exact `uri` beats every prefix (`/api*` matches `/api`, `/api/x`
  and `/apix`; `/api/*` only what starts with `/api/`), a longer prefix beats a shorter
  one, then higher `priority`, then the older route; a candidate must also pass
  `methods`, `remote_addrs` and `vars`;
- the match reports the uri pattern and host pattern it used (`matched_uri`,
  `matched_host` of the metrics).

Not emulated: `:param` and `*name` path parameters, `filter_func` (Lua), `service_id`
hosts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import unquote, unquote_plus

from canaryctl.testing.apisix.expr import evaluate
from canaryctl.testing.apisix.store import StoredItem


class RequestVars(Mapping[str, Any]):
    """The nginx/APISIX variables `vars` expressions read (`http_*`, `cookie_*`, `arg_*`, ...)."""

    def __init__(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        remote_addr: str = "127.0.0.1",
        server_port: int = 0,
    ):
        path, _, query = target.partition("?")
        self._headers = [(name.lower().replace("-", "_"), value) for name, value in headers]
        host = self.header("host") or ""
        host_part, sep, port = host.rpartition(":")
        self._fixed: dict[str, Any] = {
            "uri": unquote(path),
            "request_uri": target,
            "args": query,
            "query_string": query,
            "request_method": method,
            "host": (host_part if sep and port.isdigit() else host).lower(),
            "remote_addr": remote_addr,
            "server_port": str(server_port),
            "scheme": "http",
        }
        self._args = _query_args(query)
        self._cookies = _cookies(self.header("cookie") or "")

    def header(self, name: str) -> str | None:
        name = name.lower().replace("-", "_")
        return next((value for key, value in self._headers if key == name), None)

    def with_route(self, route: Mapping[str, Any]) -> RequestVars:
        """APISIX adds `route_id` / `route_name` once a route matched."""
        self._fixed["route_id"] = route.get("id")
        self._fixed["route_name"] = route.get("name")
        return self

    def __getitem__(self, name: str) -> Any:
        if name in self._fixed:
            return self._fixed[name]
        for prefix, lookup in (
            ("http_", self.header),
            ("cookie_", self._cookies.get),
            ("arg_", self._args.get),
        ):
            if name.startswith(prefix):
                value = lookup(name[len(prefix) :])
                if value is not None:
                    return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fixed)

    def __len__(self) -> int:
        return len(self._fixed)


def _query_args(query: str) -> dict[str, Any]:
    """ngx.req.get_uri_args: decoded, first value wins, a bare `?flag` is true."""
    args: dict[str, Any] = {}
    for part in filter(None, query.split("&")):
        name, sep, value = part.partition("=")
        args.setdefault(unquote_plus(name), unquote_plus(value) if sep else True)
    return args


def _cookies(header: str) -> dict[str, str]:
    try:
        return {name: morsel.value for name, morsel in SimpleCookie(header).items()}
    except CookieError:
        return {}


@dataclass(frozen=True)
class RouteMatch:
    route: StoredItem
    matched_uri: str
    matched_host: str  # "" for a route without hosts


def _route_hosts(route: Mapping[str, Any]) -> list[str] | None:
    if route.get("hosts"):
        return [host.lower() for host in route["hosts"]]
    return [route["host"].lower()] if route.get("host") else None


def _passes_filters(route: Mapping[str, Any], variables: RequestVars) -> bool:
    methods = route.get("methods")
    if methods and variables["request_method"] not in methods:
        return False
    addrs = route.get("remote_addrs") or (
        [route["remote_addr"]] if route.get("remote_addr") else []
    )
    if addrs and not _address_in(variables["remote_addr"], addrs):
        return False
    return evaluate(route.get("vars") or [], variables)


def _address_in(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
        return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)
    except ValueError:
        return False


def _uri_candidates(routes: list[StoredItem], uri: str) -> list[tuple[tuple, StoredItem, str]]:
    """(rank, route, pattern) for every route path matching `uri`; lower rank wins."""
    found = []
    for order, item in enumerate(routes):
        paths = item.value.get("uris") or [item.value.get("uri")]
        for pattern in filter(None, paths):
            exact = not pattern.endswith("*")
            if uri == pattern if exact else uri.startswith(pattern[:-1]):
                priority = item.value.get("priority", 0)
                rank = (0 if exact else 1, -len(pattern), -priority, order)
                found.append((rank, item, pattern))
    return sorted(found, key=lambda candidate: candidate[0])


def _dispatch(routes: list[StoredItem], variables: RequestVars) -> tuple[StoredItem, str] | None:
    for _, item, pattern in _uri_candidates(routes, variables["uri"]):
        if _passes_filters(item.value, variables):
            return item, pattern
    return None


def _host_patterns(patterns: list[str], host: str) -> list[str]:
    """The route host patterns matching `host`: the exact one first, then by longest suffix."""
    exact = [p for p in patterns if p == host]
    wild = [p for p in patterns if p.startswith("*") and host.endswith(p[1:]) and p != host]
    return exact + sorted(wild, key=len, reverse=True)


def match_route(routes: list[StoredItem], variables: RequestVars) -> RouteMatch | None:
    """The route serving this request (routes in creation order), or None (404)."""
    enabled = [item for item in routes if item.value.get("status", 1) == 1]
    by_host: dict[str, list[StoredItem]] = {}
    for item in enabled:
        for pattern in _route_hosts(item.value) or []:
            by_host.setdefault(pattern, []).append(item)
    for pattern in _host_patterns(list(by_host), variables["host"]):
        found = _dispatch(by_host[pattern], variables)
        if found:
            return RouteMatch(found[0], found[1], pattern)
    hostless = [item for item in enabled if _route_hosts(item.value) is None]
    found = _dispatch(hostless, variables)
    return RouteMatch(found[0], found[1], "") if found else None
