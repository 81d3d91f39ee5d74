"""canaryctl.wire, the controller's HTTP/1.1 client, against real servers on 127.0.0.1.

The servers here speak raw HTTP/1.1 from byte strings, so every framing case is exact: keep-alive
and when a connection must not be reused (body not read whole, `Connection: close`, HTTP/1.0,
body until close), an idle connection the server closed, chunked bodies with lines and trailers
split across chunks, 1xx interim answers, 204/304/HEAD without a body, malformed and cut-off
answers (ProtocolError, an OSError as every failure of the wire), the request bytes (Host,
Content-Length, path prefix, no header injection), read timeouts and the `total` deadline,
`shutdown()` under a blocked stream reader, TLS with a self-signed certificate, an HTTP proxy
(absolute-form targets, CONNECT tunnels, Basic credentials never shown) and `max_idle`.
Servers count the TCP connections they accept: that is how reuse is observed. Impossible
chunk sizes, non-ASCII Content-Length digits, request targets that would inject header lines and
IPv6 CONNECT authorities are covered too: a lenient parser or formatter lets them out as
non-OSErrors (OverflowError, MemoryError, ValueError) or as wrong bytes on the wire.
"""

from __future__ import annotations

import base64
import socket
import socketserver
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from canaryctl import tls, wire, wireformat
from canaryctl.tls import selfsigned

pytestmark = pytest.mark.timeout(10)

# --- raw HTTP/1.1 servers ------------------------------------------------------------------------


@dataclass
class Seen:
    """One request as a server read it."""

    connection: int  # the server's number for the TCP connection it came on (0, 1, ...)
    line: str  # request line, without CRLF
    headers: dict[str, str]  # lower-case names, repeated ones joined with ", "
    body: bytes
    head: bytes  # request line and headers, raw, with the blank line


def read_message(reader) -> tuple[bytes, dict[str, str], bytes] | None:
    """A request or a Content-Length-delimited answer: raw head, headers, body; None at EOF."""
    first = reader.readline()
    if not first:
        return None
    head, headers = first, {}
    while True:
        line = reader.readline()
        if not line:
            raise ConnectionError("the head was cut off")
        head += line
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    body = reader.read(int(headers.get("content-length", "0")))
    return head, headers, body


class Peer:
    """One accepted connection, as a serve function sees it."""

    def __init__(self, server: RawServer, sock: socket.socket, index: int):
        self.server, self.sock, self.index = server, sock, index
        self.reader = sock.makefile("rb")

    def read_request(self) -> Seen | None:
        """The next request on this connection (recorded in server.seen); None when it closed."""
        try:
            message = read_message(self.reader)
        except OSError:
            return None
        if message is None:
            return None
        head, headers, body = message
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        seen = Seen(self.index, line, headers, body, head)
        with self.server.lock:
            self.server.seen.append(seen)
        return seen

    def send(self, *pieces: bytes) -> None:
        for piece in pieces:
            self.sock.sendall(piece)

    def wait_closed(self) -> None:
        """Block until the client closes the connection (or the server is closed)."""
        while self.read_request() is not None:
            pass


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: RawServer = self.server  # type: ignore[assignment]
        sock: socket.socket = self.request
        sock.settimeout(30.0)  # longer than any wait in a test: a timeout never ends a handler
        with server.lock:
            index = server.numbers.pop(sock)
        try:
            if server.tls is not None:
                sock = server.tls.wrap_socket(sock, server_side=True)
                with server.lock:
                    server.sockets.append(sock)
            server.serve(Peer(server, sock, index))
        except OSError:  # includes the client refusing our certificate, and resets
            pass
        finally:
            sock.close()
            with server.lock:
                server.ended += 1


class RawServer(socketserver.ThreadingTCPServer):
    """Runs `serve(peer)` on a thread for each accepted connection; counts them."""

    allow_reuse_address = True
    daemon_threads = False
    block_on_close = True  # server_close joins the handler threads

    def __init__(self, serve: Callable[[Peer], None], tls: ssl.SSLContext | None = None):
        self.serve, self.tls = serve, tls
        self.lock = threading.Lock()
        self.connections = 0  # TCP connections accepted (counted as accepted, in order)
        self.numbers: dict[socket.socket, int] = {}
        self.ended = 0  # connections whose handler finished (the client closed, usually)
        self.seen: list[Seen] = []
        self.sockets: list[socket.socket] = []
        super().__init__(("127.0.0.1", 0), _Handler)
        self.port = self.server_address[1]
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.005}, daemon=True
        )
        self._thread.start()

    def process_request(self, request, client_address) -> None:
        with self.lock:  # on the accepting thread: a connection counts before it is served
            self.numbers[request] = self.connections
            self.connections += 1
            self.sockets.append(request)
        super().process_request(request, client_address)

    def close(self) -> None:
        with self.lock:
            sockets = list(self.sockets)
        for sock in sockets:  # unblock handlers waiting on a client
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        self.shutdown()
        self.server_close()
        self._thread.join(5)


def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.002)


def head(status: str, *headers: str, version: str = "HTTP/1.1") -> bytes:
    return ("\r\n".join([f"{version} {status}", *headers]) + "\r\n\r\n").encode("latin-1")


def answer(body: bytes = b"", *headers: str, status: str = "200 OK") -> bytes:
    return head(status, f"Content-Length: {len(body)}", *headers) + body


def chunk(piece: bytes, extension: str = "") -> bytes:
    return f"{len(piece):x}{extension}\r\n".encode() + piece + b"\r\n"


