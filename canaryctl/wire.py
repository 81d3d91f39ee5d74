"""HTTP/1.1 over kept-alive connections, in the standard library only: the controller's wire.

Why it exists: a weight change costs the controller three requests (the gateway write and
the two members' status patches) and their CPU was most of the change's. Measured on one TLS
PATCH to a local kube-apiserver (tests/bench/bench_wire.py): urllib3 1.4 ms of CPU,
http.client 0.6 ms, this module 0.3 ms. The difference is work this controller never
needs: urllib3's URL parsing, retry and pool-key objects per request, and http.client's
header parsing through the email package. What remains is one `sendall` per request and a
small reader that handles exactly the answers an API server or a gateway sends.

What a `Pool` does and does not do:

- one origin (scheme, host, port); idle connections are reused last-in first-out, at most
  `max_idle` kept;
- a body is sent with Content-Length; an answer's body is delimited by Content-Length, by
  chunked transfer coding, or by the connection's end (1xx interim answers are skipped);
- a connection goes back to the pool only when its answer was read whole and neither side
  asked to close it; a pooled connection the server closed while idle is noticed before use
  (it polls readable) and replaced;
- nothing is ever sent twice: retrying is the caller's decision, as it must be for a lease
  update or a create;
- TLS through the caller's `ssl.SSLContext` (verification is the context's business and on
  by default there); an HTTP proxy for http origins (absolute-form targets) and through a
  CONNECT tunnel for https origins;
- failures are OSError subclasses: ConnectionError (`ProtocolError` for an answer that is not
  HTTP/1.x), TimeoutError, ssl.SSLError.

The `Response` names (`status`, `reason`, `data`, `getheaders`, `release_conn`, `drain_conn`,
`shutdown`) are urllib3's, so kubernetes.client.ApiException can be built from one. How an
answer is framed (status line, headers, chunks) is read by `canaryctl.wireformat`.
"""

from __future__ import annotations

import base64
import io
import select
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping

from canaryctl.wireformat import (
    LINE_BREAK,
    NO_BODY_STATUSES,
    Headers,
    ProtocolError,
    chunks,
    content_length,
    header_lines,
    read_headers,
    status_line,
)

__all__ = ["Headers", "Pool", "ProtocolError", "Response"]

SocketOption = tuple[int, int, int]  # (level, option, value) for setsockopt


