"""opentse.testing helpers: the deterministic signer really is deterministic and
its plain signatures verify with cryptography (independently of our verifier)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from opentse.testing import DeterministicSigner, FrozenClock
from opentse.tr03151.oids import algorithm_oid
from opentse.tr03151.signature import verify_signature


@pytest.mark.parametrize("curve", ["P-256", "P-384", "brainpoolP256r1", "brainpoolP384r1"])
def test_deterministic_signer(curve: str) -> None:
    a = DeterministicSigner("seed", curve)
    b = DeterministicSigner("seed", curve)
    assert (
        a.public_key_point
        == b.public_key_point
        != DeterministicSigner("other", curve).public_key_point
    )
    sig = a.sign(b"data")
    assert sig == b.sign(b"data") and sig != a.sign(b"data2")
    size = 32 if "256" in curve else 48
    assert len(sig) == 2 * size
    algorithm = "ecdsa-plain-SHA256" if size == 32 else "ecdsa-plain-SHA384"
    assert a.algorithm_oid == algorithm_oid(algorithm)
    der = encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big"))
    hash_alg = hashes.SHA256() if size == 32 else hashes.SHA384()
    a.private_key.public_key().verify(der, b"data", ec.ECDSA(hash_alg))  # raises if wrong
    verify_signature(a.public_key_point, a.algorithm_oid, b"data", sig, curve)
    assert hashlib.sha256(a.public_key_point).digest() != a.public_key_point


def test_frozen_clock() -> None:
    clock = FrozenClock(100)
    assert clock.now() == 100
    assert clock.advance(5) == 105 and clock.now() == 105
    clock.advance(-10)
    assert clock.now() == 95
    clock.set(7)
    assert clock.now() == 7
