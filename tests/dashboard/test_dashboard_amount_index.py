"""The dashboard's amount and date search is one index query (``amount_cents``,
migration 0007), not a scan of the newest ``SEARCH_SCAN`` transactions: a receipt of
21,42 EUR from a month ago is found however busy the shop was since.

The newer transactions in front of it are index rows written through the real
``ServiceStore`` (the search reads only the index, never their logs), so the test
needs no thousands of signed receipts. The amount in the index is checked for each
kind of transaction, after an index lost in a crash, for rows written before the
migration (backfilled), and on PostgreSQL.
"""

from __future__ import annotations

import base64
import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_support import api_login, dashboard_login, sell, setup_tss

from opentse.dashboard import amounts, search_fields, transactions
from opentse.dashboard.transactions import SEARCH_LIMIT, SEARCH_SCAN, TxQuery
from opentse.ops.store import OpsDB
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.server.service_store import Page, ServiceStore, TxRow
from opentse.server.tx_index import amount_cents, rebuild_index
from opentse.testing.clock import FrozenClock
from opentse.testing.serving import serving_in_thread

START = 1_700_000_000  # 2023-11-14 22:13:20 UTC
DAY = 86400


class Shop:
    """An installation served by uvicorn in a thread: API client, dashboard client."""

    def __init__(self, app: Any, base: str, clock: FrozenClock) -> None:
        self.app = app
        self.ctx = app.state.ctx
        self.clock = clock
        self.api = httpx.Client(base_url=base, timeout=30)
        self.web = httpx.Client(base_url=base, timeout=30)
        self.key = create_api_key(self.ctx.svc, org_name="shop", env="TEST", now=self.ctx.now())
        self.h = api_login(self.api, self.key)
        self.tss, self.cid = setup_tss(self.api, self.h, "KASSE-01")
        row = self.ctx.svc.get_tss(self.tss)
        assert row is not None
        self.org: str = row.organization_id
        self.login()

    def later(self, now: int) -> None:
        """The clock moves on; tokens and the dashboard session are renewed."""
        self.clock.set(now)
        self.h = api_login(self.api, self.key)
        self.login()

    def login(self) -> None:
        self.web.cookies.clear()
        r = dashboard_login(self.web, self.key)
        assert r.status_code == 303, r.text

    def put(self, tx: str, revision: int, body: dict[str, Any]) -> dict[str, Any]:
        r = self.api.put(
            f"/api/v2/tss/{self.tss}/tx/{tx}",
            params={"tx_revision": revision},
            json={"client_id": self.cid, **body},
            headers=self.h,
        )
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def row(self, tx_id: str) -> TxRow:
        self.ctx.svc.flush()
        row: TxRow | None = self.ctx.svc.get_tx(self.tss, tx_id)
        assert row is not None
        return row

    def search(self, status: int = 200, **params: str) -> tuple[list[int], str]:
        page = self.web.get("/dashboard/tx", params=params, headers={"accept-language": "en"})
        assert page.status_code == status  # 400: a field refused
        return [int(n) for n in re.findall(r'/tx/(\d+)">', page.text)], page.text

    def close(self) -> None:
        self.api.close()
        self.web.close()


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    from opentse.installation import Installation

    clock = FrozenClock(START)
    data = tmp_path / "data"
    inst = Installation.open(data, clock=clock)
    app = create_app(inst, ServerConfig(data_dir=data), clock=clock)
    try:
        with serving_in_thread(app) as base:
            s = Shop(app, base, clock)
            try:
                yield s
            finally:
                s.close()
    finally:
        inst.close()


def _newer_receipts(shop: Shop, count: int, since: int) -> None:
    """``count`` index rows of finished 1,00 EUR receipts, all newer than ``since``."""
    for i in range(count):
        keys = (shop.tss, str(uuid.uuid4()), shop.org)
        t = since + 60 + i * 30
        shop.ctx.svc.upsert_tx(
            TxRow(
                *keys, 10_000_000 + i, shop.cid, 2, "FINISHED", "Kassenbeleg-V1", t, t + 5, {}, 100
            )
        )
    shop.ctx.svc.flush()


