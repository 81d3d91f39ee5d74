"""The controller's small HTTP endpoints: `/metrics` on one address, `/healthz` + `/readyz` on another.

Stdlib `ThreadingHTTPServer` on daemon threads: nothing here may block the controller's
shutdown. Readiness is a callable so the wiring decides what "synced" means.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def parse_address(address: str) -> tuple[str, int]:
    """`:8080` (or a bare `8080`) -> ("0.0.0.0", 8080); `127.0.0.1:0` -> ("127.0.0.1", 0)."""
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"address {address!r} must look like HOST:PORT or :PORT")
    return (host.strip("[]") or "0.0.0.0", int(port))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Endpoint:
    """One HTTP listener serving a fixed table of GET paths."""

    def __init__(self, address: str, routes: dict[str, Callable[[], tuple[int, str, bytes]]]):
        routes = dict(routes)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path.split("?", 1)[0])
                status, content_type, body = (
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


def metrics_endpoint(address: str, registry: CollectorRegistry) -> Endpoint:
    return Endpoint(
        address, {"/metrics": lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry))}
    )


def health_endpoint(address: str, ready: Callable[[], bool]) -> Endpoint:
    def readyz() -> tuple[int, str, bytes]:
        return (
            (200, "text/plain", b"ok\n") if ready() else (503, "text/plain", b"caches not synced\n")
        )

    return Endpoint(address, {"/healthz": lambda: (200, "text/plain", b"ok\n"), "/readyz": readyz})
