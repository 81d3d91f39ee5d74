"""The emulator's gateway: routes requests the way the configured split says, and proxies them.

This is what lets a test count responses like the seed does with curl: send 100 requests
with `Host: error-page` and see how many reach v2. Routing decisions live in `routing`;
this module only does the HTTP: find the app by `Host` (port stripped), proxy to the chosen
target with the same method, path, query, headers and body, and hand back the backend's
status, body and content type.

- Unknown host or path: 404 `{"error_msg": "404 Route Not Found"}` (APISIX's answer).
- Upstream without targets: 503; target unreachable or timing out: 502.
- Targets `host:port` resolve through the static map (`resolve`), else DNS. Metrics label
  `node` with the target as configured, never the resolved address.
- `GET /apisix/prometheus/metrics` (APISIX's exporter path) serves the metrics for any
  Host: that path is reserved and never proxied.
- `Host` sent upstream: the client's (APISIX `pass_host: pass`), or `upstream.upstream_host`
  when `upstream_host_mode` is `rewrite`.
- A test can make the split of an app's percent canary differ from its configuration
  (`overrides`, keyed by app name or id: `[canary weight, default weight]`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from email.message import Message
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST

from canaryctl.backgroundhttp import QuietHandler
from canaryctl.testing.api7cloud.routing import (
    ApiMatch,
    Balancers,
    RequestFacts,
    choose_target,
    choose_version,
    match_api,
    upstream_by_version,
)
from canaryctl.testing.api7cloud.store import PublishedApp, Store
from canaryctl.testing.apisix.dataplane import SplitOverrides
from canaryctl.testing.apisix.metrics import METRICS_PATH, ApisixMetrics
from canaryctl.testing.httpemulation.proxy import UpstreamReply, forward, forwardable
from canaryctl.testing.httpemulation.resolve import Resolver, host_without_port

_DEFAULT_PORTS = {"http": 80, "https": 443}
_DEFAULT_TIMEOUT_S = 30.0


@dataclass
class DataPlaneContext:
    store: Store
    resolver: Resolver
    metrics: ApisixMetrics
    balancers: Balancers
    overrides: SplitOverrides


def _request_facts(headers: Message, query: str) -> RequestFacts:
    cookies: dict[str, str] = {}
    try:
        jar = SimpleCookie(headers.get("Cookie") or "")
        cookies = {name: morsel.value for name, morsel in jar.items()}
    except CookieError:
        pass
    return RequestFacts(
        headers={name.lower(): value for name, value in headers.items()},
        query={key: values[0] for key, values in parse_qs(query, keep_blank_values=True).items()},
        cookies=cookies,
    )


class DataPlaneHandler(QuietHandler):
    """One client connection to the data-plane port."""

    server_version = "APISIX/2.15.1"  # the version the seed deploys
    sys_version = ""

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    @property
    def context(self) -> DataPlaneContext:
        return self.server.context

    def _handle(self) -> None:
        started = time.monotonic()
        url = urlsplit(self.path)
        body = self.read_body()
        if url.path == METRICS_PATH:
            self.send_bytes(200, self.context.metrics.exposition(), CONTENT_TYPE_LATEST)
            return
        host = host_without_port(self.headers.get("Host") or "")
        for published in self.context.store.published_apps(host):
            match = match_api(published.app, published.apis, self.command, url.path)
            if match is not None:
                self._proxy(published, match, host, url.query, body, started)
                return
        self._send_json(404, {"error_msg": "404 Route Not Found"})

    def _proxy(
        self,
        published: PublishedApp,
        match: ApiMatch,
        host: str,
        query: str,
        body: bytes,
        started: float,
    ) -> None:
        app, ctx = published.app, self.context
        override = ctx.overrides.get(app["id"]) or ctx.overrides.get(app.get("name") or "")
        facts = _request_facts(self.headers, query)
        version = choose_version(app, published.live_canary, facts, ctx.balancers, override)
        upstream = upstream_by_version(app, version) or {}
        target = choose_target(app["id"], upstream, ctx.balancers)
        if target is None:
            self._send_json(503, {"error_msg": "503 Service Unavailable: no upstream target"})
            return
        scheme = (upstream.get("upstream") or {}).get("scheme") or "http"
        port = target.get("port") or _DEFAULT_PORTS.get(scheme, 80)
        node = f"{target['host']}:{port}"
        upstream_started = time.monotonic()
        path = match.forward_path + (f"?{query}" if query else "")
        reply = self._call_upstream(
            upstream, scheme, ctx.resolver.resolve(target["host"], port), path, body
        )
        finished = time.monotonic()
        ctx.metrics.observe(
            code=reply.status,
            route=match.api["id"],
            matched_uri=match.matched_uri,
            matched_host=host,
            service=app["id"],
            node=node,
            request_ms=(finished - started) * 1000,
            upstream_ms=(finished - upstream_started) * 1000,
        )
        self.send_bytes(reply.status, reply.body, reply.content_type or "application/octet-stream")

    def _call_upstream(
        self, upstream: dict, scheme: str, address: tuple[str, int], path: str, body: bytes
    ) -> UpstreamReply:
        settings = upstream.get("upstream") or {}
        timeout = float(((settings.get("timeout") or {}).get("read")) or _DEFAULT_TIMEOUT_S)
        headers = forwardable(self.headers.items())
        rewrite = settings.get("upstream_host_mode") == "rewrite" and settings.get("upstream_host")
        headers["Host"] = rewrite or self.headers.get("Host") or ""
        reply = forward(self.command, scheme, address, path, headers, body, timeout)
        if reply.failure is not None:
            return UpstreamReply(
                502,
                json.dumps({"error_msg": "502 Bad Gateway"}).encode(),
                (("Content-Type", "application/json"),),
            )
        return reply

    def _send_json(self, status: int, payload: dict) -> None:
        self.send_bytes(status, json.dumps(payload).encode(), "application/json")
