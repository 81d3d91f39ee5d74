"""RSA key generation and PKCS#1 v1.5 signatures with SHA-256, in plain Python integers.

Only what a self-signed serving certificate needs: one 2048-bit key made at start and
one signature over the certificate. Primes come from `secrets` (the OS's CSPRNG), are
sieved by small primes and then pass 64 Miller-Rabin rounds with random bases, which
leaves a chance below 2^-128 that a composite slips through. TLS itself (handshakes,
session keys) is OpenSSL's job through `ssl`; nothing here runs per connection.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass, field

from canaryctl.tls import der

PUBLIC_EXPONENT = 65537
MILLER_RABIN_ROUNDS = 64
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
# DER of DigestInfo{AlgorithmIdentifier{id-sha256, NULL}, OCTET STRING(32 bytes)}, minus the hash
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_SMALL_PRIMES = [n for n in range(3, 2000, 2) if all(n % d for d in range(3, math.isqrt(n) + 1, 2))]


@dataclass(frozen=True)
class PrivateKey:
    """An RSA private key with its CRT parameters (RFC 8017 A.1.2)."""

    n: int
    e: int
    d: int = field(repr=False)
    p: int = field(repr=False)
    q: int = field(repr=False)

    @property
    def size_bytes(self) -> int:
        return (self.n.bit_length() + 7) // 8

    def public_key_der(self) -> bytes:
        """RSAPublicKey ::= SEQUENCE { modulus, publicExponent }."""
        return der.sequence(der.integer(self.n), der.integer(self.e))

    def subject_public_key_info(self) -> bytes:
        """SubjectPublicKeyInfo as X.509 and PKCS#8 carry it."""
        algorithm = der.sequence(der.oid(RSA_ENCRYPTION), der.null())
        return der.sequence(algorithm, der.bit_string(self.public_key_der()))

    def pkcs8_der(self) -> bytes:
        """PrivateKeyInfo (RFC 5208) wrapping RSAPrivateKey (RFC 8017 A.1.2)."""
        p, q, d = self.p, self.q, self.d
        numbers = (0, self.n, self.e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p))
        rsa_private_key = der.sequence(*(der.integer(v) for v in numbers))
        algorithm = der.sequence(der.oid(RSA_ENCRYPTION), der.null())
        return der.sequence(der.integer(0), algorithm, der.octet_string(rsa_private_key))

    def sign_sha256(self, message: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 8.2.1), computed with the CRT."""
        encoded = _emsa_pkcs1_v15(message, self.size_bytes)
        m = int.from_bytes(encoded, "big")
        p, q = self.p, self.q
        s_p, s_q = pow(m, self.d % (p - 1), p), pow(m, self.d % (q - 1), q)
        s = s_q + q * ((s_p - s_q) * pow(q, -1, p) % p)
        return s.to_bytes(self.size_bytes, "big")


def verify_sha256(n: int, e: int, message: bytes, signature: bytes) -> bool:
    """RSASSA-PKCS1-v1_5 verification, for tests and as a self-check after signing."""
    size = (n.bit_length() + 7) // 8
    if len(signature) != size:
        return False
    recovered = pow(int.from_bytes(signature, "big"), e, n).to_bytes(size, "big")
    return secrets.compare_digest(recovered, _emsa_pkcs1_v15(message, size))


def _emsa_pkcs1_v15(message: bytes, size: int) -> bytes:
    """0x00 0x01 FF..FF 0x00 DigestInfo(SHA-256(message)), `size` bytes long."""
    digest_info = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    padding = size - len(digest_info) - 3
    if padding < 8:
        raise ValueError("RSA modulus too short for a SHA-256 signature")
    return b"\x00\x01" + b"\xff" * padding + b"\x00" + digest_info


def generate_private_key(bits: int = 2048, e: int = PUBLIC_EXPONENT) -> PrivateKey:
    """A fresh key whose modulus has exactly `bits` bits."""
    if bits < 1024 or bits % 2:
        raise ValueError("RSA keys here are at least 1024 bits, an even number")
    while True:
        p, q = generate_prime(bits // 2, e), generate_prime(bits // 2, e)
        if p == q:
            continue
        n = p * q
        d = pow(e, -1, math.lcm(p - 1, q - 1))
        return PrivateKey(n=n, e=e, d=d, p=max(p, q), q=min(p, q))


def generate_prime(bits: int, e: int = PUBLIC_EXPONENT) -> int:
    """A random prime with its top two bits set (so p*q has 2*bits bits) and gcd(p-1, e) = 1."""
    while True:
        candidate = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        if (
            all(candidate % small for small in _SMALL_PRIMES)
            and math.gcd(candidate - 1, e) == 1
            and is_probable_prime(candidate)
        ):
            return candidate


def is_probable_prime(n: int, rounds: int = MILLER_RABIN_ROUNDS) -> bool:
    """Miller-Rabin with `rounds` random bases in [2, n-2]."""
    if n < 4:
        return n in (2, 3)
    if n % 2 == 0:
        return False
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(2 + secrets.randbelow(n - 3), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True
