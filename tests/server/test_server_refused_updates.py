"""A refused update changes nothing: neither the API's records nor the TSE.

- updateTss wrote the body's metadata before the state change, so a change refused
  as illegal (400) or for want of an admin login (401) still left its metadata;
- updateClient signed the state change before checking the merged metadata, so a
  PATCH refused for more than 40 keys had deregistered the client in the TSE (a
  signed deregisterClient log) while the API still said REGISTERED: transactions
  failed with E_CLIENT_DEREGISTERED and deregistering it again was refused too;
- createClient registered the client in the TSE before refusing a metadata key of
  more than 40 characters: a client the API did not know held a place in the TSE.
"""

from __future__ import annotations

import uuid
from typing import Any

from server_support import AppClient, login, new_key, setup_tss


def _counter(client: AppClient, h: dict[str, str], tss: str) -> int:
    return int(client.get(f"/api/v2/tss/{tss}", headers=h).json()["signature_counter"])


def _admin(client: AppClient, h: dict[str, str], tss: str) -> None:
    r = client.post(f"/api/v2/tss/{tss}/admin/auth", json={"admin_pin": "123456"}, headers=h)
    assert r.status_code == 200, r.text


def test_a_refused_tss_state_change_leaves_no_metadata(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))
    tss = str(uuid.uuid4())
    assert app_client.put(f"/api/v2/tss/{tss}", json={}, headers=h).status_code == 200
    r = app_client.patch(
        f"/api/v2/tss/{tss}", json={"state": "INITIALIZED", "metadata": {"a": "1"}}, headers=h
    )
    assert r.status_code == 400 and r.json()["code"] == "E_ILLEGAL_TSS_STATE_CHANGE", r.text
    assert app_client.get(f"/api/v2/tss/{tss}/metadata", headers=h).json() == {}

    configured, _ = setup_tss(app_client, h)
    app_client.post(f"/api/v2/tss/{configured}/admin/logout", json={}, headers=h)
    r = app_client.patch(
        f"/api/v2/tss/{configured}", json={"state": "DISABLED", "metadata": {"b": "2"}}, headers=h
    )
    assert r.status_code == 401, r.text
    assert app_client.get(f"/api/v2/tss/{configured}/metadata", headers=h).json() == {}
    assert app_client.get(f"/api/v2/tss/{configured}", headers=h).json()["state"] == "INITIALIZED"


def test_refused_tss_metadata_leaves_the_state(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))
    tss = str(uuid.uuid4())
    assert app_client.put(f"/api/v2/tss/{tss}", json={}, headers=h).status_code == 200
    body: dict[str, Any] = {"state": "UNINITIALIZED", "metadata": {"k" * 41: "v"}}
    r = app_client.patch(f"/api/v2/tss/{tss}", json=body, headers=h)
    assert r.status_code == 400, r.text
    assert app_client.get(f"/api/v2/tss/{tss}", headers=h).json()["state"] == "CREATED"


def test_refused_client_metadata_leaves_the_client_registered(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, h)
    full = {f"a{i}": "v" for i in range(30)}
    r = app_client.patch(f"/api/v2/tss/{tss}/client/{cid}/metadata", json=full, headers=h)
    assert r.status_code == 200, r.text
    before = _counter(app_client, h, tss)
    more = {f"b{i}": "v" for i in range(20)}
    r = app_client.patch(
        f"/api/v2/tss/{tss}/client/{cid}",
        json={"state": "DEREGISTERED", "metadata": more},
        headers=h,
    )
    assert r.status_code == 400, r.text
    assert _counter(app_client, h, tss) == before  # no deregisterClient log signed
    assert app_client.get(f"/api/v2/tss/{tss}/client/{cid}", headers=h).json()["state"] == (
        "REGISTERED"
    )
    tx = f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}"
    for revision, state in ((1, "ACTIVE"), (2, "CANCELLED")):
        body = {"state": state, "client_id": cid}
        r = app_client.put(tx, params={"tx_revision": revision}, json=body, headers=h)
        assert r.status_code == 200, r.text
    _admin(app_client, h, tss)
    r = app_client.patch(
        f"/api/v2/tss/{tss}/client/{cid}", json={"state": "DEREGISTERED"}, headers=h
    )
    assert r.status_code == 200 and r.json()["state"] == "DEREGISTERED", r.text


def test_refused_metadata_of_a_new_client_registers_nothing(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))
    tss, _ = setup_tss(app_client, h)
    before = app_client.get(f"/api/v2/tss/{tss}", headers=h).json()
    cid = str(uuid.uuid4())
    r = app_client.put(
        f"/api/v2/tss/{tss}/client/{cid}",
        json={"serial_number": "KASSE-2", "metadata": {"k" * 41: "v"}},
        headers=h,
    )
    assert r.status_code == 400, r.text
    after = app_client.get(f"/api/v2/tss/{tss}", headers=h).json()
    assert after["signature_counter"] == before["signature_counter"]
    assert after["number_registered_clients"] == before["number_registered_clients"]