def last_chunk(*trailers: str) -> bytes:
    return b"0\r\n" + "".join(f"{trailer}\r\n" for trailer in trailers).encode() + b"\r\n"


def replies(reply: Callable[[Seen], bytes]) -> Callable[[Peer], None]:
    """A keep-alive server: answers every request on a connection with `reply(request)`."""

    def serve(peer: Peer) -> None:
        while (request := peer.read_request()) is not None:
            peer.send(reply(request))

    return serve


def ok(body: bytes = b"ok") -> Callable[[Peer], None]:
    return replies(lambda request: answer(body))


def once(payload: bytes) -> Callable[[Peer], None]:
    """Answer the first request with `payload` and close the connection."""

    def serve(peer: Peer) -> None:
        if peer.read_request() is not None:
            peer.send(payload)

    return serve


@pytest.fixture
def start() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(serve: Callable[[Peer], None], tls: ssl.SSLContext | None = None) -> RawServer:
        server = RawServer(serve, tls)
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        server.close()


@pytest.fixture
def pool_for() -> Iterator[Callable[..., wire.Pool]]:
    """A Pool for a server (or an address), closed after the test."""
    pools: list[wire.Pool] = []

    def make(server: RawServer | str, **options) -> wire.Pool:
        url = server if isinstance(server, str) else f"http://127.0.0.1:{server.port}"
        pools.append(wire.Pool(url, **options))
        return pools[-1]

    yield make
    for pool in pools:
        pool.close()


def get(pool: wire.Pool, target: str = "/", **options) -> wire.Response:
    return pool.request("GET", target, timeout=(5.0, 5.0), **options)


# --- keep-alive ------------------------------------------------------------------------------


def test_sequential_requests_share_one_connection(start, pool_for):
    server = start(replies(lambda request: answer(request.line.encode())))
    pool = pool_for(server)
    assert get(pool, "/one").data == b"GET /one HTTP/1.1"
    assert get(pool, "/two").data == b"GET /two HTTP/1.1"
    assert get(pool, "/three").data == b"GET /three HTTP/1.1"
    assert server.connections == 1
    assert [seen.connection for seen in server.seen] == [0, 0, 0]


@pytest.mark.parametrize("give_up", ["release_conn", "close"])
def test_an_answer_not_read_whole_is_not_reused(start, pool_for, give_up):
    server = start(ok(b"x" * 1000))
    pool = pool_for(server)
    response = get(pool)
    getattr(response, give_up)()
    eventually(lambda: server.ended == 1)  # the client closed the connection
    assert get(pool).data == b"x" * 1000
    assert server.connections == 2


def test_a_stream_left_part_way_is_not_reused(start, pool_for):
    body = chunk(b"a\n") + chunk(b"b\n") + last_chunk()
    server = start(replies(lambda request: head("200 OK", "Transfer-Encoding: chunked") + body))
    pool = pool_for(server)
    response = get(pool)
    lines = response.lines()
    assert next(lines) == b"a"
    response.close()
    assert get(pool).data == b"a\nb\n"
    assert server.connections == 2


def test_close_closes_even_after_the_body_was_read_whole(start, pool_for):
    server = start(replies(lambda request: answer(b"one\ntwo\n")))
    pool = pool_for(server)
    response = get(pool)
    assert list(response.lines()) == [b"one", b"two"]
    response.close()  # what a watch does when its stream ends: never pooled
    eventually(lambda: server.ended == 1)
    assert get(pool).data == b"one\ntwo\n"
    assert server.connections == 2


@pytest.mark.parametrize(
    "first",
    [
        answer(b"bye", "Connection: close"),
        answer(b"bye", "Connection: Close"),
        answer(b"bye", "Connection: keep-alive, close"),
        head("200 OK", "Content-Length: 3", version="HTTP/1.0") + b"bye",
    ],
    ids=["close", "Close", "token-list", "http/1.0"],
)
def test_an_answer_that_ends_the_connection_is_not_reused(start, pool_for, first):
    # the server keeps its side open and would answer again on it: only the client's choice
    # can make the second request take a new connection
    server = start(replies(lambda request: first if request.connection == 0 else answer(b"new")))
    pool = pool_for(server)
    assert get(pool).data == b"bye"
    eventually(lambda: server.ended == 1)  # and the client closed it
    assert get(pool).data == b"new"
    assert server.connections == 2


def test_a_body_until_close_is_read_whole_and_the_connection_closed(start, pool_for):
    def serve(peer: Peer) -> None:
        peer.read_request()
        peer.send(head("200 OK"), b"no length, " * 10000)
        peer.sock.shutdown(socket.SHUT_WR)  # the body ends here; the server still listens
        peer.wait_closed()

    server = start(serve)
    pool = pool_for(server)
    assert get(pool).data == b"no length, " * 10000
    eventually(lambda: server.ended == 1)  # the client closed it: not pooled
    assert get(pool).data == b"no length, " * 10000
    assert server.connections == 2


def test_an_idle_connection_the_server_closed_is_replaced(start, pool_for):
    # a keep-alive answer, then the server closes the connection while it sits in the pool
    server = start(once(answer(b"first")))
    pool = pool_for(server)
    assert get(pool).data == b"first"
    eventually(lambda: server.ended == 1)
    assert get(pool).data == b"first"  # not ProtocolError: the dead connection was skipped
    assert server.connections == 2
    assert [seen.connection for seen in server.seen] == [0, 1]  # nothing sent on the dead one


