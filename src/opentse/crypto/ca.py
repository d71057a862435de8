"""The installation's local CA: root -> sub-CA -> one certificate per TSE.

A certified TSE's certificate is issued by a BSI-accredited CA; ours is issued by a
CA created on first start of each installation, so that exports carry the same kind
of chain (TSE certificate + issuing CAs, digest tr03151.md "TAR export") and tools
that check chains work. It proves nothing beyond "this installation made the key".

Keys: brainpoolP384r1, signatures ecdsa-with-SHA384 (as the CAs of certified TSEs).
Validity: root 20 years, sub-CA 15 years, TSE certificates 5 years by default (never
beyond the sub-CA). The CA keys are stored encrypted with the installation secret
(``crypto.keys.encrypt_private_key``) in the JSON of ``to_bytes``.

TSE certificate subject: CN = the TSE serial number (SHA-256 of the public key point)
as 64 UPPER-case hex digits, the same spelling as the certificate file name in exports.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from opentse.crypto.keys import (
    decrypt_private_key,
    encrypt_private_key,
    generate_private_key,
    public_key_point,
    serial_number,
)
from opentse.errors import FormatError, ProtocolError, StateError

CA_CURVE = "brainpoolP384r1"
ROOT_YEARS = 20
SUB_CA_YEARS = 15
_FORMAT = "opentse-local-ca"
_VERSION = 1


def _time(unix: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix, tz=dt.UTC)


def _years(unix: int, years: int) -> dt.datetime:
    return _time(unix) + dt.timedelta(days=365 * years + years // 4)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "opentse"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_extensions(
    builder: x509.CertificateBuilder,
    public_key: ec.EllipticCurvePublicKey,
    issuer_key: ec.EllipticCurvePublicKey,
    path_length: int,
) -> x509.CertificateBuilder:
    return (
        builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), False)
    )


@dataclass(frozen=True)
class LocalCA:
    """Root and sub-CA certificates with the (decrypted, in memory) sub-CA and root keys."""

    root_certificate: x509.Certificate
    sub_certificate: x509.Certificate
    _root_key: ec.EllipticCurvePrivateKey
    _sub_key: ec.EllipticCurvePrivateKey
    _secret: bytes

    def __repr__(self) -> str:  # never show keys or the secret
        return f"LocalCA(root={self.root_certificate.subject.rfc4514_string()!r})"

    @classmethod
    def create(cls, secret: bytes, now: int, name: str = "opentse local CA") -> LocalCA:
        """A new root and sub-CA; ``now`` (unix seconds) starts their validity."""
        root_key = generate_private_key(CA_CURVE)
        sub_key = generate_private_key(CA_CURVE)
        root_name = _name(f"{name} root")
        root = _ca_extensions(
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_time(now))
            .not_valid_after(_years(now, ROOT_YEARS)),
            root_key.public_key(),
            root_key.public_key(),
            path_length=1,
        ).sign(root_key, hashes.SHA384())
        sub = _ca_extensions(
            x509.CertificateBuilder()
            .subject_name(_name(f"{name} sub-CA"))
            .issuer_name(root_name)
            .public_key(sub_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_time(now))
            .not_valid_after(_years(now, SUB_CA_YEARS)),
            sub_key.public_key(),
            root_key.public_key(),
            path_length=0,
        ).sign(root_key, hashes.SHA384())
        return cls(root, sub, root_key, sub_key, secret)

    def to_bytes(self) -> bytes:
        """JSON with both certificates (DER, base64) and both keys encrypted with the
        installation secret; safe to keep in the database."""

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode("ascii")

        doc = {
            "format": _FORMAT,
            "version": _VERSION,
            "root_certificate": b64(self.root_certificate.public_bytes(serialization.Encoding.DER)),
            "sub_certificate": b64(self.sub_certificate.public_bytes(serialization.Encoding.DER)),
            "root_key": b64(encrypt_private_key(self._root_key, self._secret)),
            "sub_key": b64(encrypt_private_key(self._sub_key, self._secret)),
        }
        return json.dumps(doc, sort_keys=True).encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes, secret: bytes) -> LocalCA:
        """Load ``to_bytes`` output; wrong secret -> KeyDecryptionError (E_KEY_DECRYPTION)."""
        try:
            doc = json.loads(data)
            if doc.get("format") != _FORMAT or doc.get("version") != _VERSION:
                raise ValueError("unknown format or version")
            root = x509.load_der_x509_certificate(base64.b64decode(doc["root_certificate"]))
            sub = x509.load_der_x509_certificate(base64.b64decode(doc["sub_certificate"]))
            root_blob = base64.b64decode(doc["root_key"])
            sub_blob = base64.b64decode(doc["sub_key"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FormatError(f"local CA data unreadable: {exc}", code="E_CA_FORMAT") from None
        root_key = decrypt_private_key(root_blob, secret)
        sub_key = decrypt_private_key(sub_blob, secret)
        for cert, key in ((root, root_key), (sub, sub_key)):
            cert_key = cert.public_key()
            if not isinstance(cert_key, ec.EllipticCurvePublicKey) or public_key_point(
                cert_key
            ) != public_key_point(key):
                raise FormatError("local CA keys do not match its certificates", code="E_CA_FORMAT")
        return cls(root, sub, root_key, sub_key, secret)

    def issue_tse_certificate(
        self,
        public_key: ec.EllipticCurvePublicKey,
        serial_hex: str,
        now: int,
        days: int = 365 * 5,
    ) -> bytes:
        """DER certificate for a TSE key, CN = serial (upper-case hex), signed by the
        sub-CA. ``serial_hex`` must be the SHA-256 of the key's point (TR-03151 5.1)."""
        expected = serial_number(public_key_point(public_key)).hex().upper()
        if serial_hex.upper() != expected:
            raise ProtocolError(
                "serial number does not match the public key", code="E_SERIAL_MISMATCH"
            )
        ca_until = self.sub_certificate.not_valid_after_utc
        if ca_until <= _time(now):  # a certificate cannot end before it starts
            raise StateError(
                f"the local CA of this installation (sub-CA) expired on {ca_until:%Y-%m-%d}:"
                " it issues no TSE certificates any more",
                code="E_CA_EXPIRED",
            )
        not_after = min(_time(now) + dt.timedelta(days=days), ca_until)
        sub_public = self._sub_key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(expected))
            .issuer_name(self.sub_certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_time(now))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(sub_public), False)
            .sign(self._sub_key, hashes.SHA384())
        )
        return cert.public_bytes(serialization.Encoding.DER)

    def chain(self) -> tuple[bytes, bytes]:
        """(sub-CA DER, root DER): what follows a TSE certificate in an export."""
        return (
            self.sub_certificate.public_bytes(serialization.Encoding.DER),
            self.root_certificate.public_bytes(serialization.Encoding.DER),
        )
