"""A deterministic signer for tests: a key derived from a seed, RFC 6979 nonces.

Same seed + same data -> same signature bytes, so golden files and hypothesis
failures reproduce. Uses ``ECDSA(..., deterministic_signing=True)`` (cryptography
>= 44, RFC 6979). Signatures are plain r||s (TR-03111 5.2.1), like a real TSE.
Never use outside tests: the private key is a public function of the seed.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from opentse.tr03151.oids import algorithm_oid, hash_name

# curve name -> (cryptography curve, group order n, coordinate size in bytes)
_CURVES: dict[str, tuple[ec.EllipticCurve, int, int]] = {
    "P-256": (
        ec.SECP256R1(),
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        32,
    ),
    "P-384": (
        ec.SECP384R1(),
        int(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
            "581A0DB248B0A77AECEC196ACCC52973",
            16,
        ),
        48,
    ),
    "brainpoolP256r1": (
        ec.BrainpoolP256R1(),
        0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7,
        32,
    ),
    "brainpoolP384r1": (
        ec.BrainpoolP384R1(),
        int(
            "8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B31F166E6CAC0425A7"
            "CF3AB6AF6B7FC3103B883202E9046565",
            16,
        ),
        48,
    ),
}

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha3_224": hashes.SHA3_224,
    "sha3_256": hashes.SHA3_256,
    "sha3_384": hashes.SHA3_384,
    "sha3_512": hashes.SHA3_512,
}


def default_algorithm(curve: str) -> str:
    """SHA-256 on 256-bit curves, SHA-384 on 384-bit ones (TR-03116-5 pairing)."""
    return "ecdsa-plain-SHA384" if curve.endswith("384") or "384" in curve else "ecdsa-plain-SHA256"


def deterministic_private_key(
    seed: bytes | str, curve: str = "P-256"
) -> ec.EllipticCurvePrivateKey:
    """A private key that is a pure function of ``seed`` (for tests only)."""
    if isinstance(seed, str):
        seed = seed.encode()
    crv, order, _ = _CURVES[curve]
    scalar = int.from_bytes(hashlib.sha512(b"opentse-test-key" + seed).digest(), "big")
    return ec.derive_private_key(scalar % (order - 1) + 1, crv)


class DeterministicSigner:
    """Implements ``tr03151.signer.Signer`` with RFC 6979 nonces and a seeded key."""

    def __init__(
        self,
        seed: bytes | str = b"opentse",
        curve: str = "P-256",
        algorithm: str | None = None,
        *,
        private_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> None:
        self.curve = curve
        self.algorithm = algorithm or default_algorithm(curve)
        self._key = private_key or deterministic_private_key(seed, curve)
        self._size = _CURVES[curve][2]
        self._ecdsa = ec.ECDSA(_HASHES[hash_name(self.algorithm)](), deterministic_signing=True)
        self._oid = algorithm_oid(self.algorithm)
        self._point = self._key.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint
        )

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return self._key

    @property
    def algorithm_oid(self) -> str:
        return self._oid

    @property
    def public_key_point(self) -> bytes:
        return self._point

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self._key.sign(data, self._ecdsa))
        return r.to_bytes(self._size, "big") + s.to_bytes(self._size, "big")