def test_nothing_is_sent_twice_when_the_server_hangs_up_without_answering(start, pool_for):
    def serve(peer: Peer) -> None:
        peer.read_request()  # and close

    server = start(serve)
    pool = pool_for(server)
    with pytest.raises(wire.ProtocolError, match="without answering"):
        pool.request("POST", "/leases", body=b"{}", timeout=(5.0, 5.0))
    assert len(server.seen) == 1 and server.connections == 1


def test_pool_close_closes_the_idle_connections(start, pool_for):
    server = start(ok())
    pool = pool_for(server)
    assert get(pool).data == b"ok"
    pool.close()
    eventually(lambda: server.ended == 1)
    assert get(pool).data == b"ok"
    assert server.connections == 2


def test_socket_options_are_set_on_each_connection(start, pool_for):
    server = start(ok())
    keepalive = (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    pool = pool_for(server, socket_options=[keepalive])
    assert get(pool).data == b"ok"
    (connection,) = pool._idle
    assert connection.sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    assert connection.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_drain_conn_reads_the_rest_and_keeps_the_connection(start, pool_for):
    chunked = head("200 OK", "Transfer-Encoding: chunked") + chunk(b"x" * 100) + last_chunk()
    answers = iter([answer(b"y" * 70000), chunked, answer(b"last")])
    server = start(replies(lambda request: next(answers)))
    pool = pool_for(server)
    get(pool).drain_conn()
    get(pool).drain_conn()
    assert get(pool).data == b"last"
    assert server.connections == 1


def test_data_is_read_once_and_remembered(start, pool_for):
    server = start(ok(b"body"))
    pool = pool_for(server)
    response = get(pool)
    assert response.data is response.data
    assert response.data == b"body"
    response.release_conn()  # a second release is harmless
    assert get(pool).data == b"body"
    assert server.connections == 1


@pytest.mark.parametrize("max_idle, kept", [(1, 1), (2, 2), (0, 0)])
def test_max_idle_bounds_the_connections_kept(start, pool_for, max_idle, kept):
    server = start(ok())
    pool = pool_for(server, max_idle=max_idle)
    first, second = get(pool), get(pool)  # two answers in flight: two connections
    assert server.connections == 2
    assert (first.data, second.data) == (b"ok", b"ok")  # both released, whole
    eventually(lambda: server.ended == 2 - kept)  # the ones not kept were closed
    third, fourth = get(pool), get(pool)  # again two at once: the kept ones are reused
    assert server.connections == 2 + (2 - kept)
    assert (third.data, fourth.data) == (b"ok", b"ok")


def test_threads_sharing_a_pool_each_get_their_own_answers(start, pool_for):
    server = start(replies(lambda request: answer(request.line.encode())))
    pool = pool_for(server, max_idle=4)
    mismatches: list[str] = []

    def work(worker: int) -> None:
        for n in range(25):
            target = f"/w{worker}/{n}"
            data = get(pool, target).data
            if data != f"GET {target} HTTP/1.1".encode():
                mismatches.append(f"{target} got {data!r}")

    workers = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(8)
    assert not any(worker.is_alive() for worker in workers)
    assert mismatches == [] and len(server.seen) == 150
    assert server.connections < 75  # connections were reused...
    eventually(lambda: server.connections - server.ended <= 4)  # ...and at most max_idle kept


# --- bodies ------------------------------------------------------------------------------------


def test_a_content_length_body_larger_than_one_read(start, pool_for):
    body = bytes(range(256)) * 1000  # 256 000 bytes: several reads of 64 KiB
    server = start(ok(body))
    pool = pool_for(server)
    assert get(pool).data == body
    assert get(pool).data == body
    assert server.connections == 1


def test_a_chunked_body_is_joined_and_its_trailers_consumed(start, pool_for):
    body = (
        chunk(b"hel", ";name=value")
        + chunk(b"lo ")
        + chunk(b"world" * 3000)
        + last_chunk("X-Checksum: 42", "X-Other: 1")
    )
    answers = iter([head("200 OK", "Transfer-Encoding: chunked") + body, answer(b"next")])
    server = start(replies(lambda request: next(answers)))
    pool = pool_for(server)
    assert get(pool).data == b"hello " + b"world" * 3000
    assert get(pool).data == b"next"  # the trailers were read: the next answer parses
    assert server.connections == 1


def test_lines_are_joined_across_chunks_and_blank_lines_skipped(start, pool_for):
    pieces = [
        b'{"type": "ADDED", ',
        b'"name": "caf\xc3',  # a UTF-8 sequence split between chunks, too
        b'\xa9"}\n\n{"type": "MODIFIED"}\n',
        b"\n",
        b"   \n",
        b'{"type": "DELETED"}\n{"type": "BOOKMARK"}',  # the last line has no newline
    ]
    stream = head("200 OK", "Transfer-Encoding: chunked")
    stream += b"".join(chunk(piece) for piece in pieces) + last_chunk("X-Trailer: yes")
    answers = iter([stream, answer(b"after")])
    server = start(replies(lambda request: next(answers)))
    pool = pool_for(server)
    response = get(pool)
    assert list(response.lines()) == [
        '{"type": "ADDED", "name": "café"}'.encode(),
        b'{"type": "MODIFIED"}',
        b'{"type": "DELETED"}',
        b'{"type": "BOOKMARK"}',
    ]
    response.release_conn()  # read whole (trailers too): back to the pool
    assert get(pool).data == b"after"
    assert server.connections == 1


def test_lines_are_handed_out_as_they_arrive(start, pool_for):
    more = threading.Event()

    def serve(peer: Peer) -> None:
        peer.read_request()
        peer.send(head("200 OK", "Transfer-Encoding: chunked"), chunk(b'{"n": 1}\n{"n"'))
        more.wait(5)
        peer.send(chunk(b": 2}\n"), last_chunk())
        peer.wait_closed()

    server = start(serve)
    response = get(pool_for(server), "/watch")
    lines = response.lines()
    assert next(lines) == b'{"n": 1}'  # before the rest of the body was even sent
    more.set()
    assert list(lines) == [b'{"n": 2}']
    response.close()


def test_interim_answers_are_skipped(start, pool_for):
    interim = head("100 Continue") + head("103 Early Hints", "Link: </style.css>; rel=preload")
    answers = iter([interim + answer(b"created", status="201 Created"), answer(b"next")])
    server = start(replies(lambda request: next(answers)))
    pool = pool_for(server)
    response = pool.request("POST", "/things", body=b'{"a": 1}', timeout=(5.0, 5.0))
    assert (response.status, response.reason) == (201, "Created")
    assert "link" not in response.headers  # the final answer's headers only
    assert response.data == b"created"
    assert get(pool).data == b"next"
    assert server.seen[0].body == b'{"a": 1}'
    assert server.connections == 1


@pytest.mark.parametrize(
    "method, first",
    [
        ("GET", head("204 No Content")),
        ("GET", head("304 Not Modified", "Content-Length: 500", 'ETag: "1"')),
        ("HEAD", head("200 OK", "Content-Length: 1000")),
        ("HEAD", head("200 OK", "Transfer-Encoding: chunked")),
    ],
    ids=["204", "304", "HEAD-length", "HEAD-chunked"],
)
def test_answers_without_a_body_keep_the_connection(start, pool_for, method, first):
    # the body these heads announce never comes: a client waiting for it would time out
    answers = iter([first, answer(b"next")])
    server = start(replies(lambda request: next(answers)))
    pool = pool_for(server)
    response = pool.request(method, "/", timeout=(5.0, 0.5))
    assert response.data == b""
    assert get(pool).data == b"next"
    assert server.connections == 1


@pytest.mark.parametrize(
    "payload",
    [
        head("200 OK", "Content-Length: 10") + b"only4",
        head("200 OK", "Transfer-Encoding: chunked") + b"a\r\nabc",
        head("200 OK", "Transfer-Encoding: chunked") + chunk(b"complete"),  # no last chunk
        head("200 OK", "Transfer-Encoding: chunked") + b"3\r\nabcXY0\r\n\r\n",  # no CRLF after
        head("200 OK", "Transfer-Encoding: chunked") + b"zz\r\n",
        head("200 OK", "Transfer-Encoding: chunked") + last_chunk()[:-2] + b"X-Cut",
    ],
    ids=["length", "chunk-payload", "no-last-chunk", "chunk-crlf", "chunk-size", "trailers"],
)
def test_a_body_that_ends_early_or_is_not_chunked_right_is_a_protocol_error(
    start, pool_for, payload
):
    server = start(once(payload))
    response = get(pool_for(server))
    with pytest.raises(wire.ProtocolError) as raised:
        response.data  # noqa: B018 - reading the body is the test
    assert isinstance(raised.value, ConnectionError)  # an OSError, as every failure of the wire


@pytest.mark.parametrize(
    "size",
    [
        b"ffffffffffffffffffff",  # int() takes it; reading that much: OverflowError
        b"7fffffffffffffff",  # read(size) would allocate it first: MemoryError
        b"100000000",  # more than 8 hex digits
        b"-1",  # read(-1) would wait for the connection's end
        b"+1",
        b"0x10",
        b"1_0",
        b"",
        b"   ",
    ],
    ids=[
        "beyond-ssize_t",
        "ssize_t-max",
        "9-digits",
        "negative",
        "plus",
        "0x",
        "underscore",
        "empty",
        "blank",
    ],
)
def test_an_impossible_chunk_size_is_a_protocol_error_at_once(start, pool_for, size):
    def serve(peer: Peer) -> None:
        peer.read_request()
        peer.send(head("200 OK", "Transfer-Encoding: chunked"), size + b"\r\nabc")
        peer.wait_closed()  # no end of connection to read up to

    server = start(serve)
    response = pool_for(server).request("GET", "/", timeout=(5.0, 5.0))
    started = time.monotonic()
    with pytest.raises(wire.ProtocolError, match="chunk size"):
        response.data  # noqa: B018 - reading the body is the test
    assert time.monotonic() - started < 2.0  # not after a read timeout


# --- heads -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"<html>hello</html>\r\n",
        b"\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Le",  # cut off in the headers
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\nab",  # latin-1 superscript two
        b"",  # closed without a byte
    ],
    ids=[
        "http/2",
        "4-digit-status",
        "2-digit-status",
        "letters-status",
        "not-http",
        "html",
        "blank-line",
        "cut-in-headers",
        "no-colon",
        "header-too-long",
        "length-letters",
        "length-negative",
        "length-conflict",
        "length-plus",
        "length-superscript",
        "nothing",
    ],
)
def test_an_answer_that_is_not_http_1_is_a_protocol_error(start, pool_for, payload):
    server = start(once(payload))
    with pytest.raises(wire.ProtocolError):
        get(pool_for(server))