def _explain(conn: sqlite3.Connection, sql: str) -> str:
    return " | ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql))


def test_old_receipt_found_by_amount_and_date_behind_more_than_the_scan(shop: Shop) -> None:
    old = sell(shop.api, shop.h, shop.tss, shop.cid, "21.42")
    assert shop.row(old["_id"]).amount_cents == 2142
    day = "2023-11-14"
    shop.later(START + 30 * DAY)  # a month later; SEARCH_SCAN + 1 receipts sold since
    _newer_receipts(shop, SEARCH_SCAN + 1, START + DAY)
    recent = sell(shop.api, shop.h, shop.tss, shop.cid, "21.42")
    both = sorted([old["number"], recent["number"]])
    assert sorted(shop.search(amount="21,42")[0]) == both
    assert sorted(shop.search(amount="21.42")[0]) == both
    assert shop.search(amount="21,42", to=day)[0] == [old["number"]]
    assert shop.search(**{"from": day, "to": day})[0] == [old["number"]]
    assert shop.search(amount="21,42", register="KASSE-01", state="FINISHED", to=day)[0] == [
        old["number"]
    ]
    assert shop.search(400, amount="21,42", register="KASSE-09")[0] == []
    assert shop.search(amount="21,42", state="CANCELLED")[0] == []
    assert shop.search(amount="21,4")[0] == []  # 21,40: exact amounts only
    # many matches: the first SEARCH_LIMIT, newest first, and how many there are
    numbers, html = shop.search(amount="1,00")
    assert len(numbers) == SEARCH_LIMIT and "Results 1–50 of 5\u202f001" in html
    assert numbers == sorted(numbers, reverse=True)

    # the SQL path: the amount is a condition of the query, on its partial index
    conn = shop.ctx.svc._conn()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        found = transactions.search(
            shop.ctx, shop.org, TxQuery(amount=search_fields.parse_amount("21,42"))
        )
    finally:
        conn.set_trace_callback(None)
    assert [h.row.number for h in found.hits] == [recent["number"], old["number"]]
    assert found.total == 2 and not found.more
    assert [str(h.amount) for h in found.hits] == ["21.42", "21.42"]
    queries = [s for s in statements if "amount_cents = " in s and "LIMIT" in s]
    assert queries, statements
    for sql in queries:
        assert "svc_transactions_amount" in _explain(conn, sql), sql
    backfill = [s for s in statements if "amount_unread IS NULL AND state" in s]
    assert backfill and "svc_transactions_amount_todo" in _explain(conn, backfill[0])


def test_only_finished_receipts_have_an_amount(shop: Shop) -> None:
    receipt = sell(shop.api, shop.h, shop.tss, shop.cid, "21.42")
    active = str(uuid.uuid4())
    shop.put(active, 1, {"state": "ACTIVE"})
    updated = {
        "receipt_type": "RECEIPT",
        "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "3.00"}],
        "amounts_per_payment_type": [{"payment_type": "CASH", "amount": "3.00"}],
    }
    shop.put(active, 2, {"state": "ACTIVE", "schema": {"standard_v1": {"receipt": updated}}})
    order = str(uuid.uuid4())
    items = {"line_items": [{"quantity": "1", "text": "Tee", "price_per_unit": "21.42"}]}
    shop.put(order, 1, {"state": "ACTIVE", "schema": {"standard_v1": {"order": items}}})
    shop.put(order, 2, {"state": "FINISHED", "schema": {"standard_v1": {"order": items}}})
    cancelled = str(uuid.uuid4())
    shop.put(cancelled, 1, {"state": "ACTIVE"})
    shop.put(cancelled, 2, {"state": "CANCELLED"})
    assert shop.row(receipt["_id"]).amount_cents == 2142
    assert shop.row(active).amount_cents is None
    assert shop.row(order).amount_cents is None
    assert shop.row(cancelled).amount_cents is None  # AVBelegabbruch 0.00: no sale
    assert shop.search(amount="21,42")[0] == [receipt["number"]]
    assert shop.search(amount="0,00")[0] == []
    assert shop.search(amount="3.00")[0] == []  # an ACTIVE revision is no receipt yet


