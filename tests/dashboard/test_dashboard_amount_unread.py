"""Rows whose amount the backfill cannot read from their Finish log (migration 0012):
they are marked and leave the backfill, so the rows behind them get their amounts,
and the search page says how many an amount search cannot find, and why.

Before, such a row kept its place at the head of the batch (newest first, at most
SEARCH_SCAN a search; cash-book entries in no order at all) and was read again at
every amount search: SEARCH_SCAN of them kept every older receipt unsearchable for
ever. Here the rows are real: receipts signed over the API whose stored log was
damaged, and index rows of receipts whose logs are gone (deleted after an export).
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_support import api_login, csrf_of, dashboard_login, sell, setup_tss

from opentse.dashboard import amounts
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.server.service_store import ServiceStore, TxRow
from opentse.testing.clock import FrozenClock
from opentse.testing.serving import serving_in_thread

START = 1_700_000_000
BROKEN = b"\x30\x03\x02\x01\x00"  # a DER SEQUENCE, but no LogMessage


class Shop:
    def __init__(self, app: Any, base: str) -> None:
        self.ctx = app.state.ctx
        self.api = httpx.Client(base_url=base, timeout=60)
        self.web = httpx.Client(base_url=base, timeout=60)
        key = create_api_key(self.ctx.svc, org_name="shop", env="TEST", now=self.ctx.now())
        self.h = api_login(self.api, key)
        self.tss, self.cid = setup_tss(self.api, self.h, "KASSE-01")
        row = self.ctx.svc.get_tss(self.tss)
        assert row is not None
        self.org: str = row.organization_id
        assert dashboard_login(self.web, key).status_code == 303

    def search(self, **params: str) -> tuple[list[int], str]:
        page = self.web.get("/dashboard/tx", params=params, headers={"accept-language": "en"})
        assert page.status_code == 200, page.text
        return [int(n) for n in re.findall(r'/tx/(\d+)">', page.text)], page.text

    def amount(self, tx_id: str) -> tuple[int | None, str | None]:
        self.ctx.svc.flush()
        with sqlite3.connect(self.ctx.svc._path) as conn:
            found = conn.execute(
                "SELECT amount_cents, amount_unread FROM svc_transactions WHERE tx_id = ?",
                (tx_id,),
            ).fetchone()
        assert found is not None
        return found[0], found[1]


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    from opentse.installation import Installation

    clock = FrozenClock(START)
    data = tmp_path / "data"
    inst = Installation.open(data, clock=clock)
    app = create_app(inst, ServerConfig(data_dir=data), clock=clock)
    try:
        with serving_in_thread(app) as base:
            s = Shop(app, base)
            try:
                yield s
            finally:
                s.api.close()
                s.web.close()
    finally:
        inst.close()


def _before_0007(shop: Shop) -> None:
    """Every index row without its amount, as migration 0007 found them."""
    shop.ctx.svc.flush()
    with sqlite3.connect(shop.ctx.svc._path) as conn:
        conn.execute("UPDATE svc_transactions SET amount_cents = NULL")


def _damage(shop: Shop, tx_id: str) -> bytes:
    """The receipt's Finish log, stored, but no longer decodable; returns it."""
    with sqlite3.connect(shop.ctx.store._path) as conn:
        (message,) = conn.execute(
            "SELECT message FROM logs WHERE ref = ?", (f"tx:{tx_id}:2",)
        ).fetchone()
        conn.execute("UPDATE logs SET message = ? WHERE message = ?", (BROKEN, message))
    return bytes(message)


def _gone_receipts(shop: Shop, count: int, since: int) -> None:
    """``count`` finished receipts newer than ``since`` in the index, without an
    amount, whose logs are not in the store (deleted after an export)."""
    for i in range(count):
        t = since + 60 + i
        shop.ctx.svc.upsert_tx(
            TxRow(
                shop.tss, str(uuid.uuid4()), shop.org, 1_000_000 + i, shop.cid, 2, "FINISHED",
                "Kassenbeleg-V1", t, t + 5, {}, None,
            )
        )  # fmt: skip
    shop.ctx.svc.flush()


