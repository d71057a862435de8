"""The Signer protocol: what the engine needs from a key (sharp tools live in crypto/)."""

from __future__ import annotations

from typing import Protocol


class Signer(Protocol):
    """Signs with ECDSA/ECSDSA in plain format (r||s, each zero-padded to the curve size)."""

    @property
    def algorithm_oid(self) -> str: ...

    @property
    def public_key_point(self) -> bytes:
        """Uncompressed point 04||X||Y; the TSE serial number is its SHA-256."""
        ...

    def sign(self, data: bytes) -> bytes: ...