def test_amount_of_processdata() -> None:
    data = b"Beleg^21.00_0.42_0.00_0.00_0.00^21.42:Bar"
    assert amount_cents("FINISHED", "Kassenbeleg-V1", data) == 2142
    assert amount_cents("FINISHED", "Kassenbeleg-V1", b"Beleg^-5.00_0.00_0.00_0.00_0.00^") == -500
    assert amount_cents("ACTIVE", "Kassenbeleg-V1", data) is None
    assert amount_cents("CANCELLED", "Kassenbeleg-V1", data) is None
    assert amount_cents("FINISHED", "Bestellung-V1", data) is None
    assert amount_cents("FINISHED", "Kassenbeleg-V1", b"Beleg^21,42^") is None
    assert amount_cents("FINISHED", "Kassenbeleg-V1", b"\xff") is None


def _lose_index(shop: Shop) -> None:
    """What a kill -9 before the index writer ran leaves: logs without index rows."""
    shop.ctx.svc.flush()
    with sqlite3.connect(shop.ctx.svc._path) as conn:
        conn.execute("DELETE FROM svc_transactions")


def test_rows_rebuilt_after_a_lost_index_have_their_amount(shop: Shop) -> None:
    receipt = sell(shop.api, shop.h, shop.tss, shop.cid, "21.42")
    cancelled = str(uuid.uuid4())
    shop.put(cancelled, 1, {"state": "ACTIVE"})
    shop.put(cancelled, 2, {"state": "CANCELLED"})
    _lose_index(shop)
    assert shop.ctx.svc.get_tx(shop.tss, receipt["_id"]) is None
    assert rebuild_index(shop.ctx) == 2  # as at start-up
    assert shop.row(receipt["_id"]).amount_cents == 2142  # before any search backfills
    assert shop.row(cancelled).amount_cents is None
    assert shop.search(amount="21,42")[0] == [receipt["number"]]


def test_rows_from_before_the_migration_are_backfilled(shop: Shop) -> None:
    first = sell(shop.api, shop.h, shop.tss, shop.cid, "21.42")
    second = sell(shop.api, shop.h, shop.tss, shop.cid, "5.00")
    shop.ctx.svc.flush()
    with sqlite3.connect(shop.ctx.svc._path) as conn:  # what migration 0007 leaves
        conn.execute("UPDATE svc_transactions SET amount_cents=NULL")
    assert shop.row(first["_id"]).amount_cents is None
    numbers, html = shop.search(state="FINISHED")  # shown from the logs meanwhile
    assert sorted(numbers) == sorted([first["number"], second["number"]]) and "21.42" in html
    assert shop.search(amount="21,42")[0] == [first["number"]]
    assert shop.row(first["_id"]).amount_cents == 2142
    assert shop.row(second["_id"]).amount_cents == 500  # the whole batch, not just hits
    missing = transactions.backfill_amounts(shop.ctx, shop.org, None)
    assert missing == 0 and _todo(shop.ctx.svc, shop.org) == []


# --- the service store on both databases ----------------------------------------------


def _todo(svc: ServiceStore, org: str) -> list[str]:
    """The receipts the dashboard's backfill reads next (its own query)."""
    rows = OpsDB(svc).rows(
        f"SELECT tx_id FROM svc_transactions WHERE {amounts.RECEIPTS_TODO}", [org]
    )
    return [str(r[0]) for r in rows]


