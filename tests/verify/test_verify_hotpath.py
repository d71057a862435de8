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
from opentse.tr03151.fastdecode import LogFields
from opentse.tr03151.logtime import TimeFormat
from opentse.tr03151.oids import SIGNATURE_ALGORITHMS
from opentse.verify.logcheck import LogEntry, SignatureChecker, _Verifier, _verify_chunk

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


def _entry(serial: bytes, oid: str, data: bytes, signature: bytes) -> LogEntry:
    fields = LogFields(
        "transaction", 2, serial, oid, 1, TimeFormat.UNIX, 0, None, signature, data,
        "StartTransaction", "c", b"", "", 1, None, None,
    )  # fmt: skip
    return LogEntry("x.log", "x.log", b"", fields)


def test_inlined_chunk_check_agrees_with_the_checker() -> None:
    """``_verify_chunk`` (the hot loop, DER by table inline) gives what
    ``SignatureChecker.verify`` gives: plain signatures with and without leading zero
    octets, altered ones, DER ones, odd lengths, two keys, an unknown serial."""
    checker = SignatureChecker()
    points: dict[bytes, bytes] = {}
    entries: list[LogEntry] = []
    expected: list[bool | None] = []
    for size, algorithm, name in (
        (32, hashes.SHA256(), "ecdsa-plain-SHA256"),
        (48, hashes.SHA384(), "ecdsa-plain-SHA384"),
    ):
        key = _KEYS[size]
        point = public_key_point(key)
        serial = hashlib.sha256(point).digest()
        points[serial] = point
        oid = SIGNATURE_ALGORITHMS[name][0]
        short = 0  # plain signatures whose r or s has a leading zero octet
        for i in range(3000):
            data = hashlib.sha256(str(i).encode()).digest() * 2
            plain = _plain(key, data, algorithm)
            short += 0 in (plain[0], plain[size])
            for signature in (plain, plain[:-1] + bytes((plain[-1] ^ 1,)), plain[:-1]):
                entries.append(_entry(serial, oid, data, signature))
                expected.append(checker.verify(point, oid, data, signature))
            if i >= 200 and short:
                break
        der = key.sign(b"der", ec.ECDSA(algorithm))
        entries.append(_entry(serial, oid, b"der", der))
        expected.append(checker.verify(point, oid, b"der", der))
    entries.append(_entry(b"\x01" * 32, oid, b"x", b"\x02" * 96))
    expected.append(None)
    signatures = [e.fields.signature_value for e in entries if e.fields]
    halves = [(s[0], s[len(s) // 2]) for s in signatures if len(s) in (64, 96)]
    leading_zero = sum(1 for r, s in halves if 0 in (r, s))
    assert leading_zero > 0  # ~1 in 64 plain signatures: the slow DER way is taken
    assert True in expected and False in expected
    _verify_chunk(entries, points)
    assert [e.signature_ok for e in entries] == expected
