"""Hashing of PINs, PUKs and API secrets for storage (scrypt, salted, self-describing).

Format: ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`` (base64 without padding), so the
parameters can be raised later without breaking stored hashes (``needs_rehash``).

Cost: N=2**14, r=8, p=1 (16 MiB, about 30-60 ms on one core). Deliberately *not* the
100+ ms of a password-only login: the admin PIN is checked on every admin login and
the API secret on every ``/auth`` call, so the cost is paid often by honest callers.
Online guessing of PINs is bounded by the TSE's retry counter anyway; the hash cost
only slows down an attacker who has a copy of the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

N = 2**14
R = 8
P = 1
_SALT_LEN = 16
_HASH_LEN = 32
_MAXMEM = 128 * 1024 * 1024
# Refuse absurd parameters in stored strings (a damaged row must not eat the machine).
_MAX_N = 2**20
_MAX_RP = 64


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=length
    )


def hash_secret(secret: str) -> str:
    """A storable hash of ``secret`` with a fresh random salt."""
    salt = os.urandom(_SALT_LEN)
    digest = _scrypt(secret, salt, N, R, P, _HASH_LEN)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def _parse(hashed: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = hashed.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error):
        return None
    if not (1 < n <= _MAX_N and n & (n - 1) == 0 and 0 < r <= _MAX_RP and 0 < p <= _MAX_RP):
        return None
    if not salt or len(digest) < 16:
        return None
    return n, r, p, salt, digest


def verify_secret(secret: str, hashed: str) -> bool:
    """True if ``secret`` matches ``hashed``; False for a mismatch or a malformed hash.
    The final comparison is constant-time (``hmac.compare_digest``)."""
    parsed = _parse(hashed)
    if parsed is None:
        return False
    n, r, p, salt, digest = parsed
    return hmac.compare_digest(_scrypt(secret, salt, n, r, p, len(digest)), digest)


def needs_rehash(hashed: str) -> bool:
    """True if ``hashed`` was made with other parameters than the current ones."""
    parsed = _parse(hashed)
    return parsed is None or parsed[:3] != (N, R, P) or len(parsed[4]) != _HASH_LEN