def test_amount_column_and_filters(service_store: ServiceStore) -> None:
    def tx(n: int, state: str, cents: int | None, client: str = "c1", t: int = 0) -> TxRow:
        return TxRow(
            "t",
            f"x{n}",
            "org",
            n,
            client,
            2,
            state,
            "Kassenbeleg-V1",
            1000 + t,
            1001 + t,
            {},
            cents,
        )

    service_store.upsert_tx(tx(1, "ACTIVE", None))
    service_store.upsert_tx(tx(2, "FINISHED", 2142, t=10))
    service_store.upsert_tx(tx(3, "FINISHED", 2142, client="c2", t=20))
    service_store.upsert_tx(tx(4, "FINISHED", None, t=30))  # as written before migration 0007
    service_store.upsert_tx(
        TxRow("t", "x1", "org", 1, "c1", 3, "FINISHED", "Kassenbeleg-V1", 1000, 1002, {}, 999)
    )
    service_store.flush()
    assert service_store.get_tx("t", "x1") == TxRow(
        "t", "x1", "org", 1, "c1", 3, "FINISHED", "Kassenbeleg-V1", 1000, 1002, {}, 999
    )

    def numbers(**kw: Any) -> list[int]:
        rows, total = service_store.list_txs("org", Page(order="desc"), **kw)
        assert total == len(rows)
        return [r.number for r in rows]

    assert numbers(amount_cents=2142) == [3, 2]
    assert numbers(amount_cents=2142, client_ids=["c1"]) == [2]
    assert numbers(amount_cents=2142, client_ids=[]) == []
    assert numbers(amount_cents=2142, time_from=1010, time_to=1020) == [2]
    assert numbers(time_from=1020) == [4, 3]
    assert numbers(amount_cents=999, states=["FINISHED"]) == [1]
    assert _todo(service_store, "org") == ["x4"]  # the dashboard's backfill reads it
    assert _todo(service_store, "other") == []
    with OpsDB(service_store).tx() as c:  # as the backfill writes an amount
        c.execute(amounts.SET_AMOUNT, (700, None, "t", "x4"))
        c.execute(amounts.SET_AMOUNT, (1, None, "t", "x2"))  # x2 has one: kept
    assert numbers(amount_cents=700) == [4] and numbers(amount_cents=1) == []
    assert _todo(service_store, "org") == []


# --- cash movements: the money moved is their amount ----------------------------------


def _finish(shop: Shop, schema: dict[str, Any]) -> dict[str, Any]:
    tx = str(uuid.uuid4())
    shop.put(tx, 1, {"state": "ACTIVE"})
    return shop.put(tx, 2, {"state": "FINISHED", "schema": schema})


def _raw(process_type: str, data: str) -> dict[str, Any]:
    encoded = base64.b64encode(data.encode()).decode()
    return {"raw": {"process_type": process_type, "process_data": encoded}}


def _deposit(amount: str) -> dict[str, Any]:
    """A fiskaly-style cash deposit: no sale (gross 0.00), the money in its payment."""
    receipt = {
        "receipt_type": "TRANSFER",
        "amounts_per_vat_rate": [{"vat_rate": "NULL", "amount": "0.00"}],
        "amounts_per_payment_type": [{"payment_type": "CASH", "amount": amount}],
    }
    return {"standard_v1": {"receipt": receipt}}


