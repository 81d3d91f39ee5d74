"""The emulator's gateway port: match a route, apply traffic-split, pick a node, proxy, count.

What APISIX's data plane does for canaryctl's configurations, so a test can send 100
requests and count who answered:

- no route (see `routing`): 404 `{"error_msg":"404 Route Not Found"}`;
- traffic-split (see `balancer`) may swap the route's upstream for another one; a test can
  override its weights per route (`SplitOverrides`) to make the observed split differ from
  the configured one;
- the upstream is the chosen one, else the route's `upstream_id` (unknown id: 502), else
  its inline `upstream` (none: 503); its node by round robin among the highest-priority
  nodes (none: 502);
- the node's `host:port` is reached through the resolve map (Service names do not resolve
  here), in up to two hops as in a cluster: DNS (`svc.ns.svc.cluster.local:80` -> the
  ClusterIP `10.0.0.7:80`), then the Service proxy (`10.0.0.7:80` -> a local backend); a
  single hop straight to the backend works too. The `Host` sent follows `pass_host`
  (`pass`: the client's, `node`: the node's, `rewrite`: `upstream_host`); no answer is
  502, a timeout (route or upstream `timeout.read`, default 60 s) is 504, both with nginx's
  HTML error page;
- every request is counted in the prometheus plugin's series (see `metrics`), served on
  `GET /apisix/prometheus/metrics` for any Host. `node` is the node as configured
  (`host:port`, what canaryctl's API7 analysis queries select); with `node_label="address"`
  it is what APISIX itself reports (`ctx.balancer_ip`), the address the node's name resolved
  to — the first hop, e.g. the ClusterIP — without port.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from canaryctl.backgroundhttp import QuietHandler
from canaryctl.testing.apisix.balancer import Balancers, Node, SplitChoice, choose_split, pick_node
from canaryctl.testing.apisix.metrics import METRICS_PATH, ApisixMetrics, RequestLabels
from canaryctl.testing.apisix.routing import RequestVars, RouteMatch, match_route
from canaryctl.testing.apisix.store import Store, StoredItem
from canaryctl.testing.httpemulation.proxy import forward, forwardable
from canaryctl.testing.httpemulation.resolve import Resolver

SERVER = "APISIX/3.9.1"
NODE_LABELS = ("target", "address")
METRICS_SCOPES = ("global", "route")
_DEFAULT_READ_TIMEOUT_S = 60.0
_REASONS = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}


def nginx_error_page(status: int) -> bytes:
    """The HTML nginx answers for a gateway error."""
    title = f"{status} {_REASONS[status]}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>openresty</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


class SplitOverrides:
    """Per-route traffic-split weights that replace the configured ones. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._weights: dict[str, tuple[int, ...]] = {}

    def set(self, route_id: str, weights: Sequence[int] | None) -> None:
        with self._lock:
            if weights is None:
                self._weights.pop(route_id, None)
            else:
                self._weights[route_id] = tuple(int(weight) for weight in weights)

    def get(self, route_id: str) -> tuple[int, ...] | None:
        with self._lock:
            return self._weights.get(route_id)

    def clear(self) -> int:
        with self._lock:
            count = len(self._weights)
            self._weights.clear()
            return count


@dataclass
class DataPlaneContext:
    store: Store
    resolver: Resolver
    metrics: ApisixMetrics
    balancers: Balancers
    overrides: SplitOverrides
    node_label: str = "target"
    metrics_scope: str = "global"


@dataclass(frozen=True)
class _Upstream:
    """The upstream serving a request, with the identity its node picker is cached under."""

    conf: dict[str, Any]
    key: Hashable
    version: Hashable


