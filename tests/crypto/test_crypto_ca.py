"""Local CA: chains checked with cryptography's own verification."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from opentse.crypto import keys
from opentse.crypto.ca import LocalCA
from opentse.errors import ProtocolError

SECRET = b"\x42" * 32
NOW = 1_700_000_000


@pytest.fixture(scope="module")
def ca() -> LocalCA:
    return LocalCA.create(SECRET, NOW, name="test CA")


@pytest.mark.parametrize("curve", keys.CURVES)
def test_issued_certificate_chains_and_names_the_serial(ca: LocalCA, curve: str) -> None:
    key = keys.generate_private_key(curve)
    point = keys.public_key_point(key)
    serial = keys.serial_number(point).hex()
    der = ca.issue_tse_certificate(key.public_key(), serial, NOW)
    cert = x509.load_der_x509_certificate(der)
    sub_der, root_der = ca.chain()
    sub = x509.load_der_x509_certificate(sub_der)
    root = x509.load_der_x509_certificate(root_der)
    cert.verify_directly_issued_by(sub)
    sub.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    with pytest.raises(ValueError):
        cert.verify_directly_issued_by(root)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == serial.upper()
    cert_key = cert.public_key()
    assert isinstance(cert_key, ec.EllipticCurvePublicKey)
    assert keys.public_key_point(cert_key) == point
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA384
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = sub.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert cert.not_valid_before_utc == dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 365 * 5


def test_ca_certificates(ca: LocalCA) -> None:
    sub_der, root_der = ca.chain()
    for der, years in ((root_der, 20), (sub_der, 15)):
        cert = x509.load_der_x509_certificate(der)
        pub = cert.public_key()
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        assert isinstance(pub.curve, ec.BrainpoolP384R1)
        assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA384
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        span = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert years * 365 <= span.days <= years * 366
    # a TSE certificate never outlives its sub-CA
    key = keys.generate_private_key("P-256")
    serial = keys.serial_number(keys.public_key_point(key)).hex()
    der = ca.issue_tse_certificate(key.public_key(), serial, NOW, days=365 * 40)
    sub = x509.load_der_x509_certificate(sub_der)
    assert x509.load_der_x509_certificate(der).not_valid_after_utc == sub.not_valid_after_utc


def test_serial_must_match_key(ca: LocalCA) -> None:
    key = keys.generate_private_key("P-256")
    with pytest.raises(ProtocolError) as info:
        ca.issue_tse_certificate(key.public_key(), "00" * 32, NOW)
    assert info.value.code == "E_SERIAL_MISMATCH"


def test_to_bytes_from_bytes(ca: LocalCA) -> None:
    data = ca.to_bytes()
    loaded = LocalCA.from_bytes(data, SECRET)
    assert loaded.chain() == ca.chain()
    key = keys.generate_private_key("P-384")
    serial = keys.serial_number(keys.public_key_point(key)).hex()
    cert = x509.load_der_x509_certificate(
        loaded.issue_tse_certificate(key.public_key(), serial, NOW)
    )
    cert.verify_directly_issued_by(x509.load_der_x509_certificate(ca.chain()[0]))
    with pytest.raises(keys.KeyDecryptionError):
        LocalCA.from_bytes(data, b"\x00" * 32)
    assert "PRIVATE" not in data.decode()
    assert SECRET.hex() not in data.decode() and "secret" not in repr(ca).lower()
