"""Forged, altered, expired and foreign tokens are refused with 401 and no detail.

The server's signing key is derived from the installation secret (server/auth.py);
the test reads the secret from the data folder to mint an *expired* token that is
otherwise perfect, so the expiry check itself is what refuses it.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from live_server import LiveServer, new_tss, ok

from opentse.crypto import installation_secret
from opentse.server.auth import derive_key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    head, body, sig = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(head))),
        json.loads(base64.urlsafe_b64decode(pad(body))),
        sig,
    )


def _server_key(live: LiveServer) -> bytes:
    secret = installation_secret.load_or_create(installation_secret.resolve_path(live.data))
    return derive_key(secret, "opentse/server/jwt/v1")


@pytest.fixture(scope="module")
def setup(live: LiveServer) -> dict[str, Any]:
    mine = live.login(live.new_key("token-owner"))
    theirs = live.login(live.new_key("token-stranger"))
    with live.client(mine["access_token"]) as c:
        tss, _puk = new_tss(c, live)
    return {"mine": mine, "theirs": theirs, "tss": tss}


def _status(live: LiveServer, token: str, tss: str) -> tuple[int, str]:
    with live.client(token) as c:
        r = c.get(f"/tss/{tss}")
    body = r.json()
    return r.status_code, body.get("code", "")


def test_the_genuine_token_works(live: LiveServer, setup: dict[str, Any]) -> None:
    assert _status(live, setup["mine"]["access_token"], setup["tss"]) == (200, "")


def test_bad_signature(live: LiveServer, setup: dict[str, Any]) -> None:
    token = setup["mine"]["access_token"]
    head, body, sig = token.split(".")
    flipped = _b64(bytes(b ^ 1 for b in base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))))
    for forged in (f"{head}.{body}.{flipped}", f"{head}.{body}.", f"{head}.{body}"):
        assert _status(live, forged, setup["tss"]) == (401, "E_UNAUTHORIZED")


def test_signed_with_another_key(live: LiveServer, setup: dict[str, Any]) -> None:
    _h, claims, _s = _parts(setup["mine"]["access_token"])
    forged = jwt.encode(claims, b"k" * 32, algorithm="HS256")
    assert _status(live, forged, setup["tss"]) == (401, "E_UNAUTHORIZED")


def test_alg_none(live: LiveServer, setup: dict[str, Any]) -> None:
    _h, claims, _s = _parts(setup["mine"]["access_token"])
    for alg in ("none", "None", "NONE"):
        head = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        forged = f"{head}.{_b64(json.dumps(claims).encode())}."
        assert _status(live, forged, setup["tss"]) == (401, "E_UNAUTHORIZED")


def test_changed_organization_keeps_old_signature(live: LiveServer, setup: dict[str, Any]) -> None:
    """The stranger copies the owner's org id into their own token: refused."""
    token = setup["theirs"]["access_token"]
    head, _body, sig = token.split(".")
    _h, claims, _s = _parts(token)
    claims["org"] = setup["mine"]["access_token_claims"]["organization_id"]
    forged = f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"
    assert _status(live, forged, setup["tss"]) == (401, "E_UNAUTHORIZED")


def test_asymmetric_algorithm_confusion(live: LiveServer, setup: dict[str, Any]) -> None:
    """A token claiming RS256/ES256 is refused (only HS256 is accepted)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    _h, claims, _s = _parts(setup["mine"]["access_token"])
    forged = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")
    assert _status(live, forged, setup["tss"]) == (401, "E_UNAUTHORIZED")


def test_expired_but_correctly_signed(live: LiveServer, setup: dict[str, Any]) -> None:
    key = _server_key(live)
    _h, claims, _s = _parts(setup["mine"]["access_token"])
    now = int(time.time())
    good = jwt.encode({**claims, "iat": now - 10, "exp": now + 600}, key, algorithm="HS256")
    assert _status(live, good, setup["tss"]) == (200, "")  # the key derivation is right
    expired = jwt.encode({**claims, "iat": now - 700, "exp": now - 100}, key, algorithm="HS256")
    assert _status(live, expired, setup["tss"]) == (401, "E_UNAUTHORIZED")


def test_refresh_token_is_not_an_access_token(live: LiveServer, setup: dict[str, Any]) -> None:
    assert _status(live, setup["mine"]["refresh_token"], setup["tss"]) == (401, "E_UNAUTHORIZED")


def test_token_of_another_installation(live: LiveServer, setup: dict[str, Any]) -> None:
    other = derive_key(b"\x01" * 32, "opentse/server/jwt/v1")
    _h, claims, _s = _parts(setup["mine"]["access_token"])
    forged = jwt.encode(claims, other, algorithm="HS256")
    assert _status(live, forged, setup["tss"]) == (401, "E_UNAUTHORIZED")


def test_valid_token_of_another_organization_sees_404(
    live: LiveServer, setup: dict[str, Any]
) -> None:
    assert _status(live, setup["theirs"]["access_token"], setup["tss"]) == (
        404,
        "E_TSS_NOT_FOUND",
    )


def test_missing_or_malformed_authorization(live: LiveServer, setup: dict[str, Any]) -> None:
    import httpx

    url = f"{live.base}/tss/{setup['tss']}"
    token = setup["mine"]["access_token"]
    variants = ["", token, "Basic " + token, "Bearer", "Bearer " + "a" * 5000]
    for value in variants:
        headers = {"Authorization": value} if value else {}
        r = httpx.get(url, headers=headers, timeout=30)
        live.remember(r)
        assert r.status_code == 401, (value[:20], r.text)
        assert r.json()["code"] == "E_UNAUTHORIZED"


def test_auth_with_a_wrong_secret_or_unknown_key(live: LiveServer) -> None:
    key = live.new_key("token-wrong-secret")
    wrong = key["api_secret"][::-1]
    live.secrets.add(wrong)
    with live.client() as c:
        for body in (
            {"api_key": key["api_key"], "api_secret": wrong},
            {"api_key": "key_" + "0" * 32, "api_secret": key["api_secret"]},
            {"refresh_token": "x.y.z"},
        ):
            r = c.post("/auth", json=body)
            assert r.status_code == 401 and r.json()["code"] == "E_UNAUTHORIZED", r.text
        ok(c.post("/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]}))
