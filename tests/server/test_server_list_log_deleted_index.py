"""The API's transaction lists after deleteStoredData filter on the index's own column.

They left out a closed transaction whose latest revision's log was deleted with a
NOT EXISTS over deleted_refs for every row, so on a TSE with deleted logs each list
and its count read the whole index row by row (1M transactions, 990k deleted: 7 s
a request instead of 92 ms). Migration 0014 keeps that fact in
``svc_transactions.log_deleted``: deleteStoredData sets it with the refs, the index
writer for a row written after its log was deleted, and the lists read along the
partial index ``svc_transactions_listed``. Checked on the query plan and the SQL,
never on time; the lists' answers on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import io
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_support import AppClient, login, new_key, serve_app, setup_tss

from opentse.server.service_store import Page, ServiceStore
from opentse.storage import migrations
from opentse.storage.pg_service import translate
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


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppClient]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    with serve_app(tmp_path / "data", FrozenClock(1_700_000_000), url) as client:
        yield client


def _put(c: AppClient, h: dict[str, str], tss: str, tx: str, rev: int, body: Any) -> None:
    r = c.put(f"/api/v2/tss/{tss}/tx/{tx}", params={"tx_revision": rev}, json=body, headers=h)
    assert r.status_code == 200, r.text


def _sale(c: AppClient, h: dict[str, str], tss: str, cid: str) -> str:
    tx = str(uuid.uuid4())
    _put(c, h, tss, tx, 1, {"state": "ACTIVE", "client_id": cid})
    _put(c, h, tss, tx, 2, {"state": "FINISHED", "client_id": cid, "schema": CASH})
    return tx


def _pages(
    c: AppClient, h: dict[str, str], path: str, limit: int, **q: str
) -> tuple[list[int], set[int]]:
    numbers: list[int] = []
    counts: set[int] = set()
    offset = 0
    while True:
        params: dict[str, str | int] = {
            "limit": limit,
            "offset": offset,
            "order_by": "number",
            **q,
        }
        r = c.get(path, params=params, headers=h)
        assert r.status_code == 200, r.text
        counts.add(r.json()["count"])
        numbers += [tx["number"] for tx in r.json()["data"]]
        if len(r.json()["data"]) < limit:
            return numbers, counts
        offset += limit


def _flags(c: AppClient, tss: str) -> dict[int, int]:
    c.ctx.svc.flush()
    rows = c.ctx.svc._conn().execute(
        "SELECT number, log_deleted FROM svc_transactions WHERE tss_id=?", (tss,)
    )
    return {int(r[0]): int(r[1]) for r in rows}


def test_lists_leave_out_exactly_the_closed_ones_whose_log_was_deleted(served: AppClient) -> None:
    c = served
    h = login(c, new_key(c))
    tss, cid = setup_tss(c, h)
    for _ in range(3):  # 1-3: finished, then exported and deleted
        _sale(c, h, tss, cid)
    reopened = str(uuid.uuid4())  # 4: started before the deletion, finished after
    _put(c, h, tss, reopened, 1, {"state": "ACTIVE", "client_id": cid})
    still_open = str(uuid.uuid4())  # 5: open, its Start deleted (listed: it is open)
    _put(c, h, tss, still_open, 1, {"state": "ACTIVE", "client_id": cid})
    c.ctx.service.export(tss, io.BytesIO())
    c.ctx.service.delete_stored_data(tss)
    # deleteStoredData flagged them in its own transaction
    assert _flags(c, tss) == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    _put(c, h, tss, reopened, 2, {"state": "FINISHED", "client_id": cid, "schema": CASH})
    for _ in range(2):  # 6, 7
        _sale(c, h, tss, cid)
    assert _flags(c, tss) == {1: 1, 2: 1, 3: 1, 4: 0, 5: 1, 6: 0, 7: 0}

    for path in (f"/api/v2/tss/{tss}/tx", "/api/v2/tx", f"/api/v2/tss/{tss}/client/{cid}/tx"):
        for limit in (2, 100):
            assert _pages(c, h, path, limit) == ([4, 5, 6, 7], {4}), (path, limit)
        assert _pages(c, h, path, 3, **{"states[]": "ACTIVE"}) == ([5], {1}), path
        assert _pages(c, h, path, 3, **{"states[]": "FINISHED"}) == ([4, 6, 7], {3}), path

    # a row the index writer writes after its revision's log was deleted (it was
    # queued meanwhile) is flagged as it is written
    svc = c.ctx.svc
    row = svc.get_tx(tss, still_open)
    assert row is not None
    with svc._tx() as conn:
        conn.execute("DELETE FROM svc_transactions WHERE tss_id=? AND tx_id=?", (tss, still_open))
    svc.upsert_tx(dataclasses.replace(row))
    assert _flags(c, tss)[5] == 1


def _index(db: Path, org: str, tss: str) -> None:
    """A transaction index of 2,000 rows, 9 in 10 with their logs deleted."""
    with sqlite3.connect(db, isolation_level=None) as conn:
        migrations.apply(conn, "sqlite")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO svc_transactions(tss_id, tx_id, organization_id, number, client_id,"
            " latest_revision, state, time_start, log_deleted) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (tss, f"{n:036d}", org, n, "c", 2, "FINISHED", n, int(n % 10 != 0))
                for n in range(1, 2001)
            ],
        )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")


def _list_sql(db: Path, org: str, tss: str) -> list[str]:
    """The statements list_txs runs for the API's lists (all TSS, one TSS), as
    SQLite ran them (parameters in the text)."""
    seen: list[str] = []
    svc = ServiceStore(db)
    try:
        svc._conn().set_trace_callback(seen.append)
        for tss_id in (None, tss):
            rows, total = svc.list_txs(org, Page(limit=100), tss_id, listed=True)
            assert (len(rows), total) == (100, 200)
    finally:
        svc.close()
    return [s for s in seen if "svc_transactions" in s]


def test_the_list_query_reads_the_partial_index_not_deleted_refs(tmp_path: Path) -> None:
    db = tmp_path / "opentse.db"
    _index(db, "org-1", "tss-1")
    statements = _list_sql(db, "org-1", "tss-1")
    assert len(statements) == 4, statements  # count and page, of all TSS and of one
    with sqlite3.connect(db) as conn:
        for sql in statements:
            assert "deleted_refs" not in sql, sql
            plan = [str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql)]
            assert any("svc_transactions_listed" in step for step in plan), (sql, plan)
            # no step reads the table without an index
            assert not any(step == "SCAN svc_transactions" for step in plan), (sql, plan)


def test_postgresql_can_read_the_lists_along_the_partial_index(tmp_path: Path, pg_url: str) -> None:
    """The same statements, translated as PgServiceStore runs them: the planner
    proves they imply the index's WHERE (sequential scans off, as a large table
    would have it)."""
    import psycopg

    db = tmp_path / "opentse.db"
    _index(db, "org-1", "tss-1")
    statements = _list_sql(db, "org-1", "tss-1")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        migrations.apply(conn, "postgresql")
        conn.execute("SET enable_seqscan = off")
        for sql in statements:
            plan = conn.execute("EXPLAIN " + translate(sql, with_params=False)).fetchall()
            text = " | ".join(str(r[0]) for r in plan)
            assert "svc_transactions_listed" in text, (sql, text)
