"""ECDSA verification: signatures made by cryptography (independent of our code) on
every TR-03116-5 curve and hash, plain and DER, and the failure codes."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from opentse.errors import FormatError, VerificationError
from opentse.tr03151.oids import SIGNATURE_ALGORITHMS, algorithm_oid
from opentse.tr03151.signature import (
    CURVES,
    der_to_plain,
    plain_to_der,
    public_key_from_point,
    verify_signature,
    verify_with_public_key,
)

HASHES = {
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha3_224": hashes.SHA3_224,
    "sha3_256": hashes.SHA3_256,
    "sha3_384": hashes.SHA3_384,
    "sha3_512": hashes.SHA3_512,
}
DATA = b"\x02\x01\x02 signed part of a log message"


def _point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _sign_plain(key: ec.EllipticCurvePrivateKey, data: bytes, hash_name: str) -> bytes:
    der = key.sign(data, ec.ECDSA(HASHES[hash_name]()))
    size = (key.curve.key_size + 7) // 8
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


@pytest.fixture(scope="module")
def keys() -> dict[str, ec.EllipticCurvePrivateKey]:
    return {name: ec.generate_private_key(curve()) for name, (curve, _) in CURVES.items()}


@pytest.mark.parametrize("curve", sorted(CURVES))
def test_every_curve_plain_and_der(curve: str, keys: dict[str, ec.EllipticCurvePrivateKey]) -> None:
    key = keys[curve]
    point = _point(key)
    assert public_key_from_point(point).curve.name == key.curve.name
    oid = algorithm_oid("ecdsa-plain-SHA384")
    plain = _sign_plain(key, DATA, "sha384")
    assert len(plain) == 2 * CURVES[curve][1]
    verify_signature(point, oid, DATA, plain)
    verify_signature(point, oid, DATA, plain_to_der(plain))
    assert der_to_plain(plain_to_der(plain), CURVES[curve][1]) == plain
    with pytest.raises(VerificationError) as info:
        verify_signature(point, oid, DATA + b"x", plain)
    assert info.value.code == "E_SIGNATURE_INVALID"


@pytest.mark.parametrize("name", sorted(n for n in SIGNATURE_ALGORITHMS if n.startswith("ecdsa-")))
def test_every_ecdsa_hash(name: str, keys: dict[str, ec.EllipticCurvePrivateKey]) -> None:
    key = keys["P-256"]
    oid, hash_name = SIGNATURE_ALGORITHMS[name]
    signature = _sign_plain(key, DATA, hash_name)
    verify_signature(_point(key), oid, DATA, signature)
    verify_signature(_point(key), name, DATA, signature)  # names accepted too
    verify_with_public_key(key.public_key(), oid, DATA, signature)
    other = "sha3_256" if hash_name != "sha3_256" else "sha256"
    with pytest.raises(VerificationError):
        verify_signature(_point(key), oid, DATA, _sign_plain(key, DATA, other))


def test_ecsdsa_is_reported_unsupported(keys: dict[str, ec.EllipticCurvePrivateKey]) -> None:
    key = keys["P-256"]
    with pytest.raises(VerificationError) as info:
        verify_signature(_point(key), algorithm_oid("ecsdsa-plain-SHA256"), DATA, b"\x01" * 64)
    assert info.value.code == "E_ALGORITHM_UNSUPPORTED"


def test_unknown_algorithm_and_bad_points(keys: dict[str, ec.EllipticCurvePrivateKey]) -> None:
    key = keys["P-256"]
    signature = _sign_plain(key, DATA, "sha256")
    with pytest.raises(VerificationError) as info:
        verify_signature(_point(key), "1.2.3.4", DATA, signature)
    assert info.value.code == "E_ALGORITHM_UNSUPPORTED"
    bad = bytearray(_point(key))
    bad[-1] ^= 1
    with pytest.raises(VerificationError) as info:
        verify_signature(bytes(bad), algorithm_oid("ecdsa-plain-SHA256"), DATA, signature)
    assert info.value.code == "E_PUBLIC_KEY_INVALID"
    with pytest.raises(VerificationError):
        verify_signature(
            b"\x04" + b"\x01" * 40, algorithm_oid("ecdsa-plain-SHA256"), DATA, signature
        )
    with pytest.raises(FormatError):
        public_key_from_point(b"\x04" + b"\x01" * 40)
    with pytest.raises(FormatError):
        public_key_from_point(_point(key), curve="secp192r1")


def test_compressed_point_and_explicit_curve(keys: dict[str, ec.EllipticCurvePrivateKey]) -> None:
    key = keys["brainpoolP384r1"]
    compressed = key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    signature = _sign_plain(key, DATA, "sha384")
    verify_signature(compressed, algorithm_oid("ecdsa-plain-SHA384"), DATA, signature)
    verify_signature(
        _point(key), algorithm_oid("ecdsa-plain-SHA384"), DATA, signature, curve="brainpoolp384r1"
    )


def test_garbage_signatures_fail_cleanly(keys: dict[str, ec.EllipticCurvePrivateKey]) -> None:
    point = _point(keys["P-256"])
    oid = algorithm_oid("ecdsa-plain-SHA256")
    for garbage in (
        b"",
        b"\x30",
        b"\x30\x02\x01",
        b"\x00" * 64,
        b"\xff" * 64,
        b"\x01" * 63,
        b"\x30" * 70,
    ):
        with pytest.raises(VerificationError) as info:
            verify_signature(point, oid, DATA, garbage)
        assert info.value.code == "E_SIGNATURE_INVALID"


def test_plain_der_helpers_reject_bad_input() -> None:
    with pytest.raises(FormatError):
        plain_to_der(b"\x01" * 5)
    with pytest.raises(FormatError):
        der_to_plain(b"\x01\x02", 32)
    with pytest.raises(FormatError):
        der_to_plain(plain_to_der(b"\xff" * 64), 16)
