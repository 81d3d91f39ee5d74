"""The DER encoder and RSA pieces under the self-signed certificate, against known encodings
and against OpenSSL (through `ssl` and, when on PATH, the `openssl` command)."""

from __future__ import annotations

import datetime
import math
import shutil
import subprocess

import pytest

from canaryctl.tls import der, rsa
from canaryctl.tls.selfsigned import pem


@pytest.fixture(scope="module")
def key() -> rsa.PrivateKey:
    return rsa.generate_private_key(2048)


@pytest.mark.parametrize(
    "value, encoded",
    [
        (0, "020100"),
        (127, "02017f"),
        (128, "02020080"),  # a leading zero keeps it positive
        (256, "02020100"),
        (-1, "0201ff"),
        (-129, "0202ff7f"),
        (2**64, "0209010000000000000000"),
    ],
)
def test_integers_are_minimal_twos_complement(value, encoded):
    assert der.integer(value).hex() == encoded


@pytest.mark.parametrize(
    "size, header", [(0, "0400"), (127, "047f"), (128, "048180"), (300, "0482012c")]
)
def test_lengths_use_the_short_form_below_128_else_the_long_form(size, header):
    assert der.octet_string(b"\0" * size).hex().startswith(header)
    assert len(der.octet_string(b"\0" * size)) == size + len(header) // 2


@pytest.mark.parametrize(
    "dotted, encoded",
    [
        ("1.2.840.113549.1.1.11", "06092a864886f70d01010b"),  # sha256WithRSAEncryption
        ("2.5.29.17", "0603551d11"),  # subjectAltName
        ("1.3.6.1.5.5.7.3.1", "06082b06010505070301"),  # serverAuth
    ],
)
def test_object_identifiers(dotted, encoded):
    assert der.oid(dotted).hex() == encoded


def test_bad_object_identifiers_are_refused():
    for bad in ("1", "3.1", "1.40"):
        with pytest.raises(ValueError):
            der.oid(bad)


def test_named_bits_drop_trailing_zeros():
    assert (
        der.named_bits(0, 2, 5).hex() == "030202a4"
    )  # digitalSignature, keyEncipherment, certSign
    assert der.named_bits(0).hex() == "03020780"
    assert der.named_bits(8).hex() == "0303070080"


def test_times_switch_to_generalized_time_in_2050():
    utc = datetime.UTC
    assert der.time(datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=utc)) == b"\x17\x0d" + (
        b"491231235959Z"
    )
    assert der.time(datetime.datetime(2050, 1, 1, tzinfo=utc)) == b"\x18\x0f20500101000000Z"


def test_set_of_sorts_its_elements():
    assert der.set_of(der.integer(2), der.integer(1)) == der.tlv(
        der.SET, der.integer(1) + der.integer(2)
    )


@pytest.mark.parametrize("prime", [2, 3, 5, 7919, 2**89 - 1, 2**127 - 1, 2**521 - 1])
def test_primes_pass_miller_rabin(prime):
    assert rsa.is_probable_prime(prime)


@pytest.mark.parametrize(
    "composite",
    [1, 4, 561, 41041, 825265, 3215031751, (2**61 - 1) * (2**89 - 1), 2**128 + 1],
)
def test_composites_and_carmichael_numbers_fail_it(composite):
    assert not rsa.is_probable_prime(composite)


def test_generated_key_is_consistent(key):
    assert key.n.bit_length() == 2048 and key.e == 65537
    assert key.p * key.q == key.n and rsa.is_probable_prime(key.p) and rsa.is_probable_prime(key.q)
    assert key.e * key.d % math.lcm(key.p - 1, key.q - 1) == 1
    assert "d=" not in repr(key) and str(key.p) not in repr(key)


def test_signature_verifies_and_a_changed_message_does_not(key):
    signature = key.sign_sha256(b"tbsCertificate")
    assert len(signature) == 256
    assert rsa.verify_sha256(key.n, key.e, b"tbsCertificate", signature)
    assert not rsa.verify_sha256(key.n, key.e, b"tbsCertificatf", signature)
    assert not rsa.verify_sha256(key.n, key.e, b"tbsCertificate", signature[:-1] + b"\0")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl on PATH")
def test_openssl_reads_the_key_and_verifies_the_signature(key, tmp_path):
    (tmp_path / "key.pem").write_text(pem("PRIVATE KEY", key.pkcs8_der()))
    check = subprocess.run(
        ["openssl", "rsa", "-check", "-noout", "-in", tmp_path / "key.pem"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and "RSA key ok" in check.stdout, check.stderr
    (tmp_path / "public.pem").write_text(pem("PUBLIC KEY", key.subject_public_key_info()))
    (tmp_path / "message").write_bytes(b"signed by canaryctl")
    (tmp_path / "signature").write_bytes(key.sign_sha256(b"signed by canaryctl"))
    verify = subprocess.run(
        [
            *("openssl", "dgst", "-sha256", "-verify", tmp_path / "public.pem"),
            *("-signature", tmp_path / "signature", tmp_path / "message"),
        ],
        capture_output=True,
        text=True,
    )
    assert verify.stdout.strip() == "Verified OK", verify.stderr