def test_repeated_equal_content_lengths_are_accepted(start, pool_for):
    server = start(replies(lambda request: head("200 OK", "Content-Length: 5, 5") + b"hello"))
    pool = pool_for(server)
    assert get(pool).data == b"hello"
    assert get(pool).data == b"hello"
    assert server.connections == 1


@pytest.mark.parametrize(
    "count, accepted", [(wireformat.MAX_HEADERS, True), (wireformat.MAX_HEADERS + 1, False)]
)
def test_too_many_headers(start, pool_for, count, accepted):
    headers = [f"X-Header-{n}: {n}" for n in range(count - 1)] + ["Content-Length: 2"]
    server = start(once(head("200 OK", *headers) + b"ok"))
    pool = pool_for(server)
    if accepted:
        response = get(pool)
        assert len(response.headers) == count and response.data == b"ok"
    else:
        with pytest.raises(wire.ProtocolError, match="more than"):
            get(pool)


def test_headers_are_looked_up_in_any_case_and_repeated_ones_joined(start, pool_for):
    payload = answer(
        b"{}",
        "Content-Type: application/json",
        "Warning: 299 - first",
        "WARNING: 299 - second",
        "X-Empty:",
        "X-Spaced:    padded value   ",
        status="200 Fine Thanks",
    )
    server = start(once(payload))
    response = get(pool_for(server))
    headers = response.headers
    assert (response.status, response.reason) == (200, "Fine Thanks")
    assert headers.get("Content-Type") == "application/json"
    assert headers["CONTENT-TYPE"] == headers["content-type"] == "application/json"
    assert "content-type" in headers and "Content-Type" in headers
    assert "X-Missing" not in headers and 42 not in headers
    assert headers.get("X-Missing") is None and headers.get("X-Missing", "d") == "d"
    assert headers.get("warning") == "299 - first, 299 - second"
    assert headers["x-empty"] == "" and headers["x-spaced"] == "padded value"
    assert set(headers) == {"content-length", "content-type", "warning", "x-empty", "x-spaced"}
    assert response.getheaders() is headers
    assert response.data == b"{}"


