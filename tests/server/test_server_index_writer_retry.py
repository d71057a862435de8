"""The transaction index writer never drops a batch it could not write.

On PostgreSQL it takes SHARE on deleted_refs (service_store._write_batch), which
waits for a deleteStoredData in progress: its ROW EXCLUSIVE lasts as long as the
deletion. Past the session's lock_timeout (3 s) the write failed E_STORAGE_BUSY and
the whole batch was dropped: the sales signed during the deletion were missing from
the lists and counts until a restart rebuilt the index. Now the batch is written
again after a pause, and answered from memory meanwhile; lists do not wait for it."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import psycopg
from server_support import AppClient, login, new_key, serve_app, setup_tss

from opentse.storage.pg_deadline import LOCK_TIMEOUT_MS
from opentse.testing.clock import FrozenClock

CASH = {
    "standard_v1": {
        "receipt": {
            "receipt_type": "RECEIPT",
            "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "1.00"}],
            "amounts_per_payment_type": [{"payment_type": "CASH", "amount": "1.00"}],
        }
    }
}
HOLD = LOCK_TIMEOUT_MS / 1000 + 3.0  # longer than the writer's lock wait


def _indexed(c: AppClient, tss: str) -> list[int]:
    rows = c.ctx.svc._conn().execute(
        "SELECT number FROM svc_transactions WHERE tss_id=? ORDER BY number", (tss,)
    )
    return [row[0] for row in rows]


def _wait_indexed(c: AppClient, tss: str, numbers: list[int]) -> None:
    """The writer is retrying (flush() no longer waits for it): poll the table."""
    until = time.monotonic() + 20
    while _indexed(c, tss) != numbers and time.monotonic() < until:
        time.sleep(0.1)
    assert _indexed(c, tss) == numbers


def _sale(c: AppClient, h: dict[str, str], tss: str, cid: str, *, finish: bool = True) -> str:
    tx = str(uuid.uuid4())
    bodies = [{"state": "ACTIVE", "client_id": cid}]
    if finish:
        bodies.append({"state": "FINISHED", "client_id": cid, "schema": CASH})
    for rev, body in enumerate(bodies, 1):
        r = c.put(f"/api/v2/tss/{tss}/tx/{tx}", params={"tx_revision": rev}, json=body, headers=h)
        assert r.status_code == 200, r.text
    return tx


def test_sale_signed_during_a_long_deletion_reaches_the_lists(pg_url: str, tmp_path: Path) -> None:
    with serve_app(tmp_path / "data", FrozenClock(1_700_000_000), pg_url) as c:
        h = login(c, new_key(c))
        tss, cid = setup_tss(c, h)
        _sale(c, h, tss, cid)
        c.ctx.svc.flush()
        held = threading.Event()

        def deleting() -> None:  # what deleteStoredData's INSERT INTO deleted_refs holds
            with psycopg.connect(pg_url) as conn:
                conn.execute("LOCK TABLE deleted_refs IN ROW EXCLUSIVE MODE")
                held.set()
                time.sleep(HOLD)

        holder = threading.Thread(target=deleting)
        holder.start()
        assert held.wait(10)
        started = time.monotonic()
        during = _sale(c, h, tss, cid, finish=False)  # its one row, in one batch
        # the writer's first attempt has given up on the lock by now
        time.sleep(max(0.0, LOCK_TIMEOUT_MS / 1000 + 0.5 - (time.monotonic() - started)))
        assert holder.is_alive()
        # still answered from memory (a GET of the API would also rebuild a lost
        # row from its log, which hid the loss from this test)
        row = c.ctx.svc.get_tx(tss, during)
        assert row is not None and (row.number, row.state) == (2, "ACTIVE")
        # a list answers what is written at once, not after the deletion (its
        # flush waited up to 30 s for a writer that could not write)
        asked = time.monotonic()
        r = c.get(f"/api/v2/tss/{tss}/tx", params={"order_by": "number"}, headers=h)
        assert r.status_code == 200, r.text
        assert time.monotonic() - asked < 1.5 and holder.is_alive()
        # metadata of a row not written yet waits for it (its UPDATE found no row)
        path = f"/api/v2/tss/{tss}/tx/{during}/metadata"
        r = c.patch(path, json={"note": "during"}, headers=h)
        assert r.status_code == 200, r.text
        holder.join()
        _wait_indexed(c, tss, [1, 2])
        _sale(c, h, tss, cid)
        c.ctx.svc.flush()
        r = c.get(f"/api/v2/tss/{tss}/tx", params={"limit": 100, "order_by": "number"}, headers=h)
        assert r.status_code == 200, r.text
        listed = [(t["number"], t["state"]) for t in r.json()["data"]]
        assert listed == [(1, "FINISHED"), (2, "ACTIVE"), (3, "FINISHED")]
        assert r.json()["count"] == 3
        assert _indexed(c, tss) == [1, 2, 3]
        r = c.get(path, headers=h)
        assert r.status_code == 200 and r.json() == {"note": "during"}, r.text
