"""An open transaction whose Start was deleted after an export is still recovered.

deleteStoredData drops every exported log, the Start of a transaction still open
included. The lists left such a transaction out and retrieveTransaction answered
400, so a register's recovery (it lists its client's ACTIVE transactions, reads each
by number and signs the next revision) never saw it: it stayed open at the TSE for
good, counted in number_active_transactions. Now the lists show it and its latest
revision is answered with what is still known (server/tx_unlogged.py); the register
aborts it like any other. End to end: the real RemoteBackend and Register against
the served app, SQLite and PostgreSQL."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from server_support import AppClient, login, new_key, serve_app, setup_tss

from opentse.register.outage import OutageLog
from opentse.register.receipt import Seller
from opentse.register.recovery import DEFAULT_ABANDONED_AFTER
from opentse.register.register import Register, RegisterConfig
from opentse.register.remote import RemoteBackend
from opentse.testing.clock import FrozenClock

ORDER = {"raw": {"process_type": "Bestellung-V1", "process_data": ""}}
SELLER = Seller("Imbiss am Ring", ("Ring 1", "04109 Leipzig"))


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppClient]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    with serve_app(tmp_path / "data", FrozenClock(1_700_000_000), url) as client:
        yield client


def _put(c: AppClient, h: dict[str, str], tss: str, tx: str, rev: int, body: Any) -> Any:
    r = c.put(f"/api/v2/tss/{tss}/tx/{tx}", params={"tx_revision": rev}, json=body, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def test_recovery_aborts_open_transactions_whose_start_was_deleted(
    served: AppClient, tmp_path: Path
) -> None:
    c = served
    key = new_key(c)
    h = login(c, key)
    tss, cid = setup_tss(c, h)
    serial = c.get(f"/api/v2/tss/{tss}/client/{cid}", headers=h).json()["serial_number"]
    sale, order = str(uuid.uuid4()), str(uuid.uuid4())
    started = _put(c, h, tss, sale, 1, {"state": "ACTIVE", "client_id": cid})
    _put(c, h, tss, order, 1, {"state": "ACTIVE", "client_id": cid})
    _put(c, h, tss, order, 2, {"state": "ACTIVE", "client_id": cid, "schema": ORDER})
    service = c.ctx.service
    service.export(tss, io.BytesIO())
    service.delete_stored_data(tss)
    assert c.get(f"/api/v2/tss/{tss}", headers=h).json()["number_active_transactions"] == 2

    # what the lists and retrieveTransaction answer for them: what is still known
    r = c.get(f"/api/v2/tss/{tss}/client/{cid}/tx", params={"states[]": "ACTIVE"}, headers=h)
    assert r.status_code == 200, r.text
    listed = {tx["_id"]: tx for tx in r.json()["data"]}
    assert r.json()["count"] == 2 and set(listed) == {sale, order}
    start = listed[sale]
    assert start["number"] == started["number"] and start["state"] == "ACTIVE"
    assert start["revision"] == start["latest_revision"] == 1
    assert start["log"] == {
        "operation": "Start",
        "timestamp": started["time_start"],
        "timestamp_format": "unixTime",
    }
    assert start["signature"]["counter"] == started["signature"]["counter"]
    assert start["signature"]["public_key"] == started["signature"]["public_key"]
    assert "value" not in start["signature"] and "schema" not in start
    assert start["client_serial_number"] == serial
    update = listed[order]
    assert update["log"]["operation"] == "Update" and "timestamp" not in update["log"]
    by_number = c.get(f"/api/v2/tss/{tss}/tx/{start['number']}", headers=h)
    assert by_number.status_code == 200 and by_number.json() == start
    # an earlier revision of the order is still a deleted one
    r = c.get(f"/api/v2/tss/{tss}/tx/{order}", params={"tx_revision": 1}, headers=h)
    assert (r.status_code, r.json()["code"]) == (400, "E_TX_REVISION_NOT_FOUND")

    # a till of that client reconnects the next morning: it started neither, both are
    # older than abandoned_after, so it finishes both as aborted
    c.ctx.clock.advance(int(DEFAULT_ABANDONED_AFTER.total_seconds()) + 60)
    now = datetime.fromtimestamp(c.ctx.clock.now(), UTC)
    backend = RemoteBackend(
        str(c.base_url).rstrip("/"), key["api_key"], key["api_secret"], tss, cid, retries=0
    )
    journal = OutageLog(tmp_path / "till" / "journal.db")
    try:
        till = Register(backend, RegisterConfig(SELLER, serial), journal, clock=lambda: now)
        finished = till.recover()
    finally:
        journal.close()
        backend.close()
    assert sorted(finished) == sorted([started["number"], update["number"]])
    h = login(c, key)  # the token of before the night has run out
    states = {tx: c.get(f"/api/v2/tss/{tss}/tx/{tx}", headers=h).json()["state"] for tx in listed}
    assert states == {sale: "FINISHED", order: "CANCELLED"}  # an order is cancelled
    assert c.get(f"/api/v2/tss/{tss}", headers=h).json()["number_active_transactions"] == 0
    r = c.get(f"/api/v2/tss/{tss}/tx", params={"states[]": "ACTIVE"}, headers=h)
    assert (r.json()["count"], r.json()["data"]) == (0, [])
