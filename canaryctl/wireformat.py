"""How HTTP/1.1 messages are framed, read from a byte stream: `wire`'s parsing half.

Kept apart from the connections (`canaryctl.wire`) because it is a different idea with no
sockets in it: given a buffered reader, read a status line, a header block, a body delimited
by Content-Length or by chunks. Every malformed or oversized piece of an answer is a
`ProtocolError` (a ConnectionError), never a ValueError or a huge allocation: those bytes
come from a server. The one writing helper, `header_lines`, refuses a line break in a header
canaryctl sends (a ValueError: that is canaryctl's own input).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

MAX_LINE = 65536  # bytes of a status, header or chunk-size line
MAX_HEADERS = 200
NO_BODY_STATUSES = (204, 304)
HEX_DIGITS = b"0123456789abcdefABCDEF"
LINE_BREAK = re.compile("[\r\n\0]")  # what must never be inside a header canaryctl sends


class ProtocolError(ConnectionError):
    """The server's answer is not the HTTP/1.x this client expects (or it hung up instead)."""


class Headers(dict):
    """Response headers; names are kept in lower case and looked up in any case."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(name.lower(), default)


def header_lines(headers: Mapping[str, str]) -> list[str]:
    """`Name: value` lines to send; a ValueError if any holds a line break."""
    lines = [f"{name}: {value}" for name, value in headers.items()]
    if LINE_BREAK.search("".join(lines)):  # one search for all: the usual case has none
        bad = next(name for name, value in headers.items() if LINE_BREAK.search(name + value))
        raise ValueError(f"header {bad!r}: line breaks are not allowed in a header")
    return lines


def status_line(reader) -> tuple[str, int, str]:
    line = reader.readline(MAX_LINE + 1)
    if not line:
        raise ProtocolError("the server closed the connection without answering")
    version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
    return version, int(code), reason


def read_headers(reader) -> Headers:
    fields: dict[str, str] = {}  # a plain dict while reading: no case folding per lookup
    for _ in range(MAX_HEADERS + 1):
        line = reader.readline(MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):
            return Headers(fields)
        if not line or len(line) > MAX_LINE:
            raise ProtocolError("the answer's headers were cut off or too long")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise ProtocolError(f"not a header line: {line[:80]!r}")
        name, value = name.strip().lower(), value.strip()
        previous = fields.get(name)
        fields[name] = value if previous is None else f"{previous}, {value}"
    raise ProtocolError(f"more than {MAX_HEADERS} headers")


def content_length(value: str) -> int:
    lengths = {part.strip() for part in value.split(",")}  # repeated equal values are allowed
    if len(lengths) != 1 or not (length := lengths.pop()).isascii() or not length.isdigit():
        raise ProtocolError(f"bad Content-Length {value!r}")
    return int(length)


def chunks(reader) -> Iterator[bytes]:
    """The payloads of a chunked body, up to its last chunk and trailers (read and dropped)."""
    while True:
        line = reader.readline(MAX_LINE + 1)
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or size_text.strip(HEX_DIGITS) or len(size_text) > 8:
            raise ProtocolError(f"bad chunk size line {line[:80]!r}")
        size = int(size_text, 16)  # at most 8 hex digits: under 4 GiB, never negative
        if size == 0:
            read_headers(reader)  # trailers
            return
        while size:  # in pieces: a chunk's announced size is never allocated up front
            payload = reader.read(min(size, 65536))
            if not payload:
                raise ProtocolError("a chunk was cut off")
            size -= len(payload)
            yield payload
        if reader.readline(3) not in (b"\r\n", b"\n"):
            raise ProtocolError("a chunk was not followed by its line end")
