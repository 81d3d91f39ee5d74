"""A local receiver for release hooks: records every call, answers as a test tells it to.

Release hooks (`canaryctl.release.hooks`) are HTTP POSTs to URLs of the user's choosing. To
test them for real — the controller's client, its timeouts, retries and verdicts — tests
point the hook annotations at this server on 127.0.0.1 and script its answers per path:
a status and body, a delay (longer than the client's budget, it is a hanging hook), for the
next N calls or for all. `load_on_call` turns a path into a load-generating hook, the way
Flagger's load tester is used: a call starts `canaryctl.demo.traffic.LoadGenerator` against a
gateway for a while and answers at once, so a release can bring its own traffic.

`stop()` ends every pending delay first, so a test never waits for a hook it made hang.
Each answer closes its connection (HTTP/1.0), as canaryctl's hook client opens one per call.
Given a server TLS context, it speaks HTTPS instead.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from canaryctl.demo.traffic import LoadGenerator

log = logging.getLogger(__name__)


@dataclass
class Answer:
    """How the receiver answers a call: after `delay_s`, with `status` and `body`."""

    status: int = 200
    body: str = "ok"
    delay_s: float = 0.0
    times: int | None = None  # how many calls it answers (None: every call from now on)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReceivedCall:
    path: str
    payload: Any  # the JSON body, parsed (None when it was not JSON)
    headers: dict[str, str]
    at: float  # time.monotonic() when it arrived


@dataclass(frozen=True)
class Load:
    """Traffic a load hook starts: `rate` requests/s with `Host: host` to `url` for `seconds`."""

    url: str
    host: str = "error-page"
    rate: float = 50.0
    seconds: float = 30.0


class _Context:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[ReceivedCall] = []
        self.answers: dict[str, deque[Answer]] = {}
        self.loads: dict[str, Load] = {}
        self.generators: list[LoadGenerator] = []
        self.stopping = threading.Event()

    def next_answer(self, path: str) -> Answer:
        with self.lock:
            queued = self.answers.get(path)
            if not queued:
                return Answer()
            answer = queued[0]
            if answer.times is not None:
                answer.times -= 1
                if answer.times <= 0:
                    queued.popleft()
            return answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], context: _Context):
        self.context = context
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server_version = "hookreceiver"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def do_POST(self) -> None:
        context = self.server.context
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            payload = None
        path = self.path.split("?", 1)[0]
        call = ReceivedCall(path, payload, dict(self.headers.items()), time.monotonic())
        with context.lock:
            context.calls.append(call)
            load = context.loads.get(path)
        if load is not None:
            generator = LoadGenerator(load.url, load.host, load.rate, load.seconds)
            with context.lock:
                context.generators.append(generator)
            generator.__enter__()
        answer = context.next_answer(path)
        if answer.delay_s and context.stopping.wait(answer.delay_s):
            return  # stopping: the connection closes without an answer
        content = answer.body.encode()
        self.send_response(answer.status)
        for name, value in {"Content-Type": "text/plain", **answer.headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_PUT = do_GET = do_POST


class HookReceiver:
    """Hook endpoints on 127.0.0.1; a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None):
        self._context = _Context()
        self._server = _Server((host, port), self._context)
        self._scheme = "https" if tls else "http"
        if tls is not None:  # each accepted connection does its TLS handshake in accept()
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> HookReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> HookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        """End pending delays, stop load generators, then the server."""
        self._context.stopping.set()
        with self._context.lock:
            generators = list(self._context.generators)
        for generator in generators:
            generator.stop()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def url(self, path: str = "/hook") -> str:
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{host!s}:{port}{path}"

    def answer(self, path: str, *answers: Answer) -> None:
        """Answer calls to `path` with `answers` in turn (then 200 "ok" when they run out)."""
        with self._context.lock:
            self._context.answers[path] = deque(answers)

    def load_on_call(self, path: str, load: Load) -> None:
        """Each call to `path` starts `load` in the background (and is answered as usual)."""
        with self._context.lock:
            self._context.loads[path] = load

    def calls(self, path: str | None = None) -> list[ReceivedCall]:
        with self._context.lock:
            return [call for call in self._context.calls if path is None or call.path == path]

    def load_counts(self) -> dict[str, int]:
        """Answers by version over every load generator started so far."""
        totals: dict[str, int] = {}
        with self._context.lock:
            generators = list(self._context.generators)
        for generator in generators:
            for answer, count in generator.counts().items():
                totals[answer] = totals.get(answer, 0) + count
        return totals
