"""The amount search of a shop's year (two TSEs, 100,000 receipts): a deep page of an
amount typed without a sign costs about one page of rows, and every page is cut from
one order (newest first; in one second the higher number, then by TSE and id).

The pages merged the hits of both signs in Python, loading every hit up to the page
asked for from each sign (page 300 of a common price: 0.7 s). Checked against a
plain reference (every matching row, sorted) on random data and on the year."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from dashboard_support import api_login, setup_tss
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scale_support import index_year, write_rows

from opentse.dashboard import transactions
from opentse.dashboard.transactions import CASH_BOOK_TODO, TxQuery
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.server.service_store import Page, ServiceStore, TxRow
from opentse.testing.serving import serving_in_thread


@dataclass
class Shop:
    ctx: Any
    org: str
    tses: list[tuple[str, str]]  # (tss_id, client_id)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """Two TSEs with a register each (KASSE-01, KASSE-02), set up over the API."""
    from opentse.installation import Installation

    data = tmp_path_factory.mktemp("scale") / "data"
    inst = Installation.open(data)
    app = create_app(inst, ServerConfig(data_dir=data))
    ctx = app.state.ctx
    try:
        with serving_in_thread(app) as base, httpx.Client(base_url=base, timeout=30) as api:
            key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
            h = api_login(api, key)
            tses = [setup_tss(api, h, "KASSE-01"), setup_tss(api, h, "KASSE-02")]
            row = ctx.svc.get_tss(tses[0][0])
            assert row is not None
            yield Shop(ctx, row.organization_id, tses)
    finally:
        inst.close()


def _clear(shop: Shop) -> None:
    with shop.ctx.svc._tx(durable=False) as c:
        c.execute("DELETE FROM svc_transactions WHERE organization_id=?", (shop.org,))


def _rows_of_amount(shop: Shop, cents: int) -> list[TxRow]:
    with sqlite3.connect(shop.ctx.svc._path) as conn:
        found = conn.execute(
            f"SELECT {shop.ctx.svc._TX_COLS} FROM svc_transactions"
            " WHERE organization_id=? AND amount_cents IN (?,?)",
            (shop.org, cents, -cents),
        ).fetchall()
    return [shop.ctx.svc._txrow(r) for r in found]


def _reference(shop: Shop, q: TxQuery, cents: int, clients: list[str] | None) -> list[TxRow]:
    """Every hit of an amount typed without a sign, in the search's order."""
    hits = [
        r
        for r in _rows_of_amount(shop, cents)
        if (q.tss_id is None or r.tss_id == q.tss_id)
        and (clients is None or r.client_id in clients)
        and (not q.state or r.state == q.state)
        and (q.date_from is None or r.time_start >= q.date_from)
        and (q.date_to is None or r.time_start < q.date_to)
    ]
    return sorted(hits, key=lambda r: (r.time_start, r.number, r.tss_id, r.tx_id), reverse=True)


def _keys(rows: list[TxRow]) -> list[tuple[str, str]]:
    return [(r.tss_id, r.tx_id) for r in rows]


STATES = ("FINISHED", "CANCELLED", "ACTIVE")


