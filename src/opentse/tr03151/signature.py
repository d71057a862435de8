"""Signature verification for TR-03151 log messages (TR-03116-5, BSI TR-03111).

TSEs sign with ECDSA in *plain* format: r||s, each zero-padded to the curve's byte
size (TR-03111 5.2.1). Some receipts (and older devices) carry an X9.62 DER
``SEQUENCE { r, s }`` instead, so DER is accepted as a fallback. The curve is not
stated in a log message; it follows from the public key (certificate or QR code), so
:func:`public_key_from_point` tries every TR-03116-5 curve of the point's size.

ECSDSA (TR-03111 4.2.3, plain format 5.2.1) is verified too, in pure Python (see the
ECSDSA section below); OpenSSL offers no EC Schnorr.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise VerificationError(
            "public key is not an elliptic-curve key", code="E_PUBLIC_KEY_INVALID"
        )
    if name.startswith("ecsdsa-"):
        if not _verify_ecsdsa(key, SIGNATURE_ALGORITHMS[name][1], data, signature):
            raise VerificationError(
                "signature does not match the signed data", code="E_SIGNATURE_INVALID"
            )
        return
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


# --------------------------------------------------------------------------- ECSDSA
# TR-03111 v2.10 4.2.3 (EC Schnorr). OpenSSL has no ECSDSA, so verification runs on
# plain Python integers: slow (milliseconds) but only used for logs of TSEs that chose
# ECSDSA. Domain parameters: FIPS 186-4 (P curves) and RFC 5639 (brainpool).


@dataclass(frozen=True, slots=True)
class _Curve:
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int


_DOMAIN: dict[str, _Curve] = {
    "P-256": _Curve(
        p=0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
        a=0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFC,
        b=0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
        gx=0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
        gy=0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
        n=0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    ),
    "P-384": _Curve(
        p=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF0000000000000000FFFFFFFF,
        a=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF0000000000000000FFFFFFFC,
        b=0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
        gx=0xAA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A385502F25DBF55296C3A545E3872760AB7,
        gy=0x3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C00A60B1CE1D7E819D7A431D7C90EA0E5F,
        n=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
    ),
    "P-521": _Curve(
        p=0x1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF,
        a=0x1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC,
        b=0x51953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00,
        gx=0xC6858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D3DBAA14B5E77EFE75928FE1DC127A2FFA8DE3348B3C1856A429BF97E7E31C2E5BD66,
        gy=0x11839296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E662C97EE72995EF42640C550B9013FAD0761353C7086A272C24088BE94769FD16650,
        n=0x1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409,
    ),
    "brainpoolP256r1": _Curve(
        p=0xA9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377,
        a=0x7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9,
        b=0x26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6,
        gx=0x8BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262,
        gy=0x547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997,
        n=0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7,
    ),
    "brainpoolP384r1": _Curve(
        p=0x8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B412B1DA197FB71123ACD3A729901D1A71874700133107EC53,
        a=0x7BC382C63D8C150C3C72080ACE05AFA0C2BEA28E4FB22787139165EFBA91F90F8AA5814A503AD4EB04A8C7DD22CE2826,
        b=0x4A8C7DD22CE28268B39B55416F0447C2FB77DE107DCD2A62E880EA53EEB62D57CB4390295DBC9943AB78696FA504C11,
        gx=0x1D1C64F068CF45FFA2A63A81B7C13F6B8847A3E77EF14FE3DB7FCAFE0CBD10E8E826E03436D646AAEF87B2E247D4AF1E,
        gy=0x8ABE1D7520F9C2A45CB1EB8E95CFD55262B70B29FEEC5864E19C054FF99129280E4646217791811142820341263C5315,
        n=0x8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B31F166E6CAC0425A7CF3AB6AF6B7FC3103B883202E9046565,
    ),
    "brainpoolP512r1": _Curve(
        p=0xAADD9DB8DBE9C48B3FD4E6AE33C9FC07CB308DB3B3C9D20ED6639CCA703308717D4D9B009BC66842AECDA12AE6A380E62881FF2F2D82C68528AA6056583A48F3,
        a=0x7830A3318B603B89E2327145AC234CC594CBDD8D3DF91610A83441CAEA9863BC2DED5D5AA8253AA10A2EF1C98B9AC8B57F1117A72BF2C7B9E7C1AC4D77FC94CA,
        b=0x3DF91610A83441CAEA9863BC2DED5D5AA8253AA10A2EF1C98B9AC8B57F1117A72BF2C7B9E7C1AC4D77FC94CADC083E67984050B75EBAE5DD2809BD638016F723,
        gx=0x81AEE4BDD82ED9645A21322E9C4C6A9385ED9F70B5D916C1B43B62EEF4D0098EFF3B1F78E2D0D48D50D1687B93B97D5F7C6D5047406A5E688B352209BCB9F822,
        gy=0x7DDE385D566332ECC0EABFA9CF7822FDF209F70024A57B1AA000C55B881F8111B2DCDE494A5F485E5BCA4BD88A2763AED1CA2B2FA8F0540678CD1E0F3AD80892,
        n=0xAADD9DB8DBE9C48B3FD4E6AE33C9FC07CB308DB3B3C9D20ED6639CCA70330870553E5C414CA92619418661197FAC10471DB1D381085DDADDB58796829CA90069,
    ),
}

_Point = tuple[int, int, int] | None  # Jacobian (X, Y, Z); None is the point at infinity


def _double(c: _Curve, P: _Point) -> _Point:
    if P is None or P[1] == 0:
        return None
    x, y, z = P
    p = c.p
    yy = y * y % p
    s = 4 * x * yy % p
    zz = z * z % p
    m = (3 * x * x + c.a * zz * zz) % p
    x3 = (m * m - 2 * s) % p
    return x3, (m * (s - x3) - 8 * yy * yy) % p, 2 * y * z % p


def _add(c: _Curve, P: _Point, Q: _Point) -> _Point:
    if P is None:
        return Q
    if Q is None:
        return P
    p = c.p
    x1, y1, z1 = P
    x2, y2, z2 = Q
    z1z1 = z1 * z1 % p
    z2z2 = z2 * z2 % p
    u1 = x1 * z2z2 % p
    u2 = x2 * z1z1 % p
    s1 = y1 * z2 * z2z2 % p
    s2 = y2 * z1 * z1z1 % p
    if u1 == u2:
        return _double(c, P) if s1 == s2 else None
    h = (u2 - u1) % p
    r = (s2 - s1) % p
    hh = h * h % p
    hhh = h * hh % p
    v = u1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    return x3, (r * (v - x3) - s1 * hhh) % p, h * z1 * z2 % p


def _linear_combination(c: _Curve, k1: int, P1: _Point, k2: int, P2: _Point) -> _Point:
    """[k1]P1 + [k2]P2 by Shamir's trick (public values only: no side-channel care)."""
    both = _add(c, P1, P2)
    R: _Point = None
    for i in range(max(k1.bit_length(), k2.bit_length()) - 1, -1, -1):
        R = _double(c, R)
        bits = ((k1 >> i) & 1, (k2 >> i) & 1)
        if bits == (1, 1):
            R = _add(c, R, both)
        elif bits == (1, 0):
            R = _add(c, R, P1)
        elif bits == (0, 1):
            R = _add(c, R, P2)
    return R