def test_unreadable_receipts_leave_the_backfill_and_are_counted(shop: Shop) -> None:
    """A full batch of receipts whose logs are gone and two whose logs do not decode,
    all newer than the receipt searched for: it is found by the second search (the
    first marks a batch), not never; the page counts the others by reason."""
    old = sell(shop.api, shop.h, shop.tss, shop.cid, "21.42")
    damaged = [sell(shop.api, shop.h, shop.tss, shop.cid, "7.00") for _ in range(2)]
    _before_0007(shop)
    for receipt in damaged:
        _damage(shop, receipt["_id"])
    _gone_receipts(shop, amounts.SEARCH_SCAN, START)
    assert shop.search(amount="21,42")[0] == []  # the newest batch: read and marked
    numbers, html = shop.search(amount="21,42")
    assert numbers == [old["number"]]
    assert shop.amount(old["_id"]) == (2142, None)
    assert shop.amount(damaged[0]["_id"]) == (None, amounts.UNREADABLE)
    counts = amounts.unread_counts(shop.ctx, shop.org)
    assert counts == {amounts.GONE: amounts.SEARCH_SCAN, amounts.UNREADABLE: 2}
    note = re.search(r"([0-9.,\u202f ]+) finished transactions cannot be found by amount", html)
    assert note and re.sub(r"[^0-9]", "", note.group(1)) == str(amounts.SEARCH_SCAN + 2)
    assert "log cannot be decoded: 2" in html and "log deleted after an export" in html
    # no search reads a marked log again: nothing is left to backfill
    assert amounts.backfill_amounts(shop.ctx, shop.org, None) == 0
    listed, _ = shop.search(unread="1")  # the marked ones, newest first
    assert listed == list(range(1_000_000 + amounts.SEARCH_SCAN - 1, 1_000_000 + 4949, -1))
    last, html = shop.search(unread="1", page="101")
    assert last == sorted((r["number"] for r in damaged), reverse=True)
    assert html.count("could not be read") >= 2  # their amount cell says so


def test_read_again_after_a_restore(shop: Shop) -> None:
    """A damaged log restored from a backup: "Read them again" clears the marks and
    the next amount search finds the receipt and the cash-book entry."""
    receipt = sell(shop.api, shop.h, shop.tss, shop.cid, "21.42")
    _before_0007(shop)
    message = _damage(shop, receipt["_id"])
    assert shop.search(amount="21,42")[0] == []
    assert shop.amount(receipt["_id"]) == (None, amounts.UNREADABLE)
    with sqlite3.connect(shop.ctx.store._path) as conn:  # restored from the backup
        conn.execute("UPDATE logs SET message = ? WHERE message = ?", (message, BROKEN))
    assert shop.search(amount="21,42")[0] == []  # marked: not read at every search
    _, html = shop.search(amount="21,42")
    r = shop.web.post(
        "/dashboard/tx/read-again", data={"csrf": csrf_of(html), "tss": "", "amount": "21,42"}
    )
    assert r.status_code == 303  # back to the search, which reads them at once
    assert r.headers["location"] == "/dashboard/tx?amount=21%2C42"
    again = shop.web.get(r.headers["location"], headers={"accept-language": "en"})
    assert re.findall(r'/tx/(\d+)">', again.text) == [str(receipt["number"])]
    assert shop.amount(receipt["_id"]) == (2142, None)
    assert amounts.unread_counts(shop.ctx, shop.org) == {}
    bad = shop.web.post("/dashboard/tx/read-again", data={"csrf": "forged"})
    assert bad.status_code == 403


