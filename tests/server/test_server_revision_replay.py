"""A revision sent again (server/replay.py): the same request answers what was signed
and signs nothing; another request for a signed revision is 409
``E_TX_REVISION_CONFLICT`` and signs nothing either, on the hot route's quick path,
the full path, both drivers (event loop, handler threads) and after a crash that lost
the index rows (decided on the logs)."""

from __future__ import annotations

import copy
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_support import AppClient, login, new_key, serve_app, setup_tss

from opentse.testing.clock import FrozenClock

RECEIPT = {
    "receipt_type": "RECEIPT",
    "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "21.42"}],
    "amounts_per_payment_type": [{"payment_type": "NON_CASH", "amount": "21.42"}],
}
ORDER = {"line_items": [{"quantity": "2", "text": "Cola", "price_per_unit": "2.50"}]}


def _with_amount(amount: str) -> dict[str, Any]:
    receipt = copy.deepcopy(RECEIPT)
    receipt["amounts_per_vat_rate"][0]["amount"] = amount
    receipt["amounts_per_payment_type"][0]["amount"] = amount
    return {"standard_v1": {"receipt": receipt}}


class Till:
    def __init__(self, client: AppClient) -> None:
        self.client = client
        self.h = login(client, new_key(client))
        self.tss, self.cid = setup_tss(client, self.h)
        other = str(uuid.uuid4())
        r = client.put(
            f"/api/v2/tss/{self.tss}/client/{other}",
            json={"serial_number": "KASSE-2"},
            headers=self.h,
        )
        assert r.status_code == 200, r.text
        self.other = other

    def put(self, tx: str, rev: int, body: dict[str, Any]) -> httpx.Response:
        return self.client.put(
            f"/api/v2/tss/{self.tss}/tx/{tx}",
            params={"tx_revision": rev},
            json=body,
            headers=self.h,
        )

    def counter(self) -> int:
        r = self.client.get(f"/api/v2/tss/{self.tss}", headers=self.h)
        assert r.status_code == 200, r.text
        return int(r.json()["signature_counter"])

    def refused(self, tx: str, rev: int, body: dict[str, Any], differs: str) -> None:
        before = self.counter()
        r = self.put(tx, rev, body)
        assert r.status_code == 409, (rev, body, r.text)
        problem = r.json()
        assert problem["code"] == "E_TX_REVISION_CONFLICT" and problem["status_code"] == 409
        assert f"revision {rev} of transaction {tx}" in problem["message"]
        assert f"({differs} differ)" in problem["message"], problem["message"]
        assert self.counter() == before  # nothing signed


def _lose_index(client: AppClient) -> None:
    """What a kill -9 before the index writer ran leaves: logs without index rows."""
    svc = client.ctx.svc
    svc.flush()
    with sqlite3.connect(svc._path) as conn:
        conn.execute("DELETE FROM svc_transactions")


def _story(till: Till, *, lose_index: bool) -> None:
    """A receipt in three revisions, each sent again the same way (the stored
    answer) and changed (409), before and after the index rows were lost."""
    tx = str(uuid.uuid4())
    start = {"state": "ACTIVE", "client_id": till.cid, "metadata": {"table": "7"}}
    update = {"state": "ACTIVE", "client_id": till.cid, "schema": _with_amount("10.00")}
    finish = {"state": "FINISHED", "client_id": till.cid, "schema": _with_amount("21.42")}
    signed = [till.put(tx, rev, body) for rev, body in ((1, start), (2, update), (3, finish))]
    assert [r.status_code for r in signed] == [200, 200, 200], signed[-1].text
    if lose_index:
        _lose_index(till.client)
    counter = till.counter()

    # revision 1: quick path (no row read for a Start), then the full path
    till.refused(tx, 1, {**start, "client_id": till.other}, "client_id")
    till.refused(tx, 1, {**start, "state": "CANCELLED"}, "state, schema")
    till.refused(tx, 1, {**start, "metadata": {"table": "8"}}, "metadata")
    till.refused(tx, 1, {**start, "schema": _with_amount("1.00")}, "schema")
    till.refused(
        tx, 1, {**start, "state": "FINISHED", "schema": _with_amount("21.42")}, "state, schema"
    )
    # revision 2: data and type as signed
    till.refused(tx, 2, {**update, "schema": _with_amount("11.00")}, "schema")
    till.refused(tx, 2, {**update, "schema": {"standard_v1": {"order": ORDER}}}, "schema")
    till.refused(tx, 2, {"state": "ACTIVE", "client_id": till.cid}, "schema")
    # revision 3, the receipt: other amounts, cancelled instead, another till
    till.refused(tx, 3, {**finish, "schema": _with_amount("12.42")}, "schema")
    till.refused(tx, 3, {"state": "CANCELLED", "client_id": till.cid}, "state, schema")
    till.refused(tx, 3, {**finish, "client_id": till.other}, "client_id")

    # the same requests again: what was signed, nothing new
    for rev, body, first in ((1, start, signed[0]), (2, update, signed[1]), (3, finish, signed[2])):
        again = till.put(tx, rev, body)
        assert again.status_code == 200, again.text
        assert again.json()["signature"] == first.json()["signature"]
        assert again.json()["latest_revision"] == 3
    # the key order and an uppercase client id do not make another request
    reordered = {"client_id": till.cid.upper(), "schema": finish["schema"], "state": "FINISHED"}
    assert till.put(tx, 3, reordered).json()["signature"] == signed[2].json()["signature"]
    # metadata left out of a retry is no change; a key it sends must be as logged
    assert till.put(tx, 1, {"state": "ACTIVE", "client_id": till.cid}).status_code == 200
    assert till.counter() == counter
    got = till.client.get(f"/api/v2/tss/{till.tss}/tx/{tx}", headers=till.h).json()
    assert got["state"] == "FINISHED" and got["client_id"] == till.cid
    assert got["metadata"] == {"table": "7"}
    assert got["qr_code_data"] == signed[2].json()["qr_code_data"]


