"""The fiskaly flow in-process (fast feedback); the real-process test is test_e2e."""

from __future__ import annotations

import base64
import uuid

from server_support import AppClient, login, new_key, setup_tss


def _uuid() -> str:
    return str(uuid.uuid4())


def test_receipt_flow(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, h)
    tx = _uuid()
    r = app_client.put(
        f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1",
        json={"state": "ACTIVE", "client_id": cid},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["log"]["operation"] == "Start"
    receipt = {
        "receipt_type": "RECEIPT",
        "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "21.42"}],
        "amounts_per_payment_type": [{"payment_type": "NON_CASH", "amount": "21.42"}],
    }
    body = {"state": "FINISHED", "client_id": cid, "schema": {"standard_v1": {"receipt": receipt}}}
    r = app_client.put(f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=2", json=body, headers=h)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["state"] == "FINISHED" and out["revision"] == 2 and out["number"] == 1
    raw = out["schema"]["raw"]
    assert raw["process_type"] == "Kassenbeleg-V1"
    assert base64.b64decode(raw["process_data"]) == b"Beleg^21.42_0.00_0.00_0.00_0.00^21.42:Unbar"
    assert out["qr_code_data"].startswith("V0;KASSE-1;Kassenbeleg-V1;Beleg^21.42")
    again = app_client.put(f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=2", json=body, headers=h)
    assert again.json()["signature"] == out["signature"]
    got = app_client.get(f"/api/v2/tss/{tss}/tx/1", headers=h).json()
    assert got["signature"] == out["signature"] and got["latest_revision"] == 2