class Pool:
    """Kept-alive connections to the origin of `base_url` (`scheme://host[:port][/prefix]`);
    request targets are taken relative to its path prefix, if any."""

    def __init__(
        self,
        base_url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        proxy: str | None = None,
        proxy_headers: Mapping[str, str] | None = None,
        socket_options: list[SocketOption] | None = None,
        max_idle: int = 10,
    ):
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) address: {base_url!r}")
        self.prefix = parts.path.rstrip("/")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        default_port = parts.port is None or parts.port == (443 if self.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._host_and_port = f"{host}:{self.port}"
        self.authority = host if default_port else self._host_and_port
        if self.scheme == "https":
            ssl_context = ssl_context or ssl.create_default_context()
        self._ssl_context = ssl_context
        self._server_hostname = server_hostname or self.host
        self._proxy = _Proxy(proxy, proxy_headers) if proxy else None
        self._socket_options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        self._socket_options.extend(socket_options or ())
        self._max_idle = max_idle
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Pool({self.scheme}://{self.authority})"

    def request(
        self,
        method: str,
        target: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: tuple[float, float] = (10.0, 30.0),
        total: float | None = None,
    ) -> Response:
        """Send one request (`target`: path and query) and read the answer's head.

        The body stays unread: read it (`data`, `lines()`) or give the connection up
        (`drain_conn()`, `close()`). `timeout` is (connect, read) in seconds. `total` also
        bounds the whole exchange: the connect and then each read get only what is left of
        it, so the answer's head and body arrive within `total` or TimeoutError is raised.
        """
        deadline = None if total is None else time.monotonic() + total
        request = self._head(method, target, headers, body) + (body or b"")
        connection = self._take(_within(timeout[0], deadline))
        try:
            connection.expect(timeout[1], deadline)
            connection.sock.sendall(request)
            return Response(self, connection, method)
        except BaseException:
            connection.close()
            raise

    def close(self) -> None:
        """Close every idle connection (answers still being read keep theirs)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _head(
        self, method: str, target: str, headers: Mapping[str, str] | None, body: bytes | None
    ) -> bytes:
        if not target.startswith("/") or " " in target or LINE_BREAK.search(target):
            raise ValueError(f"not a request target: {target[:80]!r}")
        target = self.prefix + target
        if self._proxy is not None and self.scheme == "http":
            target = f"http://{self.authority}{target}"  # absolute form, for the proxy
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.authority}"]
        lines += header_lines(headers or {})
        if self._proxy is not None and self.scheme == "http":
            lines.extend(self._proxy.header_lines)
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _take(self, connect_timeout: float) -> _Connection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return self._connect(connect_timeout)
            if not connection.dropped():
                return connection
            connection.close()

    def _give_back(self, connection: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(connection)
                return
        connection.close()

    def _connect(self, timeout: float) -> _Connection:
        address = (self._proxy.host, self._proxy.port) if self._proxy else (self.host, self.port)
        sock = socket.create_connection(address, timeout=timeout)
        try:
            for option in self._socket_options:
                sock.setsockopt(*option)
            if self._proxy is not None and self.scheme == "https":
                self._proxy.tunnel(sock, self._host_and_port)
            if self._ssl_context is not None:
                sock = self._ssl_context.wrap_socket(sock, server_hostname=self._server_hostname)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)


class Response:
    """One answer: its status and headers read, its body read on demand."""

    def __init__(self, pool: Pool, connection: _Connection, method: str):
        self._pool = pool
        self._connection: _Connection | None = connection
        reader = connection.reader
        version, self.status, self.reason = status_line(reader)
        self.headers = read_headers(reader)
        while 100 <= self.status < 200 and self.status != 101:  # interim answers: skip
            version, self.status, self.reason = status_line(reader)
            self.headers = read_headers(reader)
        tokens = (self.headers.get("connection") or "").lower()
        self._keep_alive = version == "HTTP/1.1" and "close" not in tokens
        self._chunked = "chunked" in (self.headers.get("transfer-encoding") or "").lower()
        self._remaining: int | None = None  # body bytes left; None: chunked or until close
        if method == "HEAD" or self.status in NO_BODY_STATUSES or self.status < 200:
            self._chunked, self._remaining = False, 0
        elif not self._chunked:
            length = self.headers.get("content-length")
            if length is not None:
                self._remaining = content_length(length)
            else:
                self._keep_alive = False  # the body ends where the connection does
        self._complete = self._remaining == 0
        self._data: bytes | None = None

    def getheaders(self) -> Headers:
        return self.headers

    @property
    def data(self) -> bytes:
        """The whole body (read once, then remembered); the connection is released after."""
        if self._data is None:
            try:
                self._data = b"".join(self._pieces())
            finally:
                self.release_conn()
        return self._data

    def lines(self) -> Iterator[bytes]:
        """The body's non-blank lines as they arrive (a watch stream's JSON documents)."""
        buffer = b""
        for piece in self._pieces():
            buffer += piece
            if b"\n" in buffer:
                *complete, buffer = buffer.split(b"\n")
                yield from (line for line in complete if line.strip())
        if buffer.strip():
            yield buffer

    def drain_conn(self) -> None:
        """Read and drop the rest of the body, so the connection can serve the next request."""
        try:
            for _ in self._pieces():
                pass
        finally:
            self.release_conn()

    def release_conn(self) -> None:
        """Give the connection back: to the pool if the answer was read whole, else closed."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._complete and self._keep_alive:
            self._pool._give_back(connection)
        else:
            connection.close()

    def close(self) -> None:
        """Close the connection whatever was read of the body."""
        self._complete = False
        self.release_conn()

    def shutdown(self) -> None:
        """Cut the connection under a reader blocked on another thread (it gets an error)."""
        connection = self._connection
        if connection is not None:
            socket.socket.shutdown(connection.sock, socket.SHUT_RDWR)

    def _pieces(self) -> Iterator[bytes]:
        connection = self._connection
        if self._complete:
            return
        if connection is None:
            raise ProtocolError("the body was not read whole before its connection was given up")
        reader = connection.reader
        if self._chunked:
            yield from chunks(reader)
        elif self._remaining is not None:
            while self._remaining:
                piece = reader.read1(min(self._remaining, 65536))
                if not piece:
                    raise ProtocolError(f"the body ended {self._remaining} bytes early")
                self._remaining -= len(piece)
                yield piece
        else:
            while piece := reader.read1(65536):
                yield piece
        self._complete = True


class _Connection:
    __slots__ = ("idle_check", "reader", "sock", "source")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.source = _SocketSource(sock)
        self.reader = io.BufferedReader(self.source)
        self.idle_check = select.poll()
        self.idle_check.register(sock, select.POLLIN)

    def expect(self, read_timeout: float, deadline: float | None) -> None:
        """Time limits for the next exchange: each read's, and an overall deadline (or None)."""
        self.source.read_timeout, self.source.deadline = read_timeout, deadline
        self.source.set_timeout(_within(read_timeout, deadline))  # the send's limit

    def dropped(self) -> bool:
        """Whether the idle connection was closed by the server: idle, it must not be readable."""
        try:
            return bool(self.idle_check.poll(0))
        except OSError:
            return True

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class _SocketSource(io.RawIOBase):
    """The socket as the reader's raw stream; each read waits at most what the limits leave."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.read_timeout = 30.0
        self.deadline: float | None = None
        self._timeout: float | None = None  # the socket's, as last set

    def set_timeout(self, seconds: float) -> None:
        if seconds != self._timeout:  # each change is a system call
            self.sock.settimeout(seconds)
            self._timeout = seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.deadline is not None:
            if time.monotonic() >= self.deadline:
                raise TimeoutError("the answer did not arrive within the request's deadline")
            self.set_timeout(_within(self.read_timeout, self.deadline))
        return self.sock.recv_into(buffer)


class _Proxy:
    """An HTTP proxy: its address and the headers it wants (credentials from its URL)."""

    def __init__(self, url: str, headers: Mapping[str, str] | None):
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"unsupported proxy (only http:// proxies): {parts.scheme}://...")
        self.host, self.port = parts.hostname, parts.port or 80
        all_headers = dict(headers or {})
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            secret = base64.b64encode(f"{user}:{password}".encode()).decode()
            all_headers.setdefault("Proxy-Authorization", f"Basic {secret}")
        self.header_lines = header_lines(all_headers)

    def __repr__(self) -> str:  # never the credentials
        return f"_Proxy({self.host}:{self.port})"

    def tunnel(self, sock: socket.socket, authority: str) -> None:
        """Ask the proxy for a tunnel to `authority`; ConnectionError if it refuses."""
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", *self.header_lines]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        reader = sock.makefile("rb", buffering=0)  # unbuffered: TLS bytes must stay unread
        try:
            _, status, reason = status_line(reader)
            read_headers(reader)
        finally:
            reader.close()
        if status != 200:
            raise ConnectionError(f"the proxy refused the tunnel to {authority}: {status} {reason}")


def _within(seconds: float, deadline: float | None) -> float:
    """`seconds`, cut to what is left until `deadline` (a small positive minimum)."""
    if deadline is None:
        return seconds
    return max(min(seconds, deadline - time.monotonic()), 0.001)
