"""Signature verification for TR-03151 log messages (TR-03116-5, BSI TR-03111).

TSEs sign with ECDSA in *plain* format: r||s, each zero-padded to the curve's byte
size (TR-03111 5.2.1). Some receipts (and older devices) carry an X9.62 DER
``SEQUENCE { r, s }`` instead, so DER is accepted as a fallback. The curve is not
stated in a log message; it follows from the public key (certificate or QR code), so
:func:`public_key_from_point` tries every TR-03116-5 curve of the point's size.

ECSDSA (TR-03111 5.2.3) is defined in oids.py but not implemented: verifying it raises
VerificationError(code="E_ALGORITHM_UNSUPPORTED").
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from opentse.errors import FormatError, VerificationError
from opentse.tr03151.oids import ALGORITHM_BY_OID, SIGNATURE_ALGORITHMS

# canonical name -> (curve class, coordinate size in bytes); TR-03116-5 curves
CURVES: dict[str, tuple[type[ec.EllipticCurve], int]] = {
    "P-256": (ec.SECP256R1, 32),
    "P-384": (ec.SECP384R1, 48),
    "P-521": (ec.SECP521R1, 66),
    "brainpoolP256r1": (ec.BrainpoolP256R1, 32),
    "brainpoolP384r1": (ec.BrainpoolP384R1, 48),
    "brainpoolP512r1": (ec.BrainpoolP512R1, 64),
}
_ALIASES = {
    "p-256": "P-256",
    "p256": "P-256",
    "secp256r1": "P-256",
    "prime256v1": "P-256",
    "p-384": "P-384",
    "p384": "P-384",
    "secp384r1": "P-384",
    "p-521": "P-521",
    "p521": "P-521",
    "secp521r1": "P-521",
    "brainpoolp256r1": "brainpoolP256r1",
    "brainpoolp384r1": "brainpoolP384r1",
    "brainpoolp512r1": "brainpoolP512r1",
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
_KEY_CACHE: dict[tuple[bytes, str | None], ec.EllipticCurvePublicKey] = {}


def curve_name(name: str) -> str:
    """Canonical curve name (``P-256``, ``brainpoolP384r1`` ...) of a name or alias."""
    canonical = _ALIASES.get(name.lower())
    if canonical is None:
        raise FormatError(f"unsupported curve {name!r}", code="E_CURVE_UNSUPPORTED")
    return canonical


def curve_of_key(key: ec.EllipticCurvePublicKey) -> str:
    """Canonical name of a key's curve."""
    return curve_name(key.curve.name)


def coordinate_size(key: ec.EllipticCurvePublicKey) -> int:
    return (key.curve.key_size + 7) // 8


def candidate_keys(point: bytes, curve: str | None = None) -> list[ec.EllipticCurvePublicKey]:
    """Every key of a TR-03116-5 curve (or of ``curve``) on which ``point`` lies.

    An uncompressed point lies on one curve only (a random point fitting a second
    curve equation has negligible chance); a compressed point's X usually fits both
    curves of its size (P-384 and brainpoolP384r1 ...), hence a list.
    """
    if curve is not None:
        names = [curve_name(curve)]
    else:
        if len(point) < 2:
            raise FormatError("public key point too short", code="E_PUBLIC_KEY_FORMAT")
        size = (len(point) - 1) // 2 if point[0] == 4 else len(point) - 1
        names = [name for name, (_, s) in CURVES.items() if s == size]
        if not names:
            raise FormatError(
                f"no supported curve has {size}-byte coordinates", code="E_PUBLIC_KEY_FORMAT"
            )
    keys: list[ec.EllipticCurvePublicKey] = []
    for name in names:
        try:
            keys.append(ec.EllipticCurvePublicKey.from_encoded_point(CURVES[name][0](), point))
        except ValueError:
            continue
    if not keys:
        raise VerificationError(
            f"public key point lies on none of {', '.join(names)}", code="E_PUBLIC_KEY_INVALID"
        )
    return keys