def test_cash_movements_are_found_by_the_money_moved(shop: Shop) -> None:
    deposit = _finish(shop, _deposit("50.00"))
    transit = _finish(
        shop, _raw("Kassenbeleg-V1", "AVTransfer^0.00_0.00_0.00_0.00_0.00^-50.00:Bar")
    )
    cash_book = _finish(shop, _raw("SonstigerVorgang", "Einzahlung^50.00:Bar^Wechselgeld"))
    payout = _finish(shop, _raw("SonstigerVorgang", "Auszahlung^-12.30:Bar"))
    zero = _finish(shop, _raw("Kassenbeleg-V1", "Beleg^0.00_0.00_0.00_0.00_0.00^"))
    foreign = _finish(
        shop, _raw("Kassenbeleg-V1", "AVTransfer^0.00_0.00_0.00_0.00_0.00^5.00:Bar:CHF")
    )
    free = _finish(shop, _raw("SonstigerVorgang", "Kassenlade geöffnet"))
    receipt = sell(shop.api, shop.h, shop.tss, shop.cid, "50.00")
    cents = {t["number"]: shop.row(t["_id"]).amount_cents for t in (deposit, transit, zero)}
    assert cents == {deposit["number"]: 5000, transit["number"]: -5000, zero["number"]: 0}
    assert shop.row(cash_book["_id"]).amount_cents == 5000
    assert shop.row(payout["_id"]).amount_cents == -1230
    assert shop.row(foreign["_id"]).amount_cents is None
    assert shop.row(free["_id"]).amount_cents is None
    numbers, html = shop.search(amount="+50,00")
    assert numbers == [receipt["number"], cash_book["number"], deposit["number"]]
    assert shop.search(amount="-50,00")[0] == [transit["number"]]
    assert shop.search(amount="-12,30")[0] == [payout["number"]]
    assert shop.search(amount="0,00")[0] == [zero["number"]]
    # the hit list shows the money moved, not the zero gross total
    assert html.count(">50.00<") == 3 and ">0.00<" not in html, html


def test_cash_movements_indexed_with_zero_before_0008_are_found_after_it(shop: Shop) -> None:
    from opentse.storage import migrations

    deposit = _finish(shop, _deposit("50.00"))
    zero = _finish(shop, _raw("Kassenbeleg-V1", "Beleg^0.00_0.00_0.00_0.00_0.00^"))
    receipt = sell(shop.api, shop.h, shop.tss, shop.cid, "7.00")
    shop.ctx.svc.flush()
    # what 0007's rule wrote, before the migration of this fix ran
    with sqlite3.connect(shop.ctx.svc._path) as conn:
        conn.execute("UPDATE svc_transactions SET amount_cents=0 WHERE tx_id=?", (deposit["_id"],))
        conn.execute("DELETE FROM schema_migrations WHERE version=8")
    assert shop.search(amount="50,00")[0] == []
    conn = sqlite3.connect(shop.ctx.svc._path, isolation_level=None)
    try:
        assert migrations.apply(conn, "sqlite") == [8]
    finally:
        conn.close()
    assert shop.row(deposit["_id"]).amount_cents is None
    assert shop.row(zero["_id"]).amount_cents is None  # read again, gets its 0 back
    assert shop.row(receipt["_id"]).amount_cents == 700  # untouched
    assert shop.search(amount="50,00")[0] == [deposit["number"]]
    assert shop.row(deposit["_id"]).amount_cents == 5000
    assert shop.row(zero["_id"]).amount_cents == 0


def test_rows_rebuilt_after_a_lost_index_have_the_money_moved(shop: Shop) -> None:
    deposit = _finish(shop, _deposit("50.00"))
    cash_book = _finish(shop, _raw("SonstigerVorgang", "Geldtransit^-80.00:Bar"))
    _lose_index(shop)
    assert rebuild_index(shop.ctx) == 2
    assert shop.row(deposit["_id"]).amount_cents == 5000
    assert shop.row(cash_book["_id"]).amount_cents == -8000


def test_an_amount_without_a_sign_finds_both_signs(shop: Shop) -> None:
    """A shop owner remembers "21,42", not that the cancellation of that receipt or a
    payout of 12,30 was signed negative: searching "21,42" found the sale only."""
    sale = sell(shop.api, shop.h, shop.tss, shop.cid, "21.42")
    storno = _finish(
        shop, _raw("Kassenbeleg-V1", "AVBelegstorno^-21.42_0.00_0.00_0.00_0.00^-21.42:Bar")
    )
    payout = _finish(shop, _raw("SonstigerVorgang", "Auszahlung^-12.30:Bar"))
    other = sell(shop.api, shop.h, shop.tss, shop.cid, "12.31")
    numbers, html = shop.search(amount="21,42")
    assert numbers == [storno["number"], sale["number"]] and ">2 results<" in html
    assert shop.search(amount="-21,42")[0] == [storno["number"]]
    assert shop.search(amount="+21,42")[0] == [sale["number"]]
    assert shop.search(amount="12,30 €")[0] == [payout["number"]]
    assert shop.search(amount="12,31")[0] == [other["number"]]
    assert shop.search(amount="21,42", number=str(storno["number"]))[0] == [storno["number"]]
    assert shop.search(amount="+21,42", number=str(storno["number"]))[0] == []
    # paged across both signs: the newest first, every match once
    more = [sell(shop.api, shop.h, shop.tss, shop.cid, "21.42")["number"] for _ in range(3)]
    both = sorted([sale["number"], storno["number"], *more], reverse=True)
    assert shop.search(amount="21,42")[0] == both
    found = transactions.search(
        shop.ctx,
        shop.org,
        TxQuery(amount=search_fields.parse_amount("21,42"), either_sign=True),
        offset=2,
    )
    assert [h.row.number for h in found.hits] == both[2:] and found.total == 5


