"""A stdlib HTTP server on a background thread that really stops, and Ctrl-C/SIGTERM handling.

`ThreadingHTTPServer.shutdown()` only ends the accept loop: keep-alive connections stay
open and their handler threads keep answering. Tests need `stop()` to mean "nothing of this
server is left", so connections are tracked, shut down, and their threads joined. Shared by
the example backend (`canaryctl.examples.errorpage`) and every emulator of the test kit.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

_JOIN_TIMEOUT_S = 5.0


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler with helpers; logs to `logging` at debug level."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = (
        True  # headers and body go out in two writes: avoid 40 ms delayed-ACK stalls
    )
    timeout = 120  # an idle keep-alive connection ends after this many seconds
    server: _TrackingServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_bytes(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def drop_connection(self) -> None:
        """End the connection without sending anything."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _TrackingServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that remembers its open connections and handler threads."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], context: Any
    ):
        self.context = context
        self.stopping = threading.Event()
        self._tracked_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (e.g. after its read timeout) is normal here, not a traceback."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            log.debug("client %s went away", client_address)
            return
        super().handle_error(request, client_address)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            daemon=True,
            name=f"http-{self.server_address[1]}",
        )
        with self._tracked_lock:
            self._connections.add(request)
            self._handler_threads.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._tracked_lock:
                self._connections.discard(request)
                self._handler_threads.discard(threading.current_thread())

    def close_connections(self) -> list[threading.Thread]:
        """Shut every open connection down; returns the handler threads to join."""
        with self._tracked_lock:
            connections, threads = list(self._connections), list(self._handler_threads)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return threads


class BackgroundHTTPServer:
    """Binds at construction (so the port is known), serves on a thread after `start()`."""

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        context: Any,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self._server = _TrackingServer((host, port), handler, context)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"http-accept-{self.port}",
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close every connection, join every thread, close the socket."""
        self._server.stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(_JOIN_TIMEOUT_S)
        for thread in self._server.close_connections():
            thread.join(_JOIN_TIMEOUT_S)
        self._server.server_close()


@contextlib.contextmanager
def stop_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while inside the block (handlers restored after)."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
