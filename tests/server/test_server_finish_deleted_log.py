"""FINISHED without a schema finishes with the data of the latest revision; when that
revision's log was deleted after an export (deleteStoredData) there is nothing to
finish with: 409 ``E_TX_NO_TYPE_DEFINED`` saying so, not "nothing signed yet"."""

from __future__ import annotations

import io
import uuid

from server_support import AppClient, login, new_key, setup_tss

CASH = {
    "standard_v1": {
        "receipt": {
            "receipt_type": "RECEIPT",
            "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "2.00"}],
            "amounts_per_payment_type": [{"payment_type": "CASH", "amount": "2.00"}],
        }
    }
}


def test_finish_without_schema_after_the_latest_log_was_deleted(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, h)  # the admin is logged in (deleteStoredData needs it)

    def put(tx: str, rev: int, body: dict[str, object]) -> dict[str, object]:
        r = app_client.put(
            f"/api/v2/tss/{tss}/tx/{tx}", params={"tx_revision": rev}, json=body, headers=h
        )
        return {"status": r.status_code, **r.json()}

    tx = str(uuid.uuid4())
    assert put(tx, 1, {"state": "ACTIVE", "client_id": cid})["status"] == 200
    assert put(tx, 2, {"state": "ACTIVE", "client_id": cid, "schema": CASH})["status"] == 200
    service = app_client.ctx.service
    service.export(tss, io.BytesIO())
    service.delete_stored_data(tss)
    counter = service.store.get_state(tss).signature_counter

    refused = put(tx, 3, {"state": "FINISHED", "client_id": cid})
    assert (refused["status"], refused["code"]) == (409, "E_TX_NO_TYPE_DEFINED"), refused
    message = str(refused["message"])
    assert "latest revision (2)" in message and "deleted after an export" in message
    assert "schema" in message and "signed any data yet" not in message
    assert service.store.get_state(tss).signature_counter == counter  # nothing signed

    # with its schema the receipt is finished
    done = put(tx, 3, {"state": "FINISHED", "client_id": cid, "schema": CASH})
    assert done["status"] == 200 and done["state"] == "FINISHED", done

    # a revision that signed a type but no data says that instead
    typed = {"raw": {"process_type": "Kassenbeleg-V1", "process_data": ""}}
    other = str(uuid.uuid4())
    assert put(other, 1, {"state": "ACTIVE", "client_id": cid, "schema": typed})["status"] == 200
    empty = put(other, 2, {"state": "FINISHED", "client_id": cid})
    assert (empty["status"], empty["code"]) == (409, "E_TX_NO_TYPE_DEFINED"), empty
    assert "latest revision (1), which signed none" in str(empty["message"])


def test_reading_a_revision_whose_log_was_deleted(app_client: AppClient) -> None:
    """A receipt reprinted after the shop deleted its exported logs: its revisions
    were signed, their logs are gone. It answered 400 E_TX_REVISION_NOT_FOUND
    'revision 2 not found' (a POS looks for another revision): the message says where
    it is now."""
    h = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, h)
    tx = str(uuid.uuid4())
    url = f"/api/v2/tss/{tss}/tx/{tx}"
    for rev, body in ((1, {"state": "ACTIVE"}), (2, {"state": "FINISHED", "schema": CASH})):
        r = app_client.put(
            url, params={"tx_revision": rev}, json={**body, "client_id": cid}, headers=h
        )
        assert r.status_code == 200, r.text
    service = app_client.ctx.service
    service.export(tss, io.BytesIO())
    service.delete_stored_data(tss)
    counter = service.store.get_state(tss).signature_counter

    # retrieveTransaction keeps fiskaly's 400 code (a 404 tells a register there is no
    # such transaction: ours forgot a Start it had noted, open at the TSE);
    # retrieveTransactionLog answers fiskaly's code for a missing log
    for path, params, revision, status, code in (
        (url, {}, 2, 400, "E_TX_REVISION_NOT_FOUND"),
        (url, {"tx_revision": 1}, 1, 400, "E_TX_REVISION_NOT_FOUND"),
        (f"/api/v2/tss/{tss}/tx/1", {}, 2, 400, "E_TX_REVISION_NOT_FOUND"),
        (url + "/log", {}, 2, 404, "E_LOG_NOT_FOUND"),
    ):
        r = app_client.get(path, params=params, headers=h)
        assert r.status_code == status, (path, r.text)
        problem = r.json()
        assert problem["code"] == code, problem
        assert (
            f"the log of revision {revision} of transaction 1 was deleted after an export"
            in (problem["message"])
        )
    # a revision that never was is still that
    r = app_client.get(url, params={"tx_revision": 3}, headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "E_TX_REVISION_NOT_FOUND")
    # a retry of the deleted revision signs nothing and says why it cannot answer
    finish = {"state": "FINISHED", "client_id": cid, "schema": CASH}
    r = app_client.put(url, params={"tx_revision": 2}, json=finish, headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "E_TX_REVISION_NOT_FOUND")
    assert "deleted after an export" in r.json()["message"]
    assert service.store.get_state(tss).signature_counter == counter