class DataPlaneHandler(QuietHandler):
    """One client connection to the gateway port."""

    server_version = SERVER
    sys_version = ""

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    @property
    def context(self) -> DataPlaneContext:
        return self.server.context

    def _handle(self) -> None:
        started = time.monotonic()
        body = self.read_body()
        size = self._request_length(body)
        if self.path.split("?", 1)[0] == METRICS_PATH:
            self.send_bytes(200, self.context.metrics.exposition(), CONTENT_TYPE_LATEST)
            return
        variables = RequestVars(
            self.command, self.path, list(self.headers.items()), self.client_address[0]
        )
        routes = sorted(self.context.store.list("routes"), key=lambda r: r.created_index)
        match = match_route(routes, variables)
        if match is None:
            self._answer(404, b'{"error_msg":"404 Route Not Found"}\n', "application/json")
            self._count(None, None, 404, started, None, size)
            return
        variables.with_route(match.route.value)
        upstream = self._upstream(match.route, variables)
        if isinstance(upstream, int):
            self._fail(upstream, match, None, started, size)
            return
        node = pick_node(upstream.conf, self.context.balancers, upstream.key, upstream.version)
        if node is None:
            self._fail(502, match, None, started, size)
            return
        self._proxy(match, upstream.conf, node, body, started, size)

    def _request_length(self, body: bytes) -> int:
        """nginx's `$request_length`: request line, headers and body."""
        head = sum(len(name) + len(value) + 4 for name, value in self.headers.items())
        return len(self.requestline) + 2 + head + 2 + len(body)

    def _upstream(self, route: StoredItem, variables: RequestVars) -> _Upstream | int:
        """The upstream for this request, or the status APISIX answers when there is none."""
        split_conf = (route.value.get("plugins") or {}).get("traffic-split")
        choice = SplitChoice()
        if split_conf:
            route_key = (route.id, route.modified_index)
            override = self.context.overrides.get(route.id)
            choice = choose_split(
                split_conf, variables, self.context.balancers, route_key, override
            )
        if choice.upstream is not None:
            version = (route.modified_index, choice.slot)
            return _Upstream(dict(choice.upstream), ("route", route.id, choice.slot), version)
        upstream_id = choice.upstream_id or route.value.get("upstream_id")
        if upstream_id is not None:
            stored = self.context.store.find("upstreams", upstream_id)
            if stored is None:
                return 502
            return _Upstream(stored.value, ("upstream", stored.id), stored.modified_index)
        if route.value.get("upstream") is None:
            return 503
        return _Upstream(route.value["upstream"], ("route", route.id), route.modified_index)

    def _proxy(
        self,
        match: RouteMatch,
        upstream: dict[str, Any],
        node: Node,
        body: bytes,
        started: float,
        size: int,
    ) -> None:
        scheme = "https" if upstream.get("scheme") in ("https", "grpcs") else "http"
        target = node.address(upstream.get("scheme", "http"))
        host, port = target.rsplit(":", 1)
        resolved = self.context.resolver.resolve(host, int(port))  # DNS: what APISIX balances to
        address = self.context.resolver.resolve(*resolved)  # where that is reached from here
        headers = forwardable(self.headers.items())
        headers.update(self._forwarded_headers(upstream, node, target))
        timeout = (match.route.value.get("timeout") or upstream.get("timeout") or {}).get("read")
        upstream_started = time.monotonic()
        reply = forward(
            self.command,
            scheme,
            address,
            self.path,
            headers,
            body,
            float(timeout or _DEFAULT_READ_TIMEOUT_S),
        )
        upstream_ms = (time.monotonic() - upstream_started) * 1000
        label = target if self.context.node_label == "target" else resolved[0]
        if reply.failure is not None:
            self._fail(504 if reply.failure == "timeout" else 502, match, label, started, size)
            return
        self._answer(reply.status, reply.body, None, reply.end_to_end_headers())
        self._count(match, label, reply.status, started, upstream_ms, size, len(reply.body))

    def _forwarded_headers(self, upstream: dict[str, Any], node: Node, target: str) -> dict:
        client_host = self.headers.get("Host") or ""
        pass_host = upstream.get("pass_host", "pass")
        if pass_host == "rewrite":
            host = upstream.get("upstream_host") or client_host
        elif pass_host == "node":
            host = target if node.port not in (None, 80, 443) else node.host
        else:
            host = client_host
        forwarded_for = self.headers.get("X-Forwarded-For")
        client_ip = self.client_address[0]
        return {
            "Host": host,
            "X-Real-IP": client_ip,
            "X-Forwarded-For": f"{forwarded_for}, {client_ip}" if forwarded_for else client_ip,
            "X-Forwarded-Proto": "http",
            "X-Forwarded-Host": client_host.rsplit(":", 1)[0],
            "X-Forwarded-Port": str(self.server.server_address[1]),
        }

    def _fail(
        self, status: int, match: RouteMatch, node: str | None, started: float, size: int
    ) -> None:
        self._answer(status, nginx_error_page(status), "text/html")
        self._count(match, node, status, started, None, size)

    def _answer(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in headers or []:
            if name.lower() not in ("server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._sent_bytes = len(body)

    def _count(
        self,
        match: RouteMatch | None,
        node: str | None,
        status: int,
        started: float,
        upstream_ms: float | None,
        ingress: int,
        egress: int | None = None,
    ) -> None:
        """The prometheus plugin's log phase for this request."""
        route = match.route.value if match else {}
        prometheus = (route.get("plugins") or {}).get("prometheus")
        if self.context.metrics_scope == "route" and prometheus is None:
            return
        route_label = str(route.get("id", ""))
        if prometheus and prometheus.get("prefer_name") and route.get("name"):
            route_label = route["name"]
        labels = RequestLabels(
            route=route_label,
            matched_uri=match.matched_uri if match else "",
            matched_host=match.matched_host if match else "",
            service=str(route.get("service_id", "")),
            node=node or "",
        )
        request_ms = (time.monotonic() - started) * 1000
        sent = egress if egress is not None else getattr(self, "_sent_bytes", 0)
        self.context.metrics.record(status, labels, request_ms, upstream_ms, ingress, sent)
