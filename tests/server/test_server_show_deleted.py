"""Every list takes fiskaly's boolean ``show_deleted`` (it changes nothing here: no TSS
is ever DELETED); a value that is no boolean is 400 like every other malformed list
parameter (it was accepted silently)."""

from __future__ import annotations

import pytest
from server_support import AppClient, login, new_key, setup_tss

LISTS = ["/api/v2/tss", "/api/v2/client", "/api/v2/tx", "/api/v2/export"]


@pytest.mark.parametrize("path", LISTS)
def test_show_deleted_takes_booleans_only(app_client: AppClient, path: str) -> None:
    h = login(app_client, new_key(app_client))
    setup_tss(app_client, h)
    plain = app_client.get(path, headers=h)
    assert plain.status_code == 200, plain.text
    for value in ("true", "false"):
        r = app_client.get(path, params={"show_deleted": value}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["count"] == plain.json()["count"]
    for value in ("maybe", "1", "yes", "TRUE"):
        r = app_client.get(path, params={"show_deleted": value}, headers=h)
        assert r.status_code == 400, (value, r.text)
        assert r.json()["code"] == "E_FAILED_SCHEMA_VALIDATION"
        assert r.json()["message"] == "querystring/show_deleted must be true or false"