def test_cash_book_entries_indexed_without_an_amount_are_found_after_0009(shop: Shop) -> None:
    """opentse pos cash over the API before 0008: a SonstigerVorgang row without an
    amount, which the Kassenbeleg-V1 backfill never reads."""
    from opentse.storage import migrations

    cash_book = _finish(shop, _raw("SonstigerVorgang", "Einzahlung^50.00:Bar^Wechselgeld"))
    free = _finish(shop, _raw("SonstigerVorgang", "Kassenlade geöffnet"))
    shop.ctx.svc.flush()
    with sqlite3.connect(shop.ctx.svc._path) as conn:  # as the index was before 0008
        conn.execute("UPDATE svc_transactions SET amount_cents=NULL")
        conn.execute("DROP TABLE svc_amount_backfill")
        conn.execute("DELETE FROM schema_migrations WHERE version=9")
    assert shop.row(cash_book["_id"]).amount_cents is None
    conn = sqlite3.connect(shop.ctx.svc._path, isolation_level=None)
    try:
        assert migrations.apply(conn, "sqlite") == [9]
        listed = conn.execute("SELECT tx_id FROM svc_amount_backfill ORDER BY tx_id").fetchall()
    finally:
        conn.close()
    assert sorted(t for (t,) in listed) == sorted([cash_book["_id"], free["_id"]])
    assert shop.search(amount="50,00")[0] == [cash_book["number"]]
    assert shop.row(cash_book["_id"]).amount_cents == 5000
    assert shop.row(free["_id"]).amount_cents is None  # no amount in it, not read again
    with sqlite3.connect(shop.ctx.svc._path) as conn:
        assert conn.execute("SELECT count(*) FROM svc_amount_backfill").fetchone() == (0,)


@pytest.fixture
def pg_shop(tmp_path: Path, pg_url: str) -> Iterator[Shop]:
    from opentse.installation import Installation

    clock = FrozenClock(START)
    data = tmp_path / "data"
    inst = Installation.open(data, database_url=pg_url, clock=clock)
    app = create_app(inst, ServerConfig(data_dir=data), clock=clock)
    try:
        with serving_in_thread(app) as base:
            s = Shop(app, base, clock)
            try:
                yield s
            finally:
                s.close()
    finally:
        inst.close()


@pytest.mark.postgres
def test_migrations_0008_and_0009_on_postgresql(pg_shop: Shop, pg_url: str) -> None:
    import psycopg

    from opentse.storage import migrations

    shop = pg_shop
    deposit = _finish(shop, _deposit("50.00"))
    cash_book = _finish(shop, _raw("SonstigerVorgang", "Einzahlung^50.00:Bar"))
    shop.ctx.svc.flush()
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the index 0007 wrote
        conn.execute("UPDATE svc_transactions SET amount_cents=0 WHERE tx_id=%s", (deposit["_id"],))
        conn.execute(
            "UPDATE svc_transactions SET amount_cents=NULL WHERE tx_id=%s", (cash_book["_id"],)
        )
        conn.execute("DROP TABLE svc_amount_backfill")
        conn.execute("DELETE FROM schema_migrations WHERE version IN (8, 9)")
        assert migrations.apply(conn, "postgresql") == [8, 9]
    assert shop.row(deposit["_id"]).amount_cents is None
    assert shop.search(amount="50,00")[0] == [cash_book["number"], deposit["number"]]
    assert shop.row(deposit["_id"]).amount_cents == 5000
    assert shop.row(cash_book["_id"]).amount_cents == 5000


