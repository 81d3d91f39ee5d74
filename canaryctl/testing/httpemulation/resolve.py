"""Where a gateway emulator sends traffic for an upstream target such as `svc.ns.svc:80`.

Gateways are configured with in-cluster Service names that do not resolve on a test
machine; tests map them to the local backends instead. The configured target stays what
metrics and logs show; only the connection goes to the mapped address. A data plane may
resolve twice (name -> ClusterIP -> local backend) to tell the address APISIX would report
from the one it connects to.
"""

from __future__ import annotations

import argparse
import threading


def split_host_port(value: str) -> tuple[str, int]:
    """ "host:port" -> (host, port); ValueError when the port is missing or not a number."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def host_without_port(value: str) -> str:
    """The `Host` header's host part, lower-cased ("Error-Page:80" -> "error-page")."""
    host, sep, port = value.rpartition(":")
    return (host if sep and port.isdigit() else value).lower()


class Resolver:
    """Static `host:port -> addr:port` overrides in front of DNS. Thread-safe."""

    def __init__(self, entries: dict[str, str] | None = None):
        self._lock = threading.Lock()
        self._map: dict[str, tuple[str, int]] = {}
        for target, address in (entries or {}).items():
            self.add(target, address)

    def add(self, target: str, address: str) -> None:
        split_host_port(target)
        resolved = split_host_port(address)
        with self._lock:
            self._map[target.lower()] = resolved

    def resolve(self, host: str, port: int) -> tuple[str, int]:
        with self._lock:
            return self._map.get(f"{host}:{port}".lower(), (host, port))


def resolve_argument(value: str) -> tuple[str, str]:
    """argparse type of `--resolve HOST:PORT=ADDR:PORT` -> (target, address)."""
    target, sep, address = value.partition("=")
    try:
        split_host_port(target)
        split_host_port(address)
    except ValueError:
        sep = ""
    if not sep:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT=ADDR:PORT, got {value!r}")
    return target, address
