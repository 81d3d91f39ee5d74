"""Server-side `ssl.SSLContext`s for the metrics endpoint, from files or from PEM in memory.

`ssl` only loads a certificate chain from a path, while the controller's image has a
read-only root filesystem and a generated key should never reach a disk. So PEM text is
written to an anonymous in-memory file (`memfd_create`) and loaded through its
`/proc/self/fd` path, then closed; where that is unavailable (not Linux), a private temp
file is used and deleted at once.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator

from canaryctl.tls import selfsigned


def server_context_from_files(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A TLS 1.2+ server context for a mounted certificate (chain) and key."""
    context = _new_context()
    context.load_cert_chain(cert_file, key_file)
    return context


def server_context(certified: selfsigned.CertifiedKey | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ server context for `certified`, or for a freshly generated self-signed one."""
    certified = certified or selfsigned.generate()
    context = _new_context()
    with _in_memory_file(certified.certificate_pem + certified.key_pem) as path:
        context.load_cert_chain(path)
    return context


def _new_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@contextlib.contextmanager
def _in_memory_file(text: str) -> Iterator[str]:
    """A path whose contents are `text`, valid inside the `with` block only."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("canaryctl-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, text.encode())
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as handle:  # mode 0600
        handle.write(text)
        handle.flush()
        yield handle.name