@pytest.mark.parametrize("lose_index", [False, True])
def test_a_changed_request_for_a_signed_revision_is_refused(
    app_client: AppClient, lose_index: bool
) -> None:
    _story(Till(app_client), lose_index=lose_index)


def test_refused_alike_on_handler_threads(tmp_path: Path, clock: FrozenClock) -> None:
    with serve_app(tmp_path / "threads", clock, loop_signing=False) as client:
        assert client.app.hot_async is None
        _story(Till(client), lose_index=True)


def test_start_and_finish_in_one_call_and_schemaless_ends(app_client: AppClient) -> None:
    till = Till(app_client)
    # one call that starts and finishes: revision 1 is the Finish
    once = str(uuid.uuid4())
    finish = {"state": "FINISHED", "client_id": till.cid, "schema": _with_amount("5.00")}
    first = till.put(once, 1, finish)
    assert first.status_code == 200, first.text
    assert till.put(once, 1, finish).json()["signature"] == first.json()["signature"]
    till.refused(once, 1, {**finish, "schema": _with_amount("5.01")}, "schema")

    # a Finish without schema takes what the revision before signed; sent again
    # without schema it is the same request, with other data it is not
    tx = str(uuid.uuid4())
    assert till.put(tx, 1, {"state": "ACTIVE", "client_id": till.cid}).status_code == 200
    update = {"state": "ACTIVE", "client_id": till.cid, "schema": _with_amount("9.99")}
    assert till.put(tx, 2, update).status_code == 200
    as_is = {"state": "FINISHED", "client_id": till.cid}
    done = till.put(tx, 3, as_is)
    assert done.status_code == 200, done.text
    assert till.put(tx, 3, as_is).json()["signature"] == done.json()["signature"]
    assert till.put(tx, 3, {**as_is, **_finish_with("9.99")}).status_code == 200  # same data
    till.refused(tx, 3, {**as_is, **_finish_with("1.00")}, "schema")

    # a cancellation without schema signs the aborted receipt; sent again, the same
    cancelled = str(uuid.uuid4())
    assert till.put(cancelled, 1, {"state": "ACTIVE", "client_id": till.cid}).status_code == 200
    cancel = {"state": "CANCELLED", "client_id": till.cid}
    gone = till.put(cancelled, 2, cancel)
    assert gone.status_code == 200, gone.text
    assert till.put(cancelled, 2, cancel).json()["signature"] == gone.json()["signature"]
    till.refused(cancelled, 2, {"state": "FINISHED", "client_id": till.cid}, "state, schema")


def _finish_with(amount: str) -> dict[str, Any]:
    return {"schema": _with_amount(amount)}


def test_a_schema_with_an_empty_process_type_is_the_same_request_again(
    app_client: AppClient,
) -> None:
    """A raw schema with an empty process_type (fiskaly's Start template, kept by a POS
    for every revision) signs CANCELLED as the aborted receipt and FINISHED as the
    revision before: its retry, byte for byte, answered 409 '(schema differ)'."""
    till = Till(app_client)
    empty = {"raw": {"process_type": "", "process_data": ""}}
    data = {"raw": {"process_type": "Kassenbeleg-V1", "process_data": "QmVsZWdeMS4wMDpCYXI="}}
    for state, first in (("CANCELLED", {}), ("FINISHED", {"schema": data})):
        tx = str(uuid.uuid4())
        start = {"state": "ACTIVE", "client_id": till.cid, **first}
        assert till.put(tx, 1, start).status_code == 200
        end = {"state": state, "client_id": till.cid, "schema": empty}
        signed = till.put(tx, 2, end)
        assert signed.status_code == 200, signed.text
        before = till.counter()
        again = till.put(tx, 2, end)
        assert again.status_code == 200, (state, again.text)
        assert again.json()["signature"] == signed.json()["signature"]
        assert till.counter() == before
    # the data it finished with, named: the same; other data: not
    assert till.put(tx, 2, {"state": "FINISHED", "client_id": till.cid, "schema": data}).is_success
    other = {"raw": {"process_type": "Kassenbeleg-V1", "process_data": "QmVsZWdeMi4wMDpCYXI="}}
    till.refused(tx, 2, {"state": "FINISHED", "client_id": till.cid, "schema": other}, "schema")


def test_metadata_sent_with_a_retry_of_a_revision_signed_without_any_is_a_change(
    app_client: AppClient,
) -> None:
    """No metadata was logged with the revision: a retry that brings some was answered
    200 as the same request, although it would not have been stored."""
    till = Till(app_client)
    tx = str(uuid.uuid4())
    start = {"state": "ACTIVE", "client_id": till.cid}
    assert till.put(tx, 1, start).status_code == 200
    assert till.put(tx, 1, {**start, "metadata": {"table": None}}).status_code == 200
    till.refused(tx, 1, {**start, "metadata": {"table": "8"}}, "metadata")
