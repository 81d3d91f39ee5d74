"""A webhook receiver on loopback that records what it is sent, for notification tests.

It answers every POST with `status` (200 by default), or holds the request open until
`release()` when `hang` is set — a receiver that accepts the connection and never answers,
the worst case for a sender. Each request is kept (path, headers, JSON body) so a test can
check payloads and count attempts.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON (None when the body was not JSON)


class WebhookReceiver:
    """`with WebhookReceiver() as hook:` ... `hook.url`, `hook.received`; thread-safe."""

    def __init__(self, status: int = 200, hang: bool = False, path: str = "/hook"):
        self.status, self.hang, self.path = status, hang, path
        self.received: list[Received] = []
        self.in_flight = 0  # requests being held (hang)
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def release(self) -> None:
        """Let held requests (and every later one) be answered."""
        self._released.set()

    def bodies(self) -> list[Any]:
        with self._lock:
            return [request.body for request in self.received]

    def _record(self, request: Received) -> None:
        with self._lock:
            self.received.append(request)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                receiver._record(Received(self.path, dict(self.headers), body))
                if receiver.hang and not receiver._released.is_set():
                    with receiver._lock:
                        receiver.in_flight += 1
                    receiver._released.wait(60)
                    with receiver._lock:
                        receiver.in_flight -= 1
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up and closed the connection

            def log_message(self, *args: object) -> None:
                pass

        return Handler