def _listed_for_backfill(shop: Shop, tx_id: str) -> bool:
    with sqlite3.connect(shop.ctx.svc._path) as conn:
        found = conn.execute("SELECT 1 FROM svc_amount_backfill WHERE tx_id=?", (tx_id,))
        return found.fetchone() is not None


def _as_before_0009(shop: Shop, tx_id: str) -> None:
    """The entry as migration 0009 left it: no amount, listed for the backfill."""
    shop.ctx.svc.flush()
    with sqlite3.connect(shop.ctx.svc._path) as conn:
        conn.execute("UPDATE svc_transactions SET amount_cents=NULL WHERE tx_id=?", (tx_id,))
        conn.execute(
            "INSERT INTO svc_amount_backfill(tss_id, tx_id) VALUES (?,?)", (shop.tss, tx_id)
        )


def test_cash_book_entry_whose_log_cannot_be_read_now_keeps_its_backfill_key(
    shop: Shop,
) -> None:
    """A cash-book entry whose Finish log the store could not read now (the logs
    table unreachable) stays listed and gets its amount once the log reads again.
    One whose stored log does not decode is marked (migration 0012: not read at
    every search) and gets its amount after "read them again" once restored from a
    backup; only an entry whose log has no amount leaves the list unmarked. The key
    was deleted on any failure, and the entry was never found by its amount."""
    from opentse.dashboard import amounts

    cash_book = _finish(shop, _raw("SonstigerVorgang", "Einzahlung^50.00:Bar^Wechselgeld"))
    free = _finish(shop, _raw("SonstigerVorgang", "Kassenlade geöffnet"))
    for entry in (cash_book, free):
        _as_before_0009(shop, entry["_id"])
    store = shop.ctx.store._path
    with sqlite3.connect(store) as conn:  # the log cannot be read now
        conn.execute("ALTER TABLE logs RENAME TO logs_away")
    try:
        assert shop.search(amount="50,00")[0] == []
    finally:
        with sqlite3.connect(store) as conn:
            conn.execute("ALTER TABLE logs_away RENAME TO logs")
    assert _listed_for_backfill(shop, cash_book["_id"])
    assert amounts.unread_counts(shop.ctx, shop.org) == {}
    with sqlite3.connect(store) as conn:  # a damaged row: read, but not decodable
        (message,) = conn.execute(
            "SELECT message FROM logs WHERE ref = ?", (f"tx:{cash_book['_id']}:2",)
        ).fetchone()
        conn.execute(
            "UPDATE logs SET message=? WHERE message=?", (b"\x30\x03\x02\x01\x00", message)
        )
    assert shop.search(amount="50,00")[0] == []
    assert not _listed_for_backfill(shop, cash_book["_id"])
    assert amounts.unread_counts(shop.ctx, shop.org) == {amounts.UNREADABLE: 1}
    assert shop.row(cash_book["_id"]).amount_cents is None
    with sqlite3.connect(store) as conn:  # restored from the backup
        conn.execute(
            "UPDATE logs SET message=? WHERE message=?", (message, b"\x30\x03\x02\x01\x00")
        )
    assert amounts.read_again(shop.ctx, shop.org) == 1
    assert _listed_for_backfill(shop, cash_book["_id"])
    assert shop.search(amount="50,00")[0] == [cash_book["number"]]
    assert shop.row(cash_book["_id"]).amount_cents == 5000
    assert not _listed_for_backfill(shop, cash_book["_id"])
    assert not _listed_for_backfill(shop, free["_id"])  # read, no amount: dropped
    assert amounts.unread_counts(shop.ctx, shop.org) == {}
