"""Trusting one TLS certificate by its SHA-256 fingerprint.

A LAN TSE (``opentse serve --lan``) has a self-signed certificate that no CA vouches
for; the operator reads its fingerprint where ``serve --lan`` prints it. A client
given that fingerprint (``opentse pos --fingerprint``, ``opentse lan test``) fetches
the certificate before it sends anything, compares, and then trusts that certificate
alone; its name is not checked, since a register dials an IP address.
"""

from __future__ import annotations

import hashlib
import ssl
from urllib.parse import urlsplit


def fingerprint_hex(text: str) -> str:
    """``AB:CD:...``, ``abcd...`` or ``SHA256:AB:CD...`` -> ``ABCD...``."""
    return text.strip().upper().removeprefix("SHA256:").replace(":", "").replace(" ", "")


class PinMismatch(Exception):
    """The server's certificate has another fingerprint (both upper-case hex)."""

    def __init__(self, got: str, wanted: str) -> None:
        super().__init__(f"certificate fingerprint {got}, not {wanted}")
        self.got = got
        self.wanted = wanted


def pinned_context(url: str, fingerprint: str, timeout: float) -> ssl.SSLContext:
    """An SSL context for ``url`` that trusts only the server's certificate, after
    checking that its SHA-256 is ``fingerprint``: PinMismatch when it is not, OSError
    when the server cannot be reached within ``timeout`` seconds."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 443)
    pem = ssl.get_server_certificate(address, timeout=timeout)
    got = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()
    wanted = fingerprint_hex(fingerprint)
    if got != wanted:
        raise PinMismatch(got, wanted)
    context = ssl.create_default_context(cadata=pem)
    context.check_hostname = False  # pinned by its fingerprint instead of by name
    return context
