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


def test_revisions_types_metadata_and_log(app_client: AppClient) -> None:
    from opentse.tr03151.codec import decode_log_message

    h = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, h)
    api = f"/api/v2/tss/{tss}"
    # createTss is idempotent while CREATED, with the same PUK; 409 afterwards
    other = str(uuid.uuid4())
    first = app_client.put(f"/api/v2/tss/{other}", json={}, headers=h).json()
    again = app_client.put(f"/api/v2/tss/{other}", json={}, headers=h).json()
    assert (
        again["admin_puk"] == first["admin_puk"]
        and again["serial_number"] == first["serial_number"]
    )
    assert app_client.put(api, json={}, headers=h).json()["code"] == "E_TSS_CONFLICT"
    # started and finished in one call (revision 1 FINISHED): Start + Finish are signed
    tx = str(uuid.uuid4())
    raw = {
        "process_type": "SonstigerVorgang",
        "process_data": base64.b64encode(b"Kassenlade").decode(),
    }
    one = app_client.put(
        f"{api}/tx/{tx}?tx_revision=1",
        json={"state": "FINISHED", "client_id": cid, "schema": {"raw": raw}},
        headers=h,
    ).json()
    assert one["revision"] == 1 and one["state"] == "FINISHED" and one["schema"]["raw"] == raw
    assert one["log"]["operation"] == "Finish" and int(one["signature"]["counter"]) > 0
    assert (
        app_client.get(f"{api}/tx/{tx}?tx_revision=2", headers=h).json()["code"]
        == "E_TX_REVISION_NOT_FOUND"
    )
    # the process type may not change between revisions
    tx2 = str(uuid.uuid4())
    order = {"line_items": [{"quantity": "1", "text": "Tee", "price_per_unit": "2.00"}]}
    body = {"state": "ACTIVE", "client_id": cid, "schema": {"standard_v1": {"order": order}}}
    assert app_client.put(f"{api}/tx/{tx2}?tx_revision=1", json=body, headers=h).status_code == 200
    receipt = {
        "receipt_type": "RECEIPT",
        "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "2.00"}],
    }
    change = {
        "state": "FINISHED",
        "client_id": cid,
        "schema": {"standard_v1": {"receipt": receipt}},
    }
    r = app_client.put(f"{api}/tx/{tx2}?tx_revision=2", json=change, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "E_TX_ILLEGAL_TYPE_CHANGE"
    # FINISHED without schema keeps the type
    finish = {"state": "FINISHED", "client_id": cid}
    r = app_client.put(f"{api}/tx/{tx2}?tx_revision=2", json=finish, headers=h)
    assert r.status_code == 200 and r.json()["revision"] == 2
    # metadata: merged, per resource
    meta = app_client.patch(f"{api}/tx/{tx2}/metadata", json={"receipt": "R-17"}, headers=h).json()
    assert meta == {"receipt": "R-17"}
    assert app_client.get(f"{api}/tx/{tx2}", headers=h).json()["metadata"] == {"receipt": "R-17"}
    app_client.patch(f"{api}/metadata", json={"a": "1"}, headers=h)
    assert app_client.patch(f"{api}/metadata", json={"b": "2"}, headers=h).json() == {
        "a": "1",
        "b": "2",
    }
    assert app_client.get(f"{api}/client/{cid}/metadata", headers=h).json() == {}
    too_many = {f"k{i}": "v" for i in range(41)}
    assert app_client.patch(f"{api}/metadata", json=too_many, headers=h).status_code == 400
    # the signed log of a revision (deprecated endpoint) decodes and matches the response
    der = app_client.get(f"{api}/tx/{tx2}/log?tx_revision=2", headers=h)
    assert der.headers["content-type"] == "application/octet-stream"
    msg = decode_log_message(der.content)
    assert base64.b64encode(msg.signature_value).decode() == r.json()["signature"]["value"]
    # lists per client and for the organization
    assert app_client.get(f"{api}/client/{cid}/tx", headers=h).json()["count"] == 2
    assert (
        app_client.get("/api/v2/tx?order=desc&order_by=number", headers=h).json()["data"][0][
            "number"
        ]
        == 2
    )
    assert app_client.get("/api/v2/client", headers=h).json()["count"] == 1
    assert (
        app_client.get("/api/v2/openapi.json").json()["paths"][
            "/api/v2/tss/{tss_id}/tx/{tx_id_or_number}"
        ]["put"]["operationId"]
        == "upsertTransaction"
    )


def test_service_row_lost_after_create_is_healed(app_client: AppClient) -> None:
    """A crash between the engine's commit and the service row: the record heals it."""
    import sqlite3

    key = new_key(app_client)
    h = login(app_client, key)
    tss = str(uuid.uuid4())
    created = app_client.put(f"/api/v2/tss/{tss}", json={}, headers=h).json()
    db = sqlite3.connect(app_client.ctx.store._path)
    with db:
        db.execute("DELETE FROM svc_tss WHERE tss_id = ?", (tss,))
    db.close()
    assert app_client.ctx.svc.get_tss(tss) is None
    again = app_client.put(f"/api/v2/tss/{tss}", json={}, headers=h).json()
    assert again["admin_puk"] == created["admin_puk"] and again["_env"] == "TEST"
    other = login(app_client, new_key(app_client, org="someone-else"))
    assert app_client.get(f"/api/v2/tss/{tss}", headers=other).status_code == 404
