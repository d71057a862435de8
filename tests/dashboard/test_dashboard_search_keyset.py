"""The search's "older" and "newer" links name the last (first) hit of their page,
and the page is read from there along the index (keyset), not by stepping over
every hit before it (OFFSET): a link deep into a year reads about a page of rows,
and a bookmarked link shows the same hits however many receipts came since (a
``?page=N`` link moved on with every new receipt). Checked against a reference
order on both databases, and through the served dashboard on a year of receipts."""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from dashboard_support import api_login, dashboard_login, setup_tss
from scale_support import YEAR_START, index_year, write_rows

from opentse.dashboard import search_fields, transactions
from opentse.dashboard.transactions import SEARCH_LIMIT, Cursor, TxQuery
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.server.service_store import ServiceStore, TxRow
from opentse.testing.serving import serving_in_thread


@dataclass
class _Index:
    svc: ServiceStore


def _key(r: TxRow) -> tuple[int, int, str, str]:
    return (r.time_start, r.number, r.tss_id, r.tx_id)


def test_pages_by_cursor_on_both_databases(service_store: ServiceStore) -> None:
    """Walking every page by its "older" cursor, and back by "newer", gives each
    match once in the one order, with the right offsets; ties in a second broken by
    number, TSE and id. With and without an amount, of one sign and of both."""
    rows = []
    for i in range(260):
        amount = (1230, -1230, 1230, 500)[i % 4]
        tss = ("tss-a", "tss-b")[i % 2]
        time_start = 1_700_000_000 + i // 5  # five in a second, numbers not in order
        rows.append(
            TxRow(tss, f"tx-{i:03d}", "org", i * 7 % 131 + 1, f"c-{tss}", 2, "FINISHED",
                  "Kassenbeleg-V1", time_start, None, {}, amount)
        )  # fmt: skip
    for row in rows:
        service_store.upsert_tx(row)
    index = _Index(service_store)
    cases: list[tuple[TxQuery, list[int | None]]] = [
        (TxQuery(), [None]),
        (TxQuery(tss_id="tss-a"), [None]),
        (TxQuery(amount=None), [1230]),
        (TxQuery(), [1230, -1230]),
    ]
    for q, amounts in cases:
        expected = sorted(
            (r for r in rows if (q.tss_id in (None, r.tss_id)) and (
                amounts == [None] or r.amount_cents in amounts)),
            key=_key, reverse=True,
        )  # fmt: skip
        seen: list[TxRow] = []
        after: Cursor | None = None
        pages = 0
        while True:
            page, total, offset = transactions.indexed_page(index, "org", q, amounts, None, 0,
                                                            after=after)  # fmt: skip
            assert total == len(expected)
            if not page:
                break
            assert offset == len(seen), (q, amounts)
            seen += page
            after = Cursor.of(page[-1])
            pages += 1
        assert [_key(r) for r in seen] == [_key(r) for r in expected], (q, amounts)
        assert pages == -(-len(expected) // SEARCH_LIMIT)
        # and back from the last hit by "newer" cursors
        back: list[TxRow] = []
        before: Cursor | None = Cursor.of(expected[-1])
        while before is not None:
            page, _, offset = transactions.indexed_page(index, "org", q, amounts, None, 0,
                                                        before=before)  # fmt: skip
            assert offset == max(len(expected) - 1 - len(back) - SEARCH_LIMIT, 0)
            back = page + back
            before = Cursor.of(page[0]) if page and offset > 0 else None
        assert [_key(r) for r in back] == [_key(r) for r in expected[:-1]]


def test_a_cursor_from_an_edited_url_is_no_cursor() -> None:
    assert Cursor.parse("1700000000.12.tss-a.tx-1") == Cursor(1700000000, 12, "tss-a", "tx-1")
    assert Cursor.parse("1.2.a.b.c") == Cursor(1, 2, "a", "b.c")  # an id may hold dots
    for bad in ("", "1.2.a", "x.2.a.b", "1.-2.a.b", "1..a.b", "1.2..b", f"{2**63}.1.a.b",
                "1.².a.b", "1.2.a." + "b" * 400,
                # control characters: PostgreSQL refuses a NUL in text (a 500 there)
                "1.5.\x00.x", "1.5.a.\x00", "1.5.a.b\n"):  # fmt: skip
        assert Cursor.parse(bad) is None, bad


@dataclass
class Shop:
    ctx: Any
    org: str
    web: httpx.Client
    tses: list[tuple[str, str]]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    from opentse.installation import Installation

    data = tmp_path_factory.mktemp("keyset") / "data"
    inst = Installation.open(data)
    app = create_app(inst, ServerConfig(data_dir=data))
    ctx = app.state.ctx
    try:
        with (
            serving_in_thread(app) as base,
            httpx.Client(base_url=base, timeout=60) as api,
            httpx.Client(base_url=base, timeout=60) as web,
        ):
            key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
            h = api_login(api, key)
            tses = [setup_tss(api, h, "KASSE-01"), setup_tss(api, h, "KASSE-02")]
            row = ctx.svc.get_tss(tses[0][0])
            assert row is not None
            index_year(ctx, row.organization_id, tses, 20_000)
            assert dashboard_login(web, key).status_code == 303
            yield Shop(ctx, row.organization_id, web, tses)
    finally:
        inst.close()


def _get(shop: Shop, url: str) -> tuple[list[int], str]:
    page = shop.web.get(url, headers={"accept-language": "en"})
    assert page.status_code == 200, page.text
    return [int(n) for n in re.findall(r'/tx/(\d+)">', page.text)], page.text


def _link(html: str, rel: str) -> str:
    found = re.search(rf'<a href="([^"]*)" rel="{rel}">', html)
    assert found, f"no {rel} link"
    return htmllib.unescape(found.group(1))


def _label(html: str) -> str:
    found = re.search(r"Results ([0-9\u202f,]+)–([0-9\u202f,]+) of ([0-9\u202f,]+)", html)
    assert found
    return "-".join(re.sub(r"[^0-9]", "", g) for g in found.groups())


def test_older_links_are_cursors_and_a_bookmark_keeps_its_hits(shop: Shop) -> None:
    """Three "older" clicks from the first page of a year: each link names a cursor
    (no page number), the page says which hits it shows, "newer" goes back one page;
    after 60 new receipts the bookmarked link shows the same hits, counted anew."""
    url = "/dashboard/tx?amount=2,50"
    first, html = _get(shop, url)
    for _ in range(3):
        url = _link(html, "next")
        query = parse_qs(urlsplit(url).query)
        assert "after" in query and "page" not in query, url
        previous = first
        first, html = _get(shop, url)
    assert first and first != previous
    total = _label(html).split("-")[2]
    assert _label(html) == f"151-200-{total}"
    newer, _ = _get(shop, _link(html, "prev"))
    assert newer == previous
    bookmark, hits = url, first
    t = YEAR_START + 400 * 86400  # 60 receipts of 2,50 newer than all
    write_rows(shop.ctx, [
        TxRow(shop.tses[0][0], f"new-{i:04d}", shop.org, 20_000_000 + i, shop.tses[0][1], 2,
              "FINISHED", "Kassenbeleg-V1", t + i, t + i + 5, {}, 250)
        for i in range(60)
    ])  # fmt: skip
    again, html = _get(shop, bookmark)
    assert again == hits
    assert _label(html) == f"211-260-{int(total) + 60}"


def test_a_deep_page_by_cursor_reads_one_page(shop: Shop) -> None:
    """The statement of a page reached by a cursor has no OFFSET, reads along an
    index (no scan of the shop's rows) and hands over one page; counted, not timed."""
    q = TxQuery(amount=search_fields.parse_amount("2,50"), either_sign=True)
    found = transactions.search(shop.ctx, shop.org, q, 3000)
    assert len(found.hits) == SEARCH_LIMIT
    after = Cursor.parse(found.after())
    conn = shop.ctx.svc._conn()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        deep = transactions.search(shop.ctx, shop.org, q, after=after)
    finally:
        conn.set_trace_callback(None)
    assert deep.offset == 3000 + SEARCH_LIMIT
    reads = [s for s in statements if "UNION ALL" in s]  # the page (the backfill: none)
    assert len(reads) == 1 and "OFFSET" not in reads[0], reads
    assert len(conn.execute(reads[0]).fetchall()) == SEARCH_LIMIT
    for sql in statements:
        if "FROM svc_transactions WHERE" not in sql:
            continue
        plan = " | ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "SCAN svc_transactions" not in plan, (sql, plan)


def test_the_page_links_are_above_the_hits_too(shop: Shop) -> None:
    """50 hits are a long page on a phone (4,000 px): "Older" and "Newer" were only
    below them. Now above and below, the same links."""
    _, html = _get(shop, "/dashboard/tx?amount=2,50")
    _, html = _get(shop, _link(html, "next"))
    table = html.index('<table class="txs"')
    assert html.index('rel="next"') < table and html.index('rel="prev"') < table
    assert html.count('rel="next"') == 2 and html.count('rel="prev"') == 2
    above, below = re.findall(r'<nav class="pager"[^>]*>(.*?)</nav>', html)
    assert above == below
