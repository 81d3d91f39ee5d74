"""A TCP relay on 127.0.0.1 that a test can cut, to put one client behind a network partition.

Stopping the API server partitions every client at once and answers with "connection
refused" at once; a real partition is quieter: requests are sent and nothing comes back,
so a client learns of it only from its own timeouts. `PartitionableRelay` gives one client
that: point its ApiClient at `relay.url`, call `cut()` and from then on every byte in
either direction is dropped, on open connections and new ones alike (TLS passes through
untouched, so the API server's certificate still verifies). `heal()` closes the damaged
connections and relays normally again.
"""

from __future__ import annotations

import socket
import threading

CHUNK = 65536


class PartitionableRelay:
    """Relay 127.0.0.1:<port> to `target_host:target_port` until cut."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._cut = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> PartitionableRelay:
        threading.Thread(target=self._accept_forever, name="relay-accept", daemon=True).start()
        return self

    def cut(self) -> None:
        """From now on drop every byte, silently, in both directions."""
        self._cut.set()

    def heal(self) -> None:
        """Close every connection opened or damaged so far and relay new ones normally."""
        self._close_sockets()
        self._cut.clear()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self._close_sockets()

    def __enter__(self) -> PartitionableRelay:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept_forever(self) -> None:
        while not self._closed.is_set():
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            self._remember(downstream)
            if self._cut.is_set():
                self._pump_into_nothing(downstream)
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                downstream.close()
                continue
            upstream.settimeout(None)
            self._remember(upstream)
            self._pump(downstream, upstream)
            self._pump(upstream, downstream)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        def copy() -> None:
            try:
                while data := source.recv(CHUNK):
                    if not self._cut.is_set():
                        sink.sendall(data)
            except OSError:
                pass
            finally:
                _shutdown(sink)

        threading.Thread(target=copy, name="relay-pump", daemon=True).start()

    def _pump_into_nothing(self, source: socket.socket) -> None:
        def drain() -> None:
            try:
                while source.recv(CHUNK):
                    pass
            except OSError:
                pass

        threading.Thread(target=drain, name="relay-drain", daemon=True).start()

    def _remember(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _close_sockets(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown(sock)
            sock.close()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
