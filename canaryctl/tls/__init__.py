"""TLS for the metrics endpoint without a cryptography dependency.

`canaryctl run --metrics-secure` serves `/metrics` over HTTPS. Operators usually mount a
certificate (cert-manager, `--metrics-cert-file/--metrics-key-file`); when none is given,
canaryctl makes a self-signed one at start, in memory. The runtime dependencies are fixed
(no `cryptography`), so the few pieces needed for that are written here and kept small:
`der` encodes ASN.1, `rsa` makes a key and signs, `selfsigned` builds the X.509
certificate, `context` turns PEM text into an `ssl.SSLContext` without touching the disk.
"""

from canaryctl.tls.context import server_context, server_context_from_files

__all__ = ["server_context", "server_context_from_files"]
