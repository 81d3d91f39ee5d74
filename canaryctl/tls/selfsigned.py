"""A self-signed X.509 v3 serving certificate (RFC 5280), for when no certificate is mounted.

The certificate names the pod's hostname, `localhost`, 127.0.0.1 and ::1 in its
subjectAltName and is its own issuer. It is marked as a CA with `keyCertSign` so that a
client may pin it as its trust anchor (OpenSSL only treats a certificate as self-signed
when its key usage allows certificate signing); `extKeyUsage` still limits it to TLS
server authentication. It lives for as long as the process: a restart makes a new one.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from canaryctl.tls import der
from canaryctl.tls.rsa import SHA256_WITH_RSA, PrivateKey, generate_private_key, verify_sha256

VALIDITY = datetime.timedelta(days=365)
CLOCK_SKEW = datetime.timedelta(minutes=5)  # valid a little before now: peers' clocks differ
COMMON_NAME = "canaryctl-metrics"

_COMMON_NAME_OID = "2.5.4.3"
_SUBJECT_KEY_IDENTIFIER, _KEY_USAGE, _SUBJECT_ALT_NAME = "2.5.29.14", "2.5.29.15", "2.5.29.17"
_BASIC_CONSTRAINTS, _AUTHORITY_KEY_IDENTIFIER = "2.5.29.19", "2.5.29.35"
_EXTENDED_KEY_USAGE, _SERVER_AUTH = "2.5.29.37", "1.3.6.1.5.5.7.3.1"
_DIGITAL_SIGNATURE, _KEY_ENCIPHERMENT, _KEY_CERT_SIGN = 0, 2, 5


@dataclass(frozen=True)
class CertifiedKey:
    """A certificate and its private key, both PEM. The repr never shows the key."""

    certificate_pem: str
    key_pem: str

    def __repr__(self) -> str:
        return "CertifiedKey(<certificate>, <private key>)"


def default_names() -> list[str]:
    """What a scraper may call the pod: its hostname (the pod name), localhost, loopback."""
    return [socket.gethostname(), "localhost", "127.0.0.1", "::1"]


def generate(
    names: Iterable[str] | None = None,
    now: datetime.datetime | None = None,
    key: PrivateKey | None = None,
) -> CertifiedKey:
    """A fresh key (RSA-2048 unless given) and a self-signed certificate for `names`."""
    key = key or generate_private_key(2048)
    now = now or datetime.datetime.now(datetime.UTC)
    tbs = _tbs_certificate(key, list(names or default_names()), now)
    signature = key.sign_sha256(tbs)
    if not verify_sha256(key.n, key.e, tbs, signature):  # a faulty signature never leaves here
        raise RuntimeError("self-check of the certificate signature failed")
    certificate = der.sequence(tbs, _signature_algorithm(), der.bit_string(signature))
    return CertifiedKey(pem("CERTIFICATE", certificate), pem("PRIVATE KEY", key.pkcs8_der()))


def pem(label: str, data: bytes) -> str:
    body = base64.encodebytes(data).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""])


def _tbs_certificate(key: PrivateKey, names: list[str], now: datetime.datetime) -> bytes:
    name = der.sequence(
        der.set_of(der.sequence(der.oid(_COMMON_NAME_OID), der.utf8_string(COMMON_NAME)))
    )
    validity = der.sequence(der.time(now - CLOCK_SKEW), der.time(now + VALIDITY))
    serial = secrets.randbits(127) | 1  # positive, non-zero, at most 16 bytes (RFC 5280 4.1.2.2)
    return der.sequence(
        der.explicit(0, der.integer(2)),  # version v3
        der.integer(serial),
        _signature_algorithm(),
        name,  # issuer
        validity,
        name,  # subject
        key.subject_public_key_info(),
        der.explicit(3, der.sequence(*_extensions(key, names))),
    )


def _extensions(key: PrivateKey, names: list[str]) -> list[bytes]:
    key_id = hashlib.sha1(key.public_key_der()).digest()  # RFC 5280 4.2.1.2, method 1
    return [
        _extension(_BASIC_CONSTRAINTS, der.sequence(der.boolean(True)), critical=True),
        _extension(
            _KEY_USAGE,
            der.named_bits(_DIGITAL_SIGNATURE, _KEY_ENCIPHERMENT, _KEY_CERT_SIGN),
            critical=True,
        ),
        _extension(_EXTENDED_KEY_USAGE, der.sequence(der.oid(_SERVER_AUTH))),
        _extension(_SUBJECT_KEY_IDENTIFIER, der.octet_string(key_id)),
        _extension(_AUTHORITY_KEY_IDENTIFIER, der.sequence(der.implicit(0, key_id))),
        _extension(_SUBJECT_ALT_NAME, der.sequence(*_general_names(names))),
    ]


def _extension(identifier: str, value: bytes, critical: bool = False) -> bytes:
    flag = [der.boolean(True)] if critical else []  # DER omits the DEFAULT FALSE
    return der.sequence(der.oid(identifier), *flag, der.octet_string(value))


def _general_names(names: list[str]) -> list[bytes]:
    """dNSName [2] for host names, iPAddress [7] for addresses; duplicates and non-ASCII dropped."""
    encoded: dict[bytes, None] = {}
    for name in names:
        try:
            encoded[der.implicit(7, ipaddress.ip_address(name).packed)] = None
        except ValueError:
            if name and name.isascii():
                encoded[der.implicit(2, name.lower().encode("ascii"))] = None
    return list(encoded)


def _signature_algorithm() -> bytes:
    return der.sequence(der.oid(SHA256_WITH_RSA), der.null())
