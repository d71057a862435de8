"""Keys: plain signatures checked by cryptography itself (independent of our code),
encryption at rest."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.crypto import keys
from opentse.errors import FormatError, OpenTSEError
from opentse.tr03151.oids import algorithm_oid
from opentse.tr03151.signer import Signer

SECRET = bytes(range(32))

CURVE_FACTS = {
    # curve: (cryptography curve, coordinate bytes, default algorithm, hash)
    "P-256": (ec.SECP256R1, 32, "ecdsa-plain-SHA256", hashes.SHA256),
    "P-384": (ec.SECP384R1, 48, "ecdsa-plain-SHA384", hashes.SHA384),
    "brainpoolP256r1": (ec.BrainpoolP256R1, 32, "ecdsa-plain-SHA256", hashes.SHA256),
    "brainpoolP384r1": (ec.BrainpoolP384R1, 48, "ecdsa-plain-SHA384", hashes.SHA384),
}


def test_curves_constant() -> None:
    assert keys.CURVES == ("P-256", "P-384", "brainpoolP256r1", "brainpoolP384r1")


@pytest.mark.parametrize("curve", keys.CURVES)
def test_generate_point_serial_and_default_algorithm(curve: str) -> None:
    curve_cls, size, algorithm, _ = CURVE_FACTS[curve]
    key = keys.generate_private_key(curve)
    assert isinstance(key.curve, curve_cls)
    assert keys.curve_name(key) == curve
    point = keys.public_key_point(key)
    assert len(point) == 1 + 2 * size and point[0] == 4
    numbers = key.public_key().public_numbers()
    assert point[1 : 1 + size] == numbers.x.to_bytes(size, "big")
    assert point[1 + size :] == numbers.y.to_bytes(size, "big")
    assert keys.serial_number(point) == hashlib.sha256(point).digest()
    assert keys.default_algorithm(curve) == algorithm


@pytest.mark.parametrize("curve", keys.CURVES)
def test_plain_signature_verifies_independently(curve: str) -> None:
    _, size, algorithm, hash_cls = CURVE_FACTS[curve]
    key = keys.generate_private_key(curve)
    signer: Signer = keys.PlainSigner(key, algorithm)
    assert signer.algorithm_oid == algorithm_oid(algorithm)
    assert signer.public_key_point == keys.public_key_point(key)
    public = ec.EllipticCurvePublicKey.from_encoded_point(key.curve, signer.public_key_point)
    for i in range(20):  # several signatures: r or s with leading zero bytes must still fit
        data = b"log message %d" % i
        sig = signer.sign(data)
        assert len(sig) == 2 * size
        der = encode_dss_signature(
            int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
        )
        public.verify(der, data, ec.ECDSA(hash_cls()))
    bad = encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big"))
    with pytest.raises(InvalidSignature):
        public.verify(bad, b"other data", ec.ECDSA(hash_cls()))


@pytest.mark.parametrize("curve", ["P-256", "brainpoolP384r1"])
def test_short_r_or_s_is_zero_padded(curve: str) -> None:
    _, size, algorithm, hash_cls = CURVE_FACTS[curve]
    key = keys.generate_private_key(curve)
    signer = keys.PlainSigner(key, algorithm)
    public = key.public_key()
    for i in range(3000):  # P(r or s has a leading zero byte) ~ 1/128 per signature
        data = b"%d" % i
        sig = signer.sign(data)
        assert len(sig) == 2 * size
        if sig[0] == 0 or sig[size] == 0:
            r, s = int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
            public.verify(encode_dss_signature(r, s), data, ec.ECDSA(hash_cls()))
            return
    pytest.fail("no signature with a short r or s in 3000 tries")


@settings(max_examples=300, deadline=None)
@given(
    size=st.sampled_from([32, 48]),
    data=st.data(),
)
def test_der_to_plain_matches_the_der_encoder(size: int, data: st.DataObject) -> None:
    """r and s from 1 to the largest value of the curve size (short ones, ones with a
    high first bit and thus a 0x00 prefix in DER), encoded by cryptography's own DER
    encoder: the slicing reads back exactly the integers, left-padded."""
    value = st.one_of(
        st.integers(1, 2**16),
        st.integers(1, 2 ** (8 * size) - 1),
        st.integers(2 ** (8 * size - 1), 2 ** (8 * size) - 1),
    )
    r, s = data.draw(value), data.draw(value)
    plain = keys.der_to_plain(encode_dss_signature(r, s), size)
    assert plain == r.to_bytes(size, "big") + s.to_bytes(size, "big")


def test_plain_signer_refuses_unknown_algorithm_and_curve() -> None:
    key = keys.generate_private_key("P-256")
    with pytest.raises(ValueError, match="unsupported signature algorithm"):
        keys.PlainSigner(key, "ecsdsa-plain-SHA256")
    with pytest.raises(ValueError, match="unsupported curve"):
        keys.PlainSigner(ec.generate_private_key(ec.SECP521R1()), "ecdsa-plain-SHA512")
    with pytest.raises(ValueError, match="unsupported curve"):
        keys.generate_private_key("P-521")


@pytest.mark.parametrize("curve", keys.CURVES)
def test_encrypt_decrypt_round_trip(curve: str) -> None:
    key = keys.generate_private_key(curve)
    blob = keys.encrypt_private_key(key, SECRET)
    back = keys.decrypt_private_key(blob, SECRET)
    assert back.private_numbers() == key.private_numbers()
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    scalar = key.private_numbers().private_value.to_bytes(key.curve.key_size // 8, "big")
    assert pkcs8 not in blob
    assert scalar not in blob
    assert blob.startswith(b"OTK1")
    # fresh salt and nonce each time
    assert keys.encrypt_private_key(key, SECRET) != blob


def test_wrong_secret_and_tampering_refused_without_key_material() -> None:
    key = keys.generate_private_key("P-256")
    blob = keys.encrypt_private_key(key, SECRET)
    with pytest.raises(keys.KeyDecryptionError) as info:
        keys.decrypt_private_key(blob, bytes(32))
    assert isinstance(info.value, OpenTSEError)
    assert info.value.code == "E_KEY_DECRYPTION"
    assert SECRET.hex() not in str(info.value) and blob.hex() not in str(info.value)
    tampered = bytearray(blob)
    tampered[10] ^= 1  # header (salt) is authenticated too
    with pytest.raises(keys.KeyDecryptionError):
        keys.decrypt_private_key(bytes(tampered), SECRET)
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(keys.KeyDecryptionError):
        keys.decrypt_private_key(bytes(tampered), SECRET)
    with pytest.raises(FormatError) as fmt:
        keys.decrypt_private_key(b"OTK2" + blob[4:], SECRET)
    assert fmt.value.code == "E_KEY_FORMAT"
    with pytest.raises(FormatError):
        keys.decrypt_private_key(b"", SECRET)


@pytest.mark.parametrize("curve", keys.CURVES)
def test_signatures_verify_with_the_project_verifier(curve: str) -> None:
    """Contract check against tr03151.signature (the code exports are verified with)."""
    signature = pytest.importorskip("opentse.tr03151.signature")
    key = keys.generate_private_key(curve)
    signer = keys.PlainSigner(key, keys.default_algorithm(curve))
    data = b"signed part"
    sig = signer.sign(data)
    signature.verify_signature(signer.public_key_point, signer.algorithm_oid, data, sig, curve)
    with pytest.raises(OpenTSEError):
        signature.verify_signature(signer.public_key_point, signer.algorithm_oid, b"x", sig, curve)