# --- request bytes -----------------------------------------------------------------------------


def test_a_request_head_is_exactly_what_the_server_needs(start, pool_for):
    server = start(ok())
    pool = pool_for(f"http://127.0.0.1:{server.port}/prefix/")
    get(pool, "/x?y=1", headers={"Accept": "application/json"}).release_conn()
    assert server.seen[0].head == (
        b"GET /prefix/x?y=1 HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{server.port}\r\n".encode()
        + b"Accept: application/json\r\n\r\n"
    )


@pytest.mark.parametrize(
    "method, body, length",
    [
        ("GET", None, None),
        ("DELETE", None, None),
        ("HEAD", None, None),
        ("POST", None, "0"),
        ("PUT", None, "0"),
        ("PATCH", None, "0"),
        ("PATCH", b'{"spec": {}}', "12"),
        ("DELETE", b'{"kind": "DeleteOptions"}', "25"),
        ("POST", b"", "0"),
    ],
)
def test_content_length_is_sent_for_a_body_and_for_writes(start, pool_for, method, body, length):
    server = start(ok(b""))
    pool = pool_for(server)
    pool.request(method, "/r", body=body, timeout=(5.0, 5.0)).release_conn()
    seen = server.seen[0]
    assert seen.line == f"{method} /r HTTP/1.1"
    assert seen.headers.get("content-length") == length
    assert seen.body == (body or b"")


def test_two_requests_with_bodies_on_one_connection_stay_framed(start, pool_for):
    server = start(replies(lambda request: answer(request.body[::-1])))
    pool = pool_for(server)
    first = pool.request("PUT", "/a", body=b"abc", timeout=(5.0, 5.0)).data
    second = pool.request("PUT", "/b", body=b"12345", timeout=(5.0, 5.0)).data
    assert (first, second) == (b"cba", b"54321")
    assert [seen.line for seen in server.seen] == ["PUT /a HTTP/1.1", "PUT /b HTTP/1.1"]
    assert server.connections == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Name": "value\r\nX-Injected: yes"},
        {"X-Name": "value\nX-Injected: yes"},
        {"X-Name": "value\rX"},
        {"X-Name": "nul\0"},
        {"X-Name\r\nX-Injected": "yes"},
    ],
)
def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(start, pool_for, headers):
    server = start(replies(lambda request: answer(b"ok")))
    pool = pool_for(server)
    with pytest.raises(ValueError, match="line breaks"):
        pool.request("GET", "/bad", headers=headers, timeout=(5.0, 5.0))
    assert get(pool, "/good").data == b"ok"  # the pool still works
    pool.close()
    eventually(lambda: server.ended == server.connections)  # every connection read to its end
    assert [seen.line for seen in server.seen] == ["GET /good HTTP/1.1"]  # nothing else came


@pytest.mark.parametrize(
    "target",
    [
        "/x HTTP/1.1\r\nX-Injected: yes\r\nX-Pad:",  # would add a header line
        "/x\nX-Injected: yes",
        "/a b",  # a space would end the target early
        "/nul\0",
        "relative",
        "http://other.test/x",  # absolute form is the proxy's business, made by the pool
    ],
    ids=["crlf", "lf", "space", "nul", "relative", "absolute"],
)
def test_a_bad_request_target_is_refused_before_anything_is_sent(start, pool_for, target):
    server = start(ok())
    pool = pool_for(server)
    with pytest.raises(ValueError, match="request target"):
        pool.request("GET", target, timeout=(5.0, 5.0)).close()
    assert get(pool, "/good").data == b"ok"
    pool.close()
    eventually(lambda: server.ended == server.connections)  # every connection read to its end
    assert [seen.line for seen in server.seen] == ["GET /good HTTP/1.1"]