def public_key_from_point(point: bytes, curve: str | None = None) -> ec.EllipticCurvePublicKey:
    """Public key from an encoded point (uncompressed 04||X||Y; compressed accepted).

    Without ``curve``, every TR-03116-5 curve of the point's size is tried and the first
    that fits is returned (for compressed points pass ``curve``, see candidate_keys).
    Raises FormatError for impossible sizes, VerificationError when no curve fits.
    """
    cache_key = (point, curve)
    key = _KEY_CACHE.get(cache_key)
    if key is None:
        key = candidate_keys(point, curve)[0]
        if len(_KEY_CACHE) > 1024:
            _KEY_CACHE.clear()
        _KEY_CACHE[cache_key] = key
    return key


def plain_to_der(signature: bytes) -> bytes:
    """Plain r||s (equal halves) -> X9.62 DER SEQUENCE { r, s }."""
    if not signature or len(signature) % 2:
        raise FormatError(
            "plain signature must have an even, non-zero length", code="E_SIGNATURE_FORMAT"
        )
    half = len(signature) // 2
    r = int.from_bytes(signature[:half], "big")
    s = int.from_bytes(signature[half:], "big")
    return encode_dss_signature(r, s)


def der_to_plain(signature: bytes, size: int) -> bytes:
    """X9.62 DER -> plain r||s with each half zero-padded to ``size`` bytes."""
    try:
        r, s = decode_dss_signature(signature)
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    except (ValueError, OverflowError):
        raise FormatError(
            "not a DER ECDSA signature of that size", code="E_SIGNATURE_FORMAT"
        ) from None


def _hash_for(algorithm: str) -> tuple[str, hashes.HashAlgorithm]:
    name = ALGORITHM_BY_OID.get(algorithm, algorithm)
    entry = SIGNATURE_ALGORITHMS.get(name)
    if entry is None:
        raise VerificationError(
            f"unknown signature algorithm {algorithm}", code="E_ALGORITHM_UNSUPPORTED"
        )
    return name, _HASHES[entry[1]]()


def _candidates(signature: bytes, size: int) -> list[bytes]:
    """DER encodings to try: plain r||s first (the TR-03151 format), then DER as is."""
    out: list[bytes] = []
    if len(signature) == 2 * size:
        out.append(plain_to_der(signature))
    if signature[:1] == b"\x30":
        out.append(signature)
    elif not out and signature and len(signature) % 2 == 0 and len(signature) < 2 * size:
        out.append(plain_to_der(signature))  # halves without zero padding (non-conforming)
    return out


def verify_with_public_key(
    key: ec.EllipticCurvePublicKey, algorithm_oid: str, data: bytes, signature: bytes
) -> None:
    """Verify with a key object (e.g. from a certificate); raises VerificationError."""
    name, hash_algorithm = _hash_for(algorithm_oid)
    if not name.startswith("ecdsa-"):
        raise VerificationError(
            f"{name} is not supported (only ECDSA)", code="E_ALGORITHM_UNSUPPORTED"
        )
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise VerificationError(
            "public key is not an elliptic-curve key", code="E_PUBLIC_KEY_INVALID"
        )
    for candidate in _candidates(signature, coordinate_size(key)):
        try:
            key.verify(candidate, data, ec.ECDSA(hash_algorithm))
            return
        except InvalidSignature:
            continue
    raise VerificationError("signature does not match the signed data", code="E_SIGNATURE_INVALID")


def verify_signature(
    public_key_point: bytes,
    algorithm_oid: str,
    data: bytes,
    signature: bytes,
    curve: str | None = None,
) -> None:
    """Verify ``signature`` over ``data`` with the key at ``public_key_point``.

    ``algorithm_oid`` is a dotted OID (or a name such as ``ecdsa-plain-SHA256``).
    Raises VerificationError(code="E_SIGNATURE_INVALID") when the signature is wrong,
    E_ALGORITHM_UNSUPPORTED / E_PUBLIC_KEY_INVALID for what cannot be checked at all.
    """
    try:
        if curve is None and public_key_point[:1] in (b"\x02", b"\x03"):
            keys = candidate_keys(public_key_point)
        else:
            keys = [public_key_from_point(public_key_point, curve)]
    except FormatError as exc:
        raise VerificationError(exc.message, code="E_PUBLIC_KEY_INVALID") from None
    for key in keys[:-1]:
        try:
            verify_with_public_key(key, algorithm_oid, data, signature)
            return
        except VerificationError:
            continue
    verify_with_public_key(keys[-1], algorithm_oid, data, signature)
