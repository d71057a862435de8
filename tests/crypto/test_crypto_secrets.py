"""scrypt hashes of PINs and API secrets."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.crypto import secrets as sec


def test_hash_and_verify() -> None:
    hashed = sec.hash_secret("123456")
    assert hashed.startswith(f"scrypt${sec.N}${sec.R}${sec.P}$")
    assert "123456" not in hashed
    assert sec.verify_secret("123456", hashed)
    assert not sec.verify_secret("123457", hashed)
    assert not sec.verify_secret("", hashed)
    assert sec.hash_secret("123456") != hashed  # random salt
    assert not sec.needs_rehash(hashed)


def test_hash_is_scrypt_of_the_stated_parameters() -> None:
    hashed = sec.hash_secret("pin")
    _, n, r, p, salt, digest = hashed.split("$")
    import base64

    def unb64(t: str) -> bytes:
        return base64.b64decode(t + "=" * (-len(t) % 4))

    expected = hashlib.scrypt(
        b"pin", salt=unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32, maxmem=2**26
    )
    assert unb64(digest) == expected


def test_malformed_and_old_parameters() -> None:
    for bad in ["", "plain", "scrypt$1$8$1$AA$AA", "scrypt$16384$8$1$!!$AA", "bcrypt$x"]:
        assert not sec.verify_secret("x", bad)
        assert sec.needs_rehash(bad)
    weak = "scrypt$1024$8$1$" + "A" * 22 + "$"
    import base64

    salt = base64.b64decode("A" * 22 + "==")
    digest = hashlib.scrypt(b"s", salt=salt, n=1024, r=8, p=1, dklen=32)
    weak += base64.b64encode(digest).decode().rstrip("=")
    assert sec.verify_secret("s", weak)
    assert sec.needs_rehash(weak)
    huge = "scrypt$" + str(2**30) + "$8$1$" + "A" * 22 + "$" + "A" * 43
    assert not sec.verify_secret("s", huge)  # refused before any work


@settings(max_examples=10, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_verify_only_the_same_secret(a: str, b: str) -> None:
    hashed = sec.hash_secret(a)
    assert sec.verify_secret(a, hashed)
    assert sec.verify_secret(b, hashed) == (a == b)
