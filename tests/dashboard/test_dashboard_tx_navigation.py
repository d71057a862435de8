"""A tax auditor steps through a TSE's transactions one by one: each transaction's
page links the TSE's transaction just before and after it. Before, the page had no
way on but the browser's back button to the search (50 hits a page) and a click on
the next hit, and no way at all to the transaction after the newest hit shown.
A transaction whose amount could not be read from its log says so on its page."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from dashboard_support import api_login, dashboard_login, sell, served_shop, setup_tss

from opentse.dashboard import amounts


def _links(html: str) -> dict[str, str]:
    return dict(
        (rel, href) for href, rel in re.findall(r'<a href="([^"]+)" rel="(prev|next)">', html)
    )


def test_a_transaction_links_its_neighbours_of_the_same_tse(tmp_path: Path) -> None:
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h, "KASSE-01")
        other, other_cid = setup_tss(web, h, "KASSE-02")
        first, second, third = (sell(web, h, tss, cid, a) for a in ("1.00", "2.00", "3.00"))
        elsewhere = sell(web, h, other, other_cid, "4.00")
        assert dashboard_login(web, key).status_code == 303

        def page(number: int) -> str:
            r = web.get(f"/dashboard/tss/{tss}/tx/{number}", headers={"accept-language": "en"})
            assert r.status_code == 200, r.text
            return r.text

        middle = page(second["number"])
        assert _links(middle) == {
            "prev": f"/dashboard/tss/{tss}/tx/{first['number']}",
            "next": f"/dashboard/tss/{tss}/tx/{third['number']}",
        }
        assert f"← Transaction {first['number']}" in middle
        assert f"Transaction {third['number']} →" in middle
        assert "next" not in _links(page(third["number"]))  # the newest: nothing after
        oldest = _links(page(first["number"]))
        assert "prev" not in oldest and oldest["next"].endswith(f"/tx/{second['number']}")
        # the other TSE's transaction (sold last) is not this TSE's next one
        theirs = web.get(f"/dashboard/tss/{other}/tx/{elsewhere['number']}").text
        assert _links(theirs) == {}  # its TSE has no other transaction


def test_a_transaction_whose_amount_could_not_be_read_says_so(tmp_path: Path) -> None:
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h, "KASSE-01")
        receipt = sell(web, h, tss, cid, "21.42")
        assert dashboard_login(web, key).status_code == 303
        assert web.get("/dashboard/tx").status_code == 200  # the index row is written
        data = tmp_path / "data"
        with sqlite3.connect(data / "opentse.db") as conn:  # the log: stored, damaged
            conn.execute(
                "UPDATE logs SET message = ? WHERE ref = ?",
                (b"\x30\x03\x02\x01\x00", f"tx:{receipt['_id']}:2"),
            )
            conn.execute(
                "UPDATE svc_transactions SET amount_cents = NULL, amount_unread = ?"
                " WHERE tx_id = ?",
                (amounts.UNREADABLE, receipt["_id"]),
            )
        r = web.get(f"/dashboard/tss/{tss}/tx/{receipt['number']}", params={"lang": "en"})
        assert r.status_code == 200
        assert "could not be read (log cannot be decoded)" in r.text


def test_open_transactions_are_one_click_from_the_tse(tmp_path: Path) -> None:
    """The TSE list and page count the TSE's open transactions (a Start without a
    Finish: no receipt of it carries a signature, the export warns W_TX_OPEN); the
    count is a link to them. Before, the auditor had to find the search's state
    filter and the TSE in it."""
    import uuid

    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h, "KASSE-01")
        sell(web, h, tss, cid, "1.00")
        tx = str(uuid.uuid4())
        r = web.put(f"/api/v2/tss/{tss}/tx/{tx}", params={"tx_revision": 1},
                    json={"state": "ACTIVE", "client_id": cid}, headers=h)  # fmt: skip
        assert r.status_code == 200, r.text
        open_number = r.json()["number"]
        assert dashboard_login(web, key).status_code == 303
        for page in (f"/dashboard/tss/{tss}", "/dashboard/tss"):
            html = web.get(page, params={"lang": "en"}).text
            link = re.search(r'<a class="count" href="([^"]*state=ACTIVE)">1</a>', html)
            assert link, page
            found = web.get(link.group(1).replace("&amp;", "&") + "&lang=en").text
            assert re.findall(r'/tx/(\d+)">', found) == [str(open_number)]
