"""SHARP TOOLS: private keys of TSEs (generation, encryption at rest, raw signing).

This is the one module that touches private key material. Everything else receives
a ``Signer`` (``opentse.tr03151.signer``) and never sees a key.

Curves and algorithms (digest tr03151.md, "Algorithms (TR-03116-5)"): a TSE key lives on
one of ``CURVES`` and signs with ECDSA in *plain* format (TR-03111 5.2.1): r||s, each
zero-padded to the byte length of the curve order.

Keys at rest (``encrypt_private_key``): PKCS#8 DER, encrypted with AES-256-GCM under
a key derived per blob with HKDF-SHA256 from the installation secret and a random
salt. Blob layout, version 1 (all lengths fixed)::

    b"OTK1" | salt (16) | nonce (12) | ciphertext + GCM tag (16)

The 20-byte header is authenticated as associated data.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from opentse.errors import FormatError, OpenTSEError
from opentse.tr03151.oids import algorithm_oid

CURVES: tuple[str, ...] = ("P-256", "P-384", "brainpoolP256r1", "brainpoolP384r1")

_CURVE_CLASSES: dict[str, type[ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "brainpoolP256r1": ec.BrainpoolP256R1,
    "brainpoolP384r1": ec.BrainpoolP384R1,
}
_CURVE_BY_OPENSSL_NAME: dict[str, str] = {cls().name: name for name, cls in _CURVE_CLASSES.items()}

# Plain ECDSA with the hashes cryptography offers (TR-03116-5 allows SHA-2/SHA-3 >= 224;
# ECSDSA is not offered by OpenSSL and therefore cannot be used to sign here).
_ECDSA_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "ecdsa-plain-SHA224": hashes.SHA224,
    "ecdsa-plain-SHA256": hashes.SHA256,
    "ecdsa-plain-SHA384": hashes.SHA384,
    "ecdsa-plain-SHA512": hashes.SHA512,
    "ecdsa-plain-SHA3-224": hashes.SHA3_224,
    "ecdsa-plain-SHA3-256": hashes.SHA3_256,
    "ecdsa-plain-SHA3-384": hashes.SHA3_384,
    "ecdsa-plain-SHA3-512": hashes.SHA3_512,
}
SIGNING_ALGORITHMS: tuple[str, ...] = tuple(_ECDSA_HASHES)

_BLOB_MAGIC = b"OTK1"
_SALT_LEN = 16
_NONCE_LEN = 12
_HEADER_LEN = len(_BLOB_MAGIC) + _SALT_LEN + _NONCE_LEN
_HKDF_INFO = b"opentse private key encryption v1"
_MIN_SECRET_LEN = 16


class KeyDecryptionError(OpenTSEError):
    """An encrypted private key could not be opened: wrong installation secret or a
    damaged blob. The message never says more than that."""

    code = "E_KEY_DECRYPTION"
    http_status = 500


def _curve_class(curve: str) -> type[ec.EllipticCurve]:
    try:
        return _CURVE_CLASSES[curve]
    except KeyError:
        raise ValueError(f"unsupported curve {curve!r}; use one of {', '.join(CURVES)}") from None


def generate_private_key(curve: str) -> ec.EllipticCurvePrivateKey:
    """A fresh key on one of ``CURVES`` (OpenSSL's CSPRNG)."""
    return ec.generate_private_key(_curve_class(curve)())


def curve_name(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> str:
    """Our name (``CURVES``) of the curve a key lives on."""
    try:
        return _CURVE_BY_OPENSSL_NAME[key.curve.name]
    except KeyError:
        raise ValueError(f"unsupported curve {key.curve.name!r}") from None


def public_key_point(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """The uncompressed point 04||X||Y (the form TR-03151 hashes into the serial number)."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def serial_number(point: bytes) -> bytes:
    """TSE serial number: SHA-256 of the uncompressed public key point (TR-03151 5.1)."""
    return hashlib.sha256(point).digest()


def default_algorithm(curve: str) -> str:
    """``ecdsa-plain-SHA256`` on the 256-bit curves, ``ecdsa-plain-SHA384`` on the 384-bit ones."""
    return "ecdsa-plain-SHA384" if _curve_class(curve)().key_size > 256 else "ecdsa-plain-SHA256"


class PlainSigner:
    """``tr03151.signer.Signer`` over a private key: ECDSA, plain r||s output.

    Everything that does not depend on the data is computed once here, so ``sign``
    is one OpenSSL call plus a DER-to-plain conversion.
    """

    __slots__ = ("_algorithm", "_key", "_oid", "_point", "_size")

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, algorithm_name: str) -> None:
        try:
            hash_cls = _ECDSA_HASHES[algorithm_name]
        except KeyError:
            raise ValueError(
                f"unsupported signature algorithm {algorithm_name!r}; "
                f"use one of {', '.join(SIGNING_ALGORITHMS)}"
            ) from None
        curve_name(private_key)  # refuses curves outside CURVES
        self._key = private_key
        self._algorithm = ec.ECDSA(hash_cls())
        self._oid = algorithm_oid(algorithm_name)
        self._point = public_key_point(private_key)
        self._size = (private_key.curve.key_size + 7) // 8

    @property
    def algorithm_oid(self) -> str:
        return self._oid

    @property
    def public_key_point(self) -> bytes:
        return self._point

    def sign(self, data: bytes) -> bytes:
        """Plain signature r||s (TR-03111 5.2.1), each half ``curve size`` bytes."""
        return der_to_plain(self._key.sign(data, self._algorithm), self._size)


def der_to_plain(der: bytes, size: int) -> bytes:
    """An ECDSA-Sig-Value (DER ``SEQUENCE { INTEGER r, INTEGER s }``) as r||s.

    Cut out by slicing: a third of ``decode_dss_signature`` + two ``to_bytes`` (0.5
    against 1.5 us), and it runs for every signature while holding the GIL. The
    curves here (at most 384 bits) keep the SEQUENCE under 128 octets, so its
    length is one octet; anything else takes the general decoder."""
    if len(der) < 8 or der[1] >= 0x80 or der[0] != 0x30 or der[2] != 0x02:
        r_int, s_int = decode_dss_signature(der)
        return r_int.to_bytes(size, "big") + s_int.to_bytes(size, "big")
    r_end = 4 + der[3]
    r = der[4:r_end]
    s = der[r_end + 2 : r_end + 2 + der[r_end + 1]]
    # an INTEGER carries a 0x00 before a high first bit and drops leading zeros
    r = r[-size:] if len(r) > size else r.rjust(size, b"\0")
    s = s[-size:] if len(s) > size else s.rjust(size, b"\0")
    return r + s


def _derive(secret: bytes, salt: bytes) -> AESGCM:
    if len(secret) < _MIN_SECRET_LEN:
        raise ValueError("installation secret too short")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_HKDF_INFO).derive(secret)
    return AESGCM(key)


def encrypt_private_key(key: ec.EllipticCurvePrivateKey, secret: bytes) -> bytes:
    """Encrypt a private key for storage (blob format in the module docstring)."""
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    salt = os.urandom(_SALT_LEN)
    nonce = os.urandom(_NONCE_LEN)
    header = _BLOB_MAGIC + salt + nonce
    return header + _derive(secret, salt).encrypt(nonce, der, header)


def decrypt_private_key(blob: bytes, secret: bytes) -> ec.EllipticCurvePrivateKey:
    """Open a blob of ``encrypt_private_key``.

    Raises ``FormatError`` (E_KEY_FORMAT) for something that is not such a blob and
    ``KeyDecryptionError`` (E_KEY_DECRYPTION) for a wrong secret or damaged blob.
    """
    if len(blob) <= _HEADER_LEN + 16 or not blob.startswith(_BLOB_MAGIC):
        raise FormatError("not an opentse encrypted key (unknown version)", code="E_KEY_FORMAT")
    header = blob[:_HEADER_LEN]
    salt = header[len(_BLOB_MAGIC) : len(_BLOB_MAGIC) + _SALT_LEN]
    nonce = header[len(_BLOB_MAGIC) + _SALT_LEN :]
    try:
        der = _derive(secret, salt).decrypt(nonce, blob[_HEADER_LEN:], header)
    except InvalidTag:
        raise KeyDecryptionError(
            "cannot decrypt private key: wrong installation secret or damaged key data"
        ) from None
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyDecryptionError("decrypted key is not an elliptic-curve key")
    curve_name(key)
    return key
