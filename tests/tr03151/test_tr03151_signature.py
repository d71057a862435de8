"""ECDSA verification: signatures made by cryptography (independent of our code) on
every TR-03116-5 curve and hash, plain and DER, and the failure codes."""

from __future__ import annotations

import hashlib
import secrets

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from opentse.errors import FormatError, VerificationError
from opentse.tr03151.oids import SIGNATURE_ALGORITHMS, algorithm_oid
from opentse.tr03151.signature import (
    _DOMAIN,
    CURVES,
    _affine,
    _linear_combination,
    curve_name,
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


def _ecsdsa_sign(key: ec.EllipticCurvePrivateKey, data: bytes, hash_name: str) -> bytes:
    """TR-03111 4.2.3.1 with Q = [k]G computed by cryptography (independent of our
    point arithmetic): r = H_tau(x_Q || y_Q || M), s = k + r*d mod n, plain r||s."""
    n = _DOMAIN[curve_name(key.curve.name)].n
    tau = n.bit_length()
    size = (tau + 7) // 8
    field = (key.curve.key_size + 7) // 8
    d = key.private_numbers().private_value
    while True:
        k = secrets.randbelow(n - 1) + 1
        q = ec.derive_private_key(k, key.curve).public_key().public_numbers()
        digest = hashlib.new(
            hash_name, q.x.to_bytes(field, "big") + q.y.to_bytes(field, "big") + data
        ).digest()
        r = int.from_bytes(digest, "big") >> max(0, len(digest) * 8 - tau)
        s = (k + r * d) % n
        if r % n and s:
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")


@pytest.mark.parametrize("curve", sorted(CURVES))
def test_domain_parameters_and_point_arithmetic(
    curve: str, keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    c = _DOMAIN[curve]
    assert (c.gy * c.gy - c.gx**3 - c.a * c.gx - c.b) % c.p == 0
    g = (c.gx, c.gy, 1)
    assert _affine(c, _linear_combination(c, c.n, g, 0, None)) is None
    for d in (1, 2, 3, secrets.randbelow(c.n - 1) + 1, c.n - 1):
        ours = _affine(c, _linear_combination(c, d, g, 0, None))
        theirs = ec.derive_private_key(d, CURVES[curve][0]()).public_key().public_numbers()
        assert ours == (theirs.x, theirs.y)
    key = keys[curve].public_key().public_numbers()
    a, b = secrets.randbelow(c.n), secrets.randbelow(c.n)
    combined = _affine(c, _linear_combination(c, a, g, b, (key.x, key.y, 1)))
    d = keys[curve].private_numbers().private_value
    expected = (
        ec.derive_private_key((a + b * d) % c.n, CURVES[curve][0]()).public_key().public_numbers()
    )
    assert combined == (expected.x, expected.y)


@pytest.mark.parametrize("curve", sorted(CURVES))
def test_ecsdsa_every_curve(curve: str, keys: dict[str, ec.EllipticCurvePrivateKey]) -> None:
    key = keys[curve]
    oid = algorithm_oid("ecsdsa-plain-SHA256")
    assert oid == "0.4.0.127.0.7.1.1.4.4.2"  # TR-03111 v2.10 5.2.1.3
    signature = _ecsdsa_sign(key, DATA, "sha256")
    verify_signature(_point(key), oid, DATA, signature)
    for bad_data, bad_sig in (
        (DATA + b"x", signature),
        (DATA, signature[:-1] + bytes([signature[-1] ^ 1])),
    ):
        with pytest.raises(VerificationError) as info:
            verify_signature(_point(key), oid, bad_data, bad_sig)
        assert info.value.code == "E_SIGNATURE_INVALID"
    with pytest.raises(VerificationError):  # an ECDSA signature is no ECSDSA signature
        verify_signature(_point(key), oid, DATA, _sign_plain(key, DATA, "sha256"))


@pytest.mark.parametrize("name", sorted(n for n in SIGNATURE_ALGORITHMS if n.startswith("ecsdsa-")))
def test_ecsdsa_every_hash(name: str, keys: dict[str, ec.EllipticCurvePrivateKey]) -> None:
    key = keys["brainpoolP256r1"]
    oid, hash_name = SIGNATURE_ALGORITHMS[name]
    verify_with_public_key(key.public_key(), oid, DATA, _ecsdsa_sign(key, DATA, hash_name))
    for garbage in (b"", b"\x00" * 64, b"\xff" * 64, b"\x01" * 63):
        with pytest.raises(VerificationError):
            verify_with_public_key(key.public_key(), oid, DATA, garbage)


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