@st.composite
def _rows(draw: st.DrawFn, tses: list[tuple[str, str]], org: str) -> list[TxRow]:
    """Random index rows: few seconds (many in the same one), numbers in any order
    of time, amounts of either sign of 12,30 and others."""
    count = draw(st.integers(0, 40))
    numbers = {t: draw(st.permutations(range(1, count + 1))) for t, _ in tses}
    rows = []
    for i in range(count):
        tss, cid = tses[draw(st.integers(0, 1))]
        amount = draw(st.sampled_from([1230, -1230, 1230, -1230, 999, -5, None]))
        rows.append(
            TxRow(
                tss,
                f"tx-{i:04d}",
                org,
                numbers[tss][i],
                draw(st.sampled_from([cid, "other-client"])),
                2,
                draw(st.sampled_from(STATES)),
                "Kassenbeleg-V1",
                1_700_000_000 + draw(st.integers(0, 6)),
                None,
                {},
                amount,
            )
        )
    return rows


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_either_sign_pages_match_a_plain_sort(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, data: st.DataObject
) -> None:
    monkeypatch.setattr(transactions, "SEARCH_LIMIT", 4)  # many pages of few rows
    _clear(shop)
    rows = data.draw(_rows(shop.tses, shop.org))
    write_rows(shop.ctx, rows)
    tss_id = data.draw(st.sampled_from([None, shop.tses[0][0], shop.tses[1][0]]))
    register = data.draw(st.sampled_from(["", "kasse-02", "KASSE-01", "nowhere"]))
    clients = None  # the registers' clients the search looks for
    if register:
        clients = [
            cid
            for k, (tid, cid) in enumerate(shop.tses)
            if tss_id in (None, tid) and register.upper() == f"KASSE-0{k + 1}"
        ]
    state = data.draw(st.sampled_from(["", *STATES]))
    start = data.draw(st.sampled_from([None, 1_700_000_002]))
    q = TxQuery(
        tss_id=tss_id,
        register=register,
        amount=Decimal("12.30"),
        state=state,
        date_from=start,
        either_sign=True,
    )
    expected = _reference(shop, q, 1230, clients)
    for offset in range(0, len(expected) + 5, 4):
        found = transactions.search(shop.ctx, shop.org, q, offset)
        assert found.total == len(expected)
        assert _keys([h.row for h in found.hits]) == _keys(expected[offset : offset + 4])
        assert all(h.amount == Decimal(h.row.amount_cents or 0).scaleb(-2) for h in found.hits)


def _old_deep_page(shop: Shop, cents: int, offset: int) -> list[TxRow]:
    """What a deep page did before: every hit up to it from each sign, merged here."""
    first = Page(limit=offset + 50, order_by="time_start", order="desc")
    plus, _ = shop.ctx.svc.list_txs(shop.org, first, amount_cents=cents)
    minus, _ = shop.ctx.svc.list_txs(shop.org, first, amount_cents=-cents)
    merged: list[TxRow] = sorted(plus + minus, key=lambda r: (r.time_start, r.number), reverse=True)
    return merged[offset : offset + 50]


def _index_reads(shop: Shop, run: Any) -> tuple[list[str], int]:
    """The statements on the transaction index that ``run`` sends (with their values,
    as SQLite ran them) and how many rows they hand to Python: each is run again on
    the same data to count them. Work done, counted, instead of seconds on a machine
    shared with other work (timings: bench/bench_dashboard_search.py)."""
    conn = shop.ctx.svc._conn()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        run()
    finally:
        conn.set_trace_callback(None)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    reads = [s for s in reads if "FROM svc_transactions WHERE" in s]
    return reads, sum(len(conn.execute(s).fetchall()) for s in reads)


def _plan(shop: Shop, sql: str) -> list[str]:
    conn = shop.ctx.svc._conn()
    return [str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql)]


def test_a_deep_page_of_a_year_costs_about_one_page(shop: Shop) -> None:
    """100,000 receipts, 2,50 the most sold price: the last of its ~330 pages."""
    _clear(shop)
    index_year(shop.ctx, shop.org, shop.tses, 100_000)
    q = TxQuery(amount=Decimal("2.50"), either_sign=True)
    expected = _reference(shop, q, 250, None)
    assert len(expected) > 10_000
    last = (len(expected) - 1) // 50 * 50
    for offset in (0, 50, 5000, last):
        found = transactions.search(shop.ctx, shop.org, q, offset)
        assert found.total == len(expected)
        assert _keys([h.row for h in found.hits]) == _keys(expected[offset : offset + 50])
    # the same hits as before, where the old merge had no tie to break (one TSE)
    mine = TxQuery(tss_id=shop.tses[0][0], amount=Decimal("2.50"), either_sign=True)
    one_tse = _reference(shop, mine, 250, None)
    assert _keys([h.row for h in transactions.search(shop.ctx, shop.org, mine, 3000).hits]) == (
        _keys(one_tse[3000:3050])
    )
    # the work: the last page sends the first page's statements and gets no more rows
    # (the counts, one page); the old merge got every hit up to the page
    first_reads, first_rows = _index_reads(shop, lambda: transactions.search(shop.ctx, shop.org, q))
    deep_reads, deep_rows = _index_reads(
        shop, lambda: transactions.search(shop.ctx, shop.org, q, last)
    )
    _, old_rows = _index_reads(shop, lambda: _old_deep_page(shop, 250, last))
    assert len(deep_reads) == len(first_reads), deep_reads  # the same statements
    # the last page has fewer hits than the first; each count hands over one row
    assert deep_rows <= first_rows <= 50 + len(first_reads), (deep_rows, first_rows)
    assert old_rows > last, old_rows  # the measure sees a merge in Python
    # each statement reads along an amount index: none walks the shop's whole index
    for sql in deep_reads:
        plan = " | ".join(_plan(shop, sql))
        assert "INDEX svc_transactions_amount" in plan, (sql, plan)
        assert "SCAN svc_transactions" not in plan, (sql, plan)
    page = deep_reads[-1]
    assert "UNION ALL" in page and "LIMIT 50 OFFSET" in page, page
    assert "MERGE (UNION ALL)" in _plan(shop, page)  # merged by the database


