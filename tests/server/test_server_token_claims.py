"""A token whose signature is right but whose claims are not what we issue is 401.

Our JWTs are signed with a key derived from the installation secret, so only a holder
of that secret can make one; still, an ``exp`` that is no integer (a string, a list,
an object, a float, a boolean) used to reach ``int()`` and answer 500 with a
traceback in the server log, and a float ``exp`` passed. Every such token is refused
as invalid on /api/v2 and as a refresh token on /auth.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from server_support import AppClient, login, new_key

from opentse.server.auth import ALGORITHM, ISSUER, derive_key

BAD_EXP: list[Any] = ["abc", "9999999999", [1], {"a": 1}, 1e308, 2_000_000_000.5, True, None]


def _forge(client: AppClient, key: dict[str, str], typ: str, exp: Any) -> str:
    secret = derive_key(client.ctx.installation.secret, "opentse/server/jwt/v1")
    now = client.ctx.now()
    claims = {
        "sub": key["api_key"],
        "org": key["organization_id"],
        "env": "TEST",
        "iss": ISSUER,
        "typ": typ,
        "iat": now,
        "exp": exp,
        "jti": "x",
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def test_a_forged_token_with_a_valid_exp_is_accepted(app_client: AppClient) -> None:
    """The forging helper makes tokens the server takes (so the refusals below are
    about ``exp`` alone)."""
    key = new_key(app_client)
    login(app_client, key)
    token = _forge(app_client, key, "access", app_client.ctx.now() + 60)
    r = app_client.get("/api/v2/tss", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    refresh = _forge(app_client, key, "refresh", app_client.ctx.now() + 60)
    assert app_client.post("/api/v2/auth", json={"refresh_token": refresh}).status_code == 200


@pytest.mark.parametrize("exp", BAD_EXP, ids=repr)
def test_an_exp_that_is_no_integer_is_401(app_client: AppClient, exp: Any) -> None:
    key = new_key(app_client)
    token = _forge(app_client, key, "access", exp)
    r = app_client.get("/api/v2/tss", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "E_UNAUTHORIZED"
    refresh = _forge(app_client, key, "refresh", exp)
    r = app_client.post("/api/v2/auth", json={"refresh_token": refresh})
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "E_UNAUTHORIZED"