def test_cash_book_entries_that_cannot_be_read_do_not_starve_the_others(
    shop: Shop,
) -> None:
    """More cash-book entries with damaged Finish logs than a batch, listed before
    the readable one (key order): every search read the same SEARCH_SCAN of them
    again (no order, the key kept), and the readable one was never found."""
    good = _cash_book(shop, "Einzahlung^50.00:Bar", "f" + str(uuid.uuid4())[1:])
    keys = [f"0{i:07d}-0000-4000-8000-000000000000" for i in range(amounts.SEARCH_SCAN)]
    shop.ctx.svc.flush()
    with sqlite3.connect(shop.ctx.svc._path) as conn:
        conn.execute("UPDATE svc_transactions SET amount_cents = NULL")
        conn.executemany(
            "INSERT INTO svc_transactions (tss_id, tx_id, organization_id, number, client_id,"
            " latest_revision, state, process_type, time_start) VALUES"
            " (?, ?, ?, ?, ?, 2, 'FINISHED', 'SonstigerVorgang', ?)",
            [(shop.tss, k, shop.org, 2_000_000 + i, shop.cid, START) for i, k in enumerate(keys)],
        )
        conn.executemany(  # listed (and stored) before the readable one
            "INSERT INTO svc_amount_backfill VALUES (?, ?)", [(shop.tss, k) for k in keys]
        )
        conn.execute("INSERT INTO svc_amount_backfill VALUES (?, ?)", (shop.tss, good))
    with sqlite3.connect(shop.ctx.store._path) as conn:  # their logs: stored, damaged
        (last,) = conn.execute(
            "SELECT last_signature_counter FROM tse_counters WHERE tse_id = ?", (shop.tss,)
        ).fetchone()
        conn.executemany(
            "INSERT INTO logs (tse_id, signature_counter, log_type, operation, log_time,"
            " filename, message, transaction_number, client_id, ref) VALUES"
            " (?, ?, 'Tra', 'finishTransaction', ?, ?, ?, ?, ?, ?)",
            [
                (shop.tss, last + 1 + i, START, f"broken-{i}.log", BROKEN, 2_000_000 + i,
                 shop.cid, f"tx:{k}:2")
                for i, k in enumerate(keys)
            ],
        )  # fmt: skip
    assert shop.search(amount="50,00")[0] == []  # the first batch: read and marked
    assert len(shop.search(amount="50,00")[0]) == 1
    assert shop.amount(good) == (5000, None)
    assert amounts.unread_counts(shop.ctx, shop.org) == {amounts.UNREADABLE: amounts.SEARCH_SCAN}
    with sqlite3.connect(shop.ctx.svc._path) as conn:
        assert conn.execute("SELECT count(*) FROM svc_amount_backfill").fetchone() == (0,)


def _cash_book(shop: Shop, text: str, tx: str) -> str:
    import base64

    for revision, state in ((1, "ACTIVE"), (2, "FINISHED")):
        body: dict[str, Any] = {"state": state, "client_id": shop.cid}
        if state == "FINISHED":
            data = base64.b64encode(text.encode()).decode()
            body["schema"] = {"raw": {"process_type": "SonstigerVorgang", "process_data": data}}
        r = shop.api.put(
            f"/api/v2/tss/{shop.tss}/tx/{tx}",
            params={"tx_revision": revision},
            json=body,
            headers=shop.h,
        )
        assert r.status_code == 200, r.text
    return tx


@dataclass
class _Index:
    """What the marks' count and 'read them again' read of the context: its index."""

    svc: ServiceStore


def test_marks_are_counted_listed_and_cleared_on_both_databases(
    service_store: ServiceStore,
) -> None:
    """Migration 0012 on SQLite and PostgreSQL: the count by reason, the list of the
    marked rows (?unread=1) and 'read them again', which puts a cash-book entry back
    on the 0009 list and leaves other organizations' marks alone."""
    from opentse.dashboard import transactions
    from opentse.ops.store import OpsDB

    kinds = [("Kassenbeleg-V1", amounts.UNREADABLE), ("Kassenbeleg-V1", amounts.GONE),
             ("SonstigerVorgang", amounts.UNREADABLE), ("Kassenbeleg-V1", None)]  # fmt: skip
    for i, (process_type, _) in enumerate(kinds):
        for org in ("org", "org-2"):
            service_store.upsert_tx(
                TxRow("tss-a" if org == "org" else "tss-b", f"tx-{i}", org, i + 1, "c", 2,
                      "FINISHED", process_type, 1_700_000_000 + i, None, {}, None)
            )  # fmt: skip
    service_store.flush()
    db = OpsDB(service_store)
    with db.tx() as c:
        for i, (_, why) in enumerate(kinds):
            c.execute("UPDATE svc_transactions SET amount_unread = ? WHERE tx_id = ?",
                      (why, f"tx-{i}"))  # fmt: skip
    index = _Index(service_store)
    assert amounts.unread_counts(index, "org") == {amounts.UNREADABLE: 2, amounts.GONE: 1}
    assert amounts.unread_counts(index, "org", "tss-a") == amounts.unread_counts(index, "org")
    rows, total, _ = transactions.indexed_page(
        index, "org", transactions.TxQuery(unread=True), [None], None, 0
    )
    assert [r.tx_id for r in rows] == ["tx-2", "tx-1", "tx-0"] and total == 3
    assert amounts.read_again(index, "org") == 3
    assert amounts.unread_counts(index, "org") == {}
    assert amounts.unread_counts(index, "org-2") == {amounts.UNREADABLE: 2, amounts.GONE: 1}
    listed = db.rows("SELECT tss_id, tx_id FROM svc_amount_backfill")
    assert listed == [("tss-a", "tx-2")]  # the cash-book entry, back on the list
    assert amounts.read_again(index, "org") == 0
