"""The verifier's hot path: plain r||s -> DER by table, cached Prehashed verifiers,
the one-process and the worker-pool runs giving the same entries."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.crypto.keys import public_key_point
from opentse.tr03151.oids import SIGNATURE_ALGORITHMS
from opentse.verify.logcheck import SignatureChecker, _Verifier

_KEYS = {
    32: ec.generate_private_key(ec.SECP256R1()),
    48: ec.generate_private_key(ec.SECP384R1()),
}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([32, 48]), st.data())
def test_plain_to_der_matches_cryptography(size: int, data: st.DataObject) -> None:
    """Every r, s (top bit set or not, leading zero octets or not) gives minimal DER."""
    verifier = _Verifier(_KEYS[size].public_key(), "sha256")
    top = 2 ** (8 * size) - 1
    r = data.draw(st.one_of(st.integers(1, top), st.integers(1, 2**200)))
    s = data.draw(st.one_of(st.integers(1, top), st.integers(1, 2**8)))
    plain = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    assert verifier.der(plain) == encode_dss_signature(r, s)


def _plain(key: ec.EllipticCurvePrivateKey, data: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    size = (key.curve.key_size + 7) // 8
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(algorithm)))
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def test_checker_accepts_real_signatures_and_refuses_altered_ones() -> None:
    checker = SignatureChecker()
    for size, algorithm, name, minimum in (
        (32, hashes.SHA256(), "ecdsa-plain-SHA256", 1),
        (48, hashes.SHA384(), "ecdsa-plain-SHA384", 0),
    ):
        key = _KEYS[size]
        point = public_key_point(key)
        oid = SIGNATURE_ALGORITHMS[name][0]
        short = 0  # signatures whose r or s has a leading zero octet (2 in 256)
        for i in range(3000):
            data = hashlib.sha256(str(i).encode()).digest() * 3
            plain = _plain(key, data, algorithm)
            short += plain[0] == 0 or plain[size] == 0
            assert checker.verify(point, oid, data, plain)
            assert not checker.verify(point, oid, data + b"x", plain)
            if i >= 40 and short >= minimum:
                break
        assert short >= minimum
        # DER-encoded signatures still verify (the core's general path)
        assert checker.verify(point, oid, b"der", key.sign(b"der", ec.ECDSA(algorithm)))
        assert not checker.verify(point, oid, b"der", b"\x00" * (2 * size))
