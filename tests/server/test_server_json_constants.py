"""NaN, Infinity and -Infinity are no JSON (RFC 8259, section 6). Python's parser
takes them, so a body with one was accepted (a transaction was even signed when the
constant sat in a member nobody reads); both body parsers (the transaction hot path
and every other route) refuse it now as 400 "body is not valid JSON"."""

from __future__ import annotations

import uuid

import pytest
from server_support import AppClient, login, new_key, setup_tss

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_transaction_body_with_a_constant_is_refused(
    app_client: AppClient, constant: str
) -> None:
    h = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, h)
    raw = f'{{"state": "ACTIVE", "client_id": "{cid}", "note": {constant}}}'
    tx = uuid.uuid4()
    r = app_client.put(
        f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1", content=raw, headers={**h, **JSON}
    )
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "body is not valid JSON"
    assert app_client.get(f"/api/v2/tss/{tss}/tx/{tx}", headers=h).status_code == 404
    ok = raw.replace(constant, "1")
    r = app_client.put(
        f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1", content=ok, headers={**h, **JSON}
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_other_bodies_with_a_constant_are_refused(app_client: AppClient, constant: str) -> None:
    key = new_key(app_client)
    raw = f'{{"api_key": "{key["api_key"]}", "api_secret": "{key["api_secret"]}", "x": {constant}}}'
    r = app_client.post("/api/v2/auth", content=raw, headers=JSON)
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "body is not valid JSON"
    h = login(app_client, key)
    tss, _ = setup_tss(app_client, h)
    r = app_client.patch(
        f"/api/v2/tss/{tss}/metadata",
        content=f'{{"a": "b", "c": {constant}}}',
        headers={**h, **JSON},
    )
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "body is not valid JSON"
