"""Forwarding one request to an upstream, the part every gateway emulator's data plane shares.

The emulator decides where to go and which `Host` to send; this module does the HTTP and
says how it went: the upstream's answer, or why there was none (`refused` when nothing
answered the connection, `timeout` when the upstream was too slow), so each emulator can
answer the client the way its gateway would.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterable
from dataclasses import dataclass

# hop-by-hop headers, plus those http.client sets itself
NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass(frozen=True)
class UpstreamReply:
    status: int  # 0 when there was no answer
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    failure: str | None = None  # "refused" or "timeout" when there was no answer

    @property
    def content_type(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "content-type"), None)

    def end_to_end_headers(self) -> list[tuple[str, str]]:
        """The upstream's headers a proxy passes on to its client."""
        return [(k, v) for k, v in self.headers if k.lower() not in NOT_FORWARDED]


def forwardable(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The client's request headers a proxy passes on (without Host and hop-by-hop ones)."""
    return {name: value for name, value in headers if name.lower() not in NOT_FORWARDED}


def forward(
    method: str,
    scheme: str,
    address: tuple[str, int],
    path: str,
    headers: dict[str, str],
    body: bytes,
    timeout_s: float,
) -> UpstreamReply:
    """Send one request to `address` and read the whole answer."""
    connection_class = (
        http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(address[0], address[1], timeout=timeout_s)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        return UpstreamReply(response.status, response.read(), tuple(response.getheaders()))
    except TimeoutError:
        return UpstreamReply(0, failure="timeout")
    except (OSError, http.client.HTTPException):
        return UpstreamReply(0, failure="refused")
    finally:
        connection.close()
