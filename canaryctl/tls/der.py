"""A minimal ASN.1 DER encoder: just the types an X.509 certificate and a PKCS#8 key use.

DER is the one canonical encoding (shortest lengths, minimal integers, sorted SETs), so
every value here has exactly one byte string; parsers (OpenSSL, Go, browsers) reject the
rest. Each function returns the complete TLV (tag, length, value) as bytes.
"""

from __future__ import annotations

import datetime

BOOLEAN, INTEGER, BIT_STRING, OCTET_STRING, NULL, OID = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
UTF8_STRING, UTC_TIME, GENERALIZED_TIME = 0x0C, 0x17, 0x18
SEQUENCE, SET = 0x30, 0x31
CONTEXT, CONSTRUCTED = 0x80, 0x20


def tlv(tag: int, value: bytes) -> bytes:
    """Tag, definite length (short form below 128, else long form), value."""
    size = len(value)
    if size < 0x80:
        return bytes([tag, size]) + value
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + value


def integer(value: int) -> bytes:
    """Two's complement, big-endian, in the fewest bytes that keep the sign."""
    size = value.bit_length() // 8 + 1  # one spare bit for the sign
    return tlv(INTEGER, value.to_bytes(size, "big", signed=True))


def boolean(value: bool) -> bytes:
    return tlv(BOOLEAN, b"\xff" if value else b"\x00")


def null() -> bytes:
    return tlv(NULL, b"")


def oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER: the first two arcs share a byte, the rest are base-128."""
    arcs = [int(arc) for arc in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40):
        raise ValueError(f"not an object identifier: {dotted!r}")
    body = b"".join(_base128(arc) for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]])
    return tlv(OID, body)


def _base128(value: int) -> bytes:
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(groups))


def bit_string(data: bytes, unused_bits: int = 0) -> bytes:
    return tlv(BIT_STRING, bytes([unused_bits]) + data)


def named_bits(*positions: int) -> bytes:
    """A BIT STRING of named bits (e.g. KeyUsage): bit 0 is the first byte's top bit,
    and DER drops trailing zero bits."""
    if not positions:
        return bit_string(b"")
    last = max(positions)
    data = bytearray(last // 8 + 1)
    for position in positions:
        data[position // 8] |= 0x80 >> (position % 8)
    return bit_string(bytes(data), unused_bits=7 - last % 8)


def octet_string(data: bytes) -> bytes:
    return tlv(OCTET_STRING, data)


def utf8_string(text: str) -> bytes:
    return tlv(UTF8_STRING, text.encode("utf-8"))


def sequence(*items: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(items))


def set_of(*items: bytes) -> bytes:
    """DER sorts the encodings of a SET OF's elements."""
    return tlv(SET, b"".join(sorted(items)))


def explicit(number: int, inner: bytes) -> bytes:
    """[number] EXPLICIT: a constructed context-specific tag around a whole TLV."""
    return tlv(CONTEXT | CONSTRUCTED | number, inner)


def implicit(number: int, value: bytes) -> bytes:
    """[number] IMPLICIT of a primitive type: the context tag replaces the type's own."""
    return tlv(CONTEXT | number, value)


def time(moment: datetime.datetime) -> bytes:
    """X.509 Time: UTCTime for 1950-2049, GeneralizedTime otherwise (RFC 5280 4.1.2.5)."""
    moment = moment.astimezone(datetime.UTC)
    if 1950 <= moment.year < 2050:
        return tlv(UTC_TIME, moment.strftime("%y%m%d%H%M%SZ").encode())
    return tlv(GENERALIZED_TIME, moment.strftime("%Y%m%d%H%M%SZ").encode())
