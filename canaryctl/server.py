"""The controller's small HTTP endpoints: `/metrics` on one address, health probes on another.

`/healthz` and `/readyz` share a port. Stdlib `ThreadingHTTPServer` on daemon threads:
nothing here may block the controller's shutdown. Readiness is a callable so the wiring
decides what "synced" means. `/metrics` may be served over TLS behind a guard
(`run --metrics-secure`: Kubernetes authentication and authorization, see
`delegated_auth`); the health probes stay plain HTTP on their own port, as the kubelet
expects.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)
TLS_HANDSHAKE_TIMEOUT = 10.0  # seconds; also the idle limit of a connection

Response = tuple[int, str, bytes]  # status, content type, body
# (method, path, Authorization header or None) -> a refusal to send instead, or None to go on
Guard = Callable[[str, str, str | None], Response | None]


def parse_address(address: str) -> tuple[str, int]:
    """`:8080` (or a bare `8080`) -> ("0.0.0.0", 8080); `127.0.0.1:0` -> ("127.0.0.1", 0)."""
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"address {address!r} must look like HOST:PORT or :PORT")
    return (host.strip("[]") or "0.0.0.0", int(port))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, object]:
        """Wrap accepted connections in TLS; the handshake runs in the connection's thread."""
        connection, peer = super().get_request()
        if self.tls is None:
            return connection, peer
        return self.tls.wrap_socket(
            connection, server_side=True, do_handshake_on_connect=False
        ), peer

    def handle_error(self, request, client_address) -> None:
        """A scraper that hangs up or fails the handshake is worth a debug line, not a traceback."""
        log.debug("connection from %s failed", client_address[0], exc_info=True)


class Endpoint:
    """One HTTP(S) listener serving a fixed table of GET paths, optionally behind a guard."""

    def __init__(
        self,
        address: str,
        routes: dict[str, Callable[[], Response]],
        *,
        tls: ssl.SSLContext | None = None,
        guard: Guard | None = None,
    ):
        routes = dict(routes)

        class Handler(BaseHTTPRequestHandler):
            timeout = TLS_HANDSHAKE_TIMEOUT

            def setup(self) -> None:
                super().setup()  # applies `timeout` to the socket first
                if isinstance(self.connection, ssl.SSLSocket):
                    self.connection.do_handshake()

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                refusal = guard("GET", path, self.headers.get("Authorization")) if guard else None
                route = routes.get(path)
                status, content_type, body = refusal or (
                    route() if route else (404, "text/plain", b"not found\n")
                )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # probes every few seconds: not worth a log line
                pass

        self._server = _Server(parse_address(address), Handler)
        self._server.tls = tls
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"http-{address}", daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> Endpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def metrics_endpoint(
    address: str,
    registry: CollectorRegistry,
    *,
    tls: ssl.SSLContext | None = None,
    guard: Guard | None = None,
) -> Endpoint:
    """`/metrics`: plain HTTP by default; HTTPS behind `guard` for `run --metrics-secure`."""
    return Endpoint(
        address,
        {"/metrics": lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry))},
        tls=tls,
        guard=guard,
    )


# What Controller calls to serve /metrics: `metrics_endpoint`, or it with TLS and a guard bound.
MetricsEndpointFactory = Callable[[str, CollectorRegistry], Endpoint]


def health_endpoint(address: str, ready: Callable[[], bool]) -> Endpoint:
    def readyz() -> tuple[int, str, bytes]:
        return (
            (200, "text/plain", b"ok\n") if ready() else (503, "text/plain", b"caches not synced\n")
        )

    return Endpoint(address, {"/healthz": lambda: (200, "text/plain", b"ok\n"), "/readyz": readyz})