def test_bad_addresses_are_refused():
    for url in ("ftp://example.test", "http://", "example.test:80", "https:///path"):
        with pytest.raises(ValueError):
            wire.Pool(url)
    with pytest.raises(ValueError, match="only http://") as raised:
        wire.Pool("http://example.test", proxy="https://user:s3cret@proxy.test:3128")
    assert "s3cret" not in str(raised.value)
    with pytest.raises(ValueError, match="line breaks"):
        wire.Pool("http://x.test", proxy="http://p.test:1", proxy_headers={"X": "a\r\nB: c"})


# --- timeouts and shutdown ---------------------------------------------------------------------


def silent(peer: Peer) -> None:
    """Read the request, never answer; wait until the client closes."""
    peer.read_request()
    peer.wait_closed()


def test_a_server_that_does_not_answer_is_a_read_timeout(start, pool_for):
    server = start(silent)
    pool = pool_for(server)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        pool.request("GET", "/", timeout=(5.0, 0.2))
    assert 0.15 < time.monotonic() - started < 2.0
    eventually(lambda: server.ended == 1)  # the connection was closed, not pooled


def test_a_refused_connection_is_a_connection_error(pool_for):
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]  # free once closed: nothing listens there
    with pytest.raises(ConnectionRefusedError):
        pool_for(f"http://127.0.0.1:{port}").request("GET", "/", timeout=(1.0, 1.0))


def test_total_bounds_a_call_whose_read_timeout_is_long(start, pool_for):
    server = start(silent)
    pool = pool_for(server)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        pool.request("GET", "/", timeout=(30.0, 30.0), total=0.3)
    assert 0.2 < time.monotonic() - started < 2.0
    assert len(server.seen) == 1


def test_total_also_bounds_a_body_that_does_not_come(start, pool_for):
    def serve(peer: Peer) -> None:
        peer.read_request()
        peer.send(head("200 OK", "Content-Length: 100"), b"partial")
        peer.wait_closed()

    server = start(serve)
    pool = pool_for(server)
    started = time.monotonic()
    response = pool.request("GET", "/", timeout=(30.0, 30.0), total=0.3)
    with pytest.raises(TimeoutError):
        response.data  # noqa: B018 - reading the body is the test
    assert time.monotonic() - started < 2.0
    eventually(lambda: server.ended == 1)


def test_total_bounds_a_head_that_trickles_in(start, pool_for):
    def serve(peer: Peer) -> None:
        peer.read_request()
        pieces = (
            b"HTTP/1.1 200 OK\r\n",
            b"X-A: 1\r\n",
            b"X-B: 2\r\n",
            b"Content-Length: 2\r\n\r\nok",
        )
        for piece in pieces:  # each read alone is quick; all of them are not
            peer.send(piece)
            time.sleep(0.15)
        peer.wait_closed()

    pool = pool_for(start(serve))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        pool.request("GET", "/", timeout=(30.0, 30.0), total=0.2)
    assert time.monotonic() - started < 0.4


def test_a_body_that_failed_stays_failed(start, pool_for):
    response = get(pool_for(start(once(head("200 OK", "Content-Length: 10") + b"abc"))))
    with pytest.raises(wire.ProtocolError):
        response.data  # noqa: B018 - reading the body is the test
    with pytest.raises(OSError):  # not an empty body the second time
        response.data  # noqa: B018 - reading the body is the test


def test_a_bad_target_costs_no_connection(start, pool_for):
    server = start(once(answer(b"ok")))
    pool = pool_for(server)
    with pytest.raises(ValueError):
        pool.request("GET", "/x y")
    assert get(pool).data == b"ok"
    assert server.connections == 1  # the refused request neither opened nor spoiled one


def test_a_deadline_is_not_left_on_the_pooled_connection(start, pool_for):
    def serve(peer: Peer) -> None:
        peer.read_request()
        peer.send(answer(b"quick"))
        peer.read_request()
        time.sleep(0.4)  # the second answer is slow, slower than the first call's total
        peer.send(answer(b"slow"))
        peer.wait_closed()

    server = start(serve)
    pool = pool_for(server)
    assert pool.request("GET", "/", timeout=(30.0, 30.0), total=0.2).data == b"quick"
    assert get(pool).data == b"slow"  # the same connection, with this call's read timeout
    assert server.connections == 1


def stream_forever(peer: Peer) -> None:
    """A watch: the head and one event, then silence until the client goes."""
    peer.read_request()
    peer.send(head("200 OK", "Transfer-Encoding: chunked"), chunk(b'{"type": "ADDED"}\n'))
    peer.wait_closed()


def stream_until_close(peer: Peer) -> None:
    """The same without chunked coding: the body runs until the connection ends."""
    peer.read_request()
    peer.send(head("200 OK"), b'{"type": "ADDED"}\n')
    peer.wait_closed()


def shut_down_a_blocked_reader(response: wire.Response) -> tuple[list[bytes], list[BaseException]]:
    received: list[bytes] = []
    failures: list[BaseException] = []
    first = threading.Event()

    def read() -> None:
        try:
            for line in response.lines():
                received.append(line)
                first.set()
        except OSError as error:
            failures.append(error)
        finally:
            response.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert first.wait(5)  # the reader is in the stream, waiting for the next event
    response.shutdown()
    reader.join(5)
    assert not reader.is_alive()
    return received, failures