def _affine(c: _Curve, P: _Point) -> tuple[int, int] | None:
    if P is None or P[2] % c.p == 0:
        return None
    x, y, z = P
    zinv = pow(z, -1, c.p)
    zinv2 = zinv * zinv % c.p
    return x * zinv2 % c.p, y * zinv2 * zinv % c.p


def _ecsdsa_hash(hash_name: str, tau: int, data: bytes) -> int:
    """OS2I(H_tau(data)): the leftmost tau bits when the hash is longer (TR-03111 4.2)."""
    digest = hashlib.new(hash_name, data).digest()
    value = int.from_bytes(digest, "big")
    excess = len(digest) * 8 - tau
    return value >> excess if excess > 0 else value


def _verify_ecsdsa(
    key: ec.EllipticCurvePublicKey, hash_name: str, data: bytes, signature: bytes
) -> bool:
    """TR-03111 4.2.3.2: Q = [s]G - [r]P_A; valid iff r == H_tau(x_Q || y_Q || M)."""
    c = _DOMAIN[curve_of_key(key)]
    size = (c.n.bit_length() + 7) // 8  # plain format: l = ceil(log256 n) (5.2.1)
    if len(signature) != 2 * size:
        return False
    tau = c.n.bit_length()
    r = int.from_bytes(signature[:size], "big")
    s = int.from_bytes(signature[size:], "big")
    if not (0 < r < 2**tau and 0 < s < c.n):
        return False
    numbers = key.public_numbers()
    G = (c.gx, c.gy, 1)
    Q = _linear_combination(c, s, G, (c.n - r) % c.n, (numbers.x, numbers.y, 1))
    point = _affine(c, Q)
    if point is None:
        return False
    field = (c.p.bit_length() + 7) // 8  # FE2OS length
    encoded = point[0].to_bytes(field, "big") + point[1].to_bytes(field, "big")
    return _ecsdsa_hash(hash_name, tau, encoded + data) == r
