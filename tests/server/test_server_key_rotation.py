"""A disabled API key stops its already issued access tokens, not only new logins
(issue 8: after a TSE moves host "the old one stops working")."""

from __future__ import annotations

import sqlite3

from server_support import AppClient, login, new_key

from opentse.server.auth import KEY_RECHECK_SECONDS
from opentse.testing.clock import FrozenClock


def test_tokens_of_a_disabled_key_are_refused(app_client: AppClient, clock: FrozenClock) -> None:
    key = new_key(app_client)
    other = new_key(app_client, org="other")
    h = login(app_client, key)
    h_other = login(app_client, other)
    assert app_client.get("/api/v2/tss", headers=h).status_code == 200

    db = app_client.ctx.installation.data_dir / "opentse.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE svc_api_keys SET disabled=1 WHERE api_key=?", (key["api_key"],))

    clock.advance(KEY_RECHECK_SECONDS)
    r = app_client.get("/api/v2/tss", headers=h)
    assert r.status_code == 401 and r.json()["code"] == "E_UNAUTHORIZED"
    # still refused later, and the login with the old secret too
    clock.advance(1)
    assert app_client.get("/api/v2/tss", headers=h).status_code == 401
    r = app_client.post(
        "/api/v2/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]}
    )
    assert r.status_code == 401
    # another organization's key is untouched
    assert app_client.get("/api/v2/tss", headers=h_other).status_code == 200