@pytest.mark.parametrize("serve", [stream_forever, stream_until_close])
def test_shutdown_unblocks_a_reader_on_another_thread(start, pool_for, serve):
    server = start(serve)
    pool = pool_for(server)
    response = pool.request("GET", "/watch", timeout=(5.0, 30.0))
    received, failures = shut_down_a_blocked_reader(response)
    assert received == [b'{"type": "ADDED"}']
    assert all(isinstance(failure, OSError) for failure in failures)  # or the stream just ended
    eventually(lambda: server.ended == 1)
    response.shutdown()  # once released: nothing to cut, no error


# --- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certified() -> selfsigned.CertifiedKey:
    return selfsigned.generate(["localhost", "127.0.0.1"])


@pytest.fixture
def tls_server(start, certified) -> Callable[[Callable[[Peer], None]], RawServer]:
    return lambda serve: start(serve, tls=tls.server_context(certified))


@pytest.fixture
def trusting(certified) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=certified.certificate_pem)


def test_tls_with_a_context_that_trusts_the_certificate(tls_server, pool_for, trusting):
    server = tls_server(replies(lambda request: answer(request.headers["host"].encode())))
    for host in ("127.0.0.1", "localhost"):
        pool = pool_for(f"https://{host}:{server.port}", ssl_context=trusting)
        assert get(pool).data == f"{host}:{server.port}".encode()
        assert get(pool).data == f"{host}:{server.port}".encode()
    assert server.connections == 2  # one per pool: kept alive under TLS too


def test_tls_is_verified_by_default(tls_server, pool_for):
    server = tls_server(ok())
    pool = pool_for(f"https://127.0.0.1:{server.port}")  # the system's CAs only
    with pytest.raises(ssl.SSLCertVerificationError):
        get(pool)
    assert server.seen == []


def test_tls_checks_the_server_hostname_given(tls_server, pool_for, trusting):
    server = tls_server(ok())
    url = f"https://127.0.0.1:{server.port}"
    assert get(pool_for(url, ssl_context=trusting, server_hostname="localhost")).data == b"ok"
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        get(pool_for(url, ssl_context=trusting, server_hostname="other.example"))


def test_an_idle_tls_connection_the_server_closed_is_replaced(tls_server, pool_for, trusting):
    server = tls_server(once(answer(b"first")))
    pool = pool_for(f"https://127.0.0.1:{server.port}", ssl_context=trusting)
    assert get(pool).data == b"first"
    eventually(lambda: server.ended == 1)
    assert get(pool).data == b"first"
    assert server.connections == 2 and len(server.seen) == 2


def test_shutdown_unblocks_a_reader_on_a_tls_stream(tls_server, pool_for, trusting):
    server = tls_server(stream_forever)
    pool = pool_for(f"https://127.0.0.1:{server.port}", ssl_context=trusting)
    response = pool.request("GET", "/watch", timeout=(5.0, 30.0))
    received, failures = shut_down_a_blocked_reader(response)
    assert received == [b'{"type": "ADDED"}']
    assert all(isinstance(failure, OSError) for failure in failures)


# --- proxies -----------------------------------------------------------------------------------


def forwarding_proxy(routes: dict[str, int] | None = None) -> Callable[[Peer], None]:
    """A forward proxy: absolute-form requests are sent on to the origin (its answers must
    carry Content-Length), CONNECT opens a tunnel. `routes` maps a requested authority to a
    port on 127.0.0.1; other authorities are taken at their word."""
    routes = routes or {}

    def port_of(authority: str) -> int:
        return routes.get(authority) or int(authority.rsplit(":", 1)[1])

    def serve(peer: Peer) -> None:
        upstream: socket.socket | None = None
        try:
            while (request := peer.read_request()) is not None:
                method, target, _ = request.line.split(" ")
                if method == "CONNECT":
                    upstream = socket.create_connection(("127.0.0.1", port_of(target)), 5)
                    peer.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    tunnel(peer, upstream)
                    return
                parts = urllib.parse.urlsplit(target)
                if upstream is None:
                    upstream = socket.create_connection(("127.0.0.1", port_of(parts.netloc)), 5)
                    upstream_reader = upstream.makefile("rb")
                lines = [f"{method} {parts.path}{'?' if parts.query else ''}{parts.query} HTTP/1.1"]
                lines += [f"{k}: {v}" for k, v in request.headers.items() if "proxy" not in k]
                upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + request.body)
                message = read_message(upstream_reader)
                assert message is not None
                peer.send(message[0] + message[2])
        finally:
            if upstream is not None:
                upstream.close()

    return serve


def tunnel(peer: Peer, upstream: socket.socket) -> None:
    """Copy bytes both ways until each side has closed its half."""

    def down() -> None:
        try:
            while data := upstream.recv(65536):
                peer.sock.sendall(data)
            peer.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    thread = threading.Thread(target=down, daemon=True)
    thread.start()
    try:
        while data := peer.reader.read1(65536):
            upstream.sendall(data)
        upstream.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    thread.join(5)


