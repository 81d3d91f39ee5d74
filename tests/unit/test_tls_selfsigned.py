"""The self-signed certificate: OpenSSL loads it, a client that pins it completes a handshake
with the metrics endpoint and checks its names, and other X.509 parsers agree with it."""

from __future__ import annotations

import datetime
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter

from canaryctl import tls
from canaryctl.server import Endpoint, metrics_endpoint
from canaryctl.tls import rsa, selfsigned

NAMES = ["canaryctl-7d9f-abcde", "localhost", "127.0.0.1", "::1"]
NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def certified() -> selfsigned.CertifiedKey:
    return selfsigned.generate(NAMES, key=rsa.generate_private_key(2048))


@pytest.fixture
def ca_file(certified, tmp_path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text(certified.certificate_pem)
    return path


@pytest.fixture
def served(certified) -> Iterator[Endpoint]:
    registry = CollectorRegistry()
    Counter("scrapes_total", "a counter", registry=registry).inc(7)
    endpoint = metrics_endpoint("127.0.0.1:0", registry, tls=tls.server_context(certified))
    yield endpoint.start()
    endpoint.stop()


def handshake(port: int, ca_pem: str, server_hostname: str) -> str:
    """Connect with verification on; the negotiated TLS version."""
    context = ssl.create_default_context(cadata=ca_pem)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname) as wrapped,
    ):
        return wrapped.version() or ""


def test_metrics_are_served_over_https_to_a_client_pinning_the_certificate(served, ca_file):
    for host in ("127.0.0.1", "localhost"):
        answer = requests.get(f"https://{host}:{served.port}/metrics", verify=ca_file, timeout=5)
        assert answer.status_code == 200 and "scrapes_total 7.0" in answer.text


def test_the_handshake_checks_names(served, certified):
    assert handshake(served.port, certified.certificate_pem, "canaryctl-7d9f-abcde") in (
        "TLSv1.2",
        "TLSv1.3",
    )
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        handshake(served.port, certified.certificate_pem, "other.example")
    assert tls.server_context(certified).minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_client_that_does_not_trust_it_is_refused_and_the_server_carries_on(served, ca_file):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://127.0.0.1:{served.port}/metrics", timeout=5)  # system CAs only
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as raw:
        raw.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")  # plain HTTP to the TLS port
        raw.recv(100)
    answer = requests.get(f"https://127.0.0.1:{served.port}/metrics", verify=ca_file, timeout=5)
    assert answer.status_code == 200


def test_no_file_is_written_to_load_the_generated_certificate(certified, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", "/nonexistent-read-only-root")
    assert isinstance(tls.server_context(certified), ssl.SSLContext)


def test_mounted_files_load_and_a_mismatched_key_is_refused(certified, tmp_path):
    (tmp_path / "tls.crt").write_text(certified.certificate_pem)
    (tmp_path / "tls.key").write_text(certified.key_pem)
    tls.server_context_from_files(str(tmp_path / "tls.crt"), str(tmp_path / "tls.key"))
    other = selfsigned.generate(NAMES, key=rsa.generate_private_key(1024))
    (tmp_path / "other.key").write_text(other.key_pem)
    with pytest.raises(ssl.SSLError):
        tls.server_context_from_files(str(tmp_path / "tls.crt"), str(tmp_path / "other.key"))


def test_the_repr_never_shows_the_key(certified):
    assert "PRIVATE" not in repr(certified) and certified.key_pem[40:80] not in repr(certified)


def test_default_names_are_the_hostname_and_loopback():
    assert selfsigned.default_names() == [socket.gethostname(), "localhost", "127.0.0.1", "::1"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl on PATH")
def test_openssl_parses_and_verifies_it_strictly(certified, ca_file):
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-text", "-in", ca_file],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Signature Algorithm: sha256WithRSAEncryption" in text
    assert "Public-Key: (2048 bit)" in text
    assert "DNS:canaryctl-7d9f-abcde, DNS:localhost, IP Address:127.0.0.1" in text
    assert "TLS Web Server Authentication" in text
    verify = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", ca_file, ca_file],
        capture_output=True,
        text=True,
    )
    assert verify.stdout.strip().endswith(": OK"), verify.stderr


def test_an_independent_x509_parser_agrees():
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives.asymmetric import padding

    made = selfsigned.generate(NAMES, now=NOW, key=rsa.generate_private_key(1024))
    certificate = x509.load_pem_x509_certificate(made.certificate_pem.encode())
    certificate.public_key().verify(
        certificate.signature,
        certificate.tbs_certificate_bytes,
        padding.PKCS1v15(),
        certificate.signature_hash_algorithm,
    )
    assert certificate.not_valid_before_utc == NOW - selfsigned.CLOCK_SKEW
    assert certificate.not_valid_after_utc == NOW + selfsigned.VALIDITY
    assert certificate.version == x509.Version.v3 and certificate.serial_number > 0
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["canaryctl-7d9f-abcde", "localhost"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    assert certificate.issuer == certificate.subject
