"""upsertTransaction on a TSS that cannot sign names the TSS, not the client.

A register set up against a TSS still CREATED or UNINITIALIZED (the shop skipped a
step) was told 400 E_CLIENT_NOT_FOUND: its developer checked client ids that were
fine. A disabled TSS whose till was deregistered answered E_CLIENT_DEREGISTERED.
fiskaly's upsertTransaction answers E_TSS_NOT_INITIALIZED and E_TSS_DISABLED; an
initialized TSS still answers the client errors. Against a served app, hot route
and the full path (a transaction number)."""

from __future__ import annotations

import uuid

from server_support import AppClient, login, new_key, setup_tss


def test_the_tss_state_comes_before_the_client(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))

    def put(tss: str, tx: str, client: str, rev: int = 1) -> tuple[int, str, str]:
        r = app_client.put(
            f"/api/v2/tss/{tss}/tx/{tx}", params={"tx_revision": rev},
            json={"state": "ACTIVE", "client_id": client}, headers=h,
        )  # fmt: skip
        body = r.json()
        return r.status_code, body.get("code", ""), body.get("message", "")

    fresh = str(uuid.uuid4())
    created = app_client.put(f"/api/v2/tss/{fresh}", json={}, headers=h)
    assert created.status_code == 200, created.text
    stranger = str(uuid.uuid4())
    status, code, message = put(fresh, str(uuid.uuid4()), stranger)
    assert (status, code) == (400, "E_TSS_NOT_INITIALIZED"), message
    assert "CREATED" in message
    r = app_client.patch(f"/api/v2/tss/{fresh}", json={"state": "UNINITIALIZED"}, headers=h)
    assert r.status_code == 200, r.text
    status, code, message = put(fresh, str(uuid.uuid4()), stranger)
    assert (status, code) == (400, "E_TSS_NOT_INITIALIZED"), message
    assert "UNINITIALIZED" in message

    tss, cid = setup_tss(app_client, h)  # INITIALIZED, admin logged in
    assert put(tss, str(uuid.uuid4()), stranger)[:2] == (400, "E_CLIENT_NOT_FOUND")
    sold = str(uuid.uuid4())
    assert put(tss, sold, cid)[0] == 200
    r = app_client.put(
        f"/api/v2/tss/{tss}/tx/{sold}", params={"tx_revision": 2},
        json={"state": "CANCELLED", "client_id": cid}, headers=h,
    )  # fmt: skip
    assert r.status_code == 200 and r.json()["number"] == 1, r.text
    r = app_client.patch(
        f"/api/v2/tss/{tss}/client/{cid}", json={"state": "DEREGISTERED"}, headers=h
    )
    assert r.status_code == 200, r.text
    assert put(tss, str(uuid.uuid4()), cid)[:2] == (400, "E_CLIENT_DEREGISTERED")

    r = app_client.patch(f"/api/v2/tss/{tss}", json={"state": "DISABLED"}, headers=h)
    assert r.status_code == 200, r.text
    for client in (cid, stranger):
        assert put(tss, str(uuid.uuid4()), client)[:2] == (400, "E_TSS_DISABLED")
        assert put(tss, "1", client, rev=3)[:2] == (400, "E_TSS_DISABLED")  # by number