def refusing_proxy(peer: Peer) -> None:
    while peer.read_request() is not None:
        peer.send(
            answer(
                b"denied", "Proxy-Authenticate: Basic", status="407 Proxy Authentication Required"
            )
        )


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_an_http_origin_is_reached_through_the_proxy_in_absolute_form(start, pool_for):
    origin = start(replies(lambda request: answer(f"origin saw {request.line}".encode())))
    proxy = start(forwarding_proxy())
    pool = pool_for(
        f"http://127.0.0.1:{origin.port}/api",
        proxy=f"http://robot:p%40ss@127.0.0.1:{proxy.port}",
        proxy_headers={"X-Proxy-Tenant": "blue"},
    )
    assert get(pool, "/v1/x?q=1").data == b"origin saw GET /api/v1/x?q=1 HTTP/1.1"
    assert get(pool, "/v1/y").data == b"origin saw GET /api/v1/y HTTP/1.1"
    seen = proxy.seen[0]
    assert seen.line == f"GET http://127.0.0.1:{origin.port}/api/v1/x?q=1 HTTP/1.1"
    assert seen.headers["host"] == f"127.0.0.1:{origin.port}"
    assert seen.headers["proxy-authorization"] == basic("robot", "p@ss")
    assert seen.headers["x-proxy-tenant"] == "blue"
    assert proxy.connections == 1 and origin.connections == 1  # kept alive through the proxy


def test_a_proxy_without_a_scheme_or_credentials(start, pool_for):
    origin = start(ok(b"plain"))
    proxy = start(forwarding_proxy())
    pool = pool_for(f"http://127.0.0.1:{origin.port}", proxy=f"127.0.0.1:{proxy.port}")
    assert get(pool).data == b"plain"
    assert "proxy-authorization" not in proxy.seen[0].headers
    assert proxy.seen[0].line.startswith("GET http://127.0.0.1:")


@pytest.mark.parametrize(
    "url, authority",
    [("http://origin.test", "origin.test"), ("http://[::1]:8080", "[::1]:8080")],
)
def test_the_host_names_the_port_only_when_it_is_not_the_default(start, pool_for, url, authority):
    origin = start(replies(lambda request: answer(request.headers["host"].encode())))
    proxy = start(forwarding_proxy({authority: origin.port}))
    pool = pool_for(url, proxy=f"http://127.0.0.1:{proxy.port}")
    assert get(pool, "/x").data == authority.encode()
    assert proxy.seen[0].line == f"GET http://{authority}/x HTTP/1.1"
    assert repr(pool) == f"Pool({url})"


def test_an_https_origin_is_reached_through_a_connect_tunnel(start, tls_server, pool_for, trusting):
    origin = tls_server(replies(lambda request: answer(request.line.encode())))
    proxy = start(forwarding_proxy({"localhost:443": origin.port}))
    pool = pool_for(
        "https://localhost",  # the default port: the proxy sends it to the TLS server
        ssl_context=trusting,
        proxy=f"http://robot:s3cret@127.0.0.1:{proxy.port}",
        proxy_headers={"X-Proxy-Tenant": "blue"},
    )
    assert get(pool, "/apis/x").data == b"GET /apis/x HTTP/1.1"  # origin-form in the tunnel
    assert get(pool, "/apis/y").data == b"GET /apis/y HTTP/1.1"
    assert [seen.line for seen in proxy.seen] == ["CONNECT localhost:443 HTTP/1.1"]
    connect = proxy.seen[0].headers
    assert connect["host"] == "localhost:443"
    assert connect["proxy-authorization"] == basic("robot", "s3cret")
    assert connect["x-proxy-tenant"] == "blue"
    inside = origin.seen[0].headers
    assert inside["host"] == "localhost"
    assert "proxy-authorization" not in inside and "x-proxy-tenant" not in inside
    assert proxy.connections == 1 and origin.connections == 1


def test_a_tunnel_still_verifies_the_origin(start, tls_server, pool_for):
    origin = tls_server(ok())
    proxy = start(forwarding_proxy())
    pool = pool_for(f"https://127.0.0.1:{origin.port}", proxy=f"http://127.0.0.1:{proxy.port}")
    with pytest.raises(ssl.SSLCertVerificationError):
        get(pool)
    assert proxy.seen[0].line == f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1"


def test_a_proxy_refusing_the_tunnel_is_a_connection_error(start, pool_for):
    proxy = start(refusing_proxy)
    pool = pool_for("https://origin.test:6443", proxy=f"http://robot:s3cret@127.0.0.1:{proxy.port}")
    with pytest.raises(ConnectionError, match="407") as raised:
        get(pool)
    assert "s3cret" not in str(raised.value)
    assert proxy.seen[0].line == "CONNECT origin.test:6443 HTTP/1.1"
    eventually(lambda: proxy.ended == 1)  # the refused connection was closed


def test_the_proxy_password_is_never_shown():
    secret = "s3cret-pa55"
    pool = wire.Pool("https://origin.test", proxy=f"http://robot:{secret}@proxy.test:3128")
    encoded = base64.b64encode(f"robot:{secret}".encode()).decode()
    for text in (repr(pool), str(pool), repr(pool._proxy), str(pool._proxy)):
        assert secret not in text and encoded not in text
    assert repr(pool) == "Pool(https://origin.test)"


def test_the_tunnel_to_an_ipv6_origin_brackets_the_address(start, pool_for):
    proxy = start(refusing_proxy)  # only the CONNECT line matters here
    pool = pool_for("https://[::1]:6443", proxy=f"http://127.0.0.1:{proxy.port}")
    with pytest.raises(ConnectionError, match="407"):
        get(pool)
    assert proxy.seen[0].line == "CONNECT [::1]:6443 HTTP/1.1"
    assert proxy.seen[0].headers["host"] == "[::1]:6443"