def test_the_cash_book_backfill_reads_its_list_not_the_index(shop: Shop) -> None:
    """Every amount search first lists the cash-book entries still without their
    amount (none, once done): it walked all the organization's index rows."""
    with sqlite3.connect(shop.ctx.svc._path) as conn:
        plan = " | ".join(
            str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + CASH_BOOK_TODO, ("o",))
        )
    assert "SCAN b" in plan and "svc_transactions_org" not in plan, plan


@dataclass
class _Index:
    """What either_sign_page reads of the server's context: its index."""

    svc: ServiceStore


def test_either_sign_page_on_both_databases(service_store: ServiceStore) -> None:
    """The merged statement on SQLite and PostgreSQL: same hits, same order, with a
    state, a register and a date as filters."""
    rows = []
    for i in range(30):
        amount = (1230, -1230, 1230, 500)[i % 4]
        state = "CANCELLED" if i % 7 == 0 else "FINISHED"
        tss = ("tss-a", "tss-b")[i % 2]
        time_start = 1_700_000_000 + i // 3  # three in a second
        rows.append(
            TxRow(tss, f"tx-{i:02d}", "org", i * 7 % 31 + 1, f"c-{tss}", 2, state,
                  "Kassenbeleg-V1", time_start, None, {}, amount)
        )  # fmt: skip
    rows.append(TxRow("tss-a", "other", "org-2", 999, "c", 2, "FINISHED", "", 1, None, {}, 1230))
    for row in rows:
        service_store.upsert_tx(row)
    index = _Index(service_store)
    c = Decimal("12.30")
    cases = [
        (TxQuery(amount=Decimal("12.30"), either_sign=True), None),
        (TxQuery(state="FINISHED", amount=Decimal("12.30"), either_sign=True), None),
        (
            TxQuery(tss_id="tss-b", date_from=1_700_000_003, date_to=1_700_000_008, amount=c),
            None,
        ),
        (TxQuery(amount=Decimal("12.30"), either_sign=True), ["c-tss-a"]),
        (TxQuery(amount=Decimal("12.30"), either_sign=True), []),
    ]
    for q, clients in cases:
        hits = sorted(
            (
                r
                for r in rows
                if r.organization_id == "org"
                and r.amount_cents in (1230, -1230)
                and (q.tss_id is None or r.tss_id == q.tss_id)
                and (clients is None or r.client_id in clients)
                and (not q.state or r.state == q.state)
                and (q.date_from is None or r.time_start >= q.date_from)
                and (q.date_to is None or r.time_start < q.date_to)
            ),
            key=lambda r: (r.time_start, r.number, r.tss_id, r.tx_id),
            reverse=True,
        )
        for offset in (0, 50, 5):
            found, total = transactions.either_sign_page(index, "org", q, 1230, clients, offset)
            assert total == len(hits)
            assert _keys(found) == _keys(hits[offset : offset + transactions.SEARCH_LIMIT])
            assert found == hits[offset : offset + transactions.SEARCH_LIMIT]
