"""The export form says in the page's language which field it cannot take and why,
and the export page shows the filters as the form names them. Before, a German
page answered a typo with the API's English ('querystring/start_transaction_number
must be a whole number >= 0 ...'), an impossible day with the bare text
('31.02.2026'), a number range beside a date range with 'transaction number and
date filters exclude each other'; an export's dates were Unix seconds
('end_date=1578005999'), and an export of an empty range failed with nothing but
E_NO_DATA_AVAILABLE."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from dashboard_support import (
    api_login,
    csrf_of,
    dashboard_login,
    export_rows,
    sell,
    served_shop,
    setup_tss,
)


def _alert(html: str) -> str:
    found = re.search(r'<p class="alert" role="alert">(.*?)</p>', html, re.S)
    assert found, "no message on the page"
    return found.group(1)


def _post(web: httpx.Client, tss: str, lang: str, **fields: str) -> httpx.Response:
    form = web.get("/dashboard/exports", params={"lang": lang})
    return web.post("/dashboard/exports", data={"csrf": csrf_of(form.text), "tss_id": tss,
                                                **fields})  # fmt: skip


@pytest.mark.parametrize(
    ("lang", "fields", "message"),
    [
        ("de", {"start_transaction_number": "abc"},
         "Transaktion von: „abc“ ist keine Transaktionsnummer (eine ganze Zahl ab 0)."),
        ("en", {"end_transaction_number": "1e3"},
         "Transaction to: &#39;1e3&#39; is no transaction number (a whole number from 0)."),
        ("de", {"start_date": "31.02.2026"},
         "Von Datum (Europe/Berlin): „31.02.2026“ ist kein Datum ab 1970 (JJJJ-MM-TT oder"
         " TT.MM.JJJJ)."),
        # a day before unix time is a date, but none a TSE log can have: the message
        # says from when (it said "ist kein Datum", which a German reads as a typo)
        ("de", {"start_date": "31.12.1969"},
         "Von Datum (Europe/Berlin): „31.12.1969“ ist kein Datum ab 1970 (JJJJ-MM-TT oder"
         " TT.MM.JJJJ)."),
        ("en", {"end_date": "tomorrow"},
         "To date (Europe/Berlin): &#39;tomorrow&#39; is no date from 1970 on (YYYY-MM-DD or"
         " DD.MM.YYYY)."),
        ("de", {"start_transaction_number": "2", "end_date": "2026-11-21"},
         "Nummern- und Datumsbereich schließen sich aus: bitte nur einen wählen."),
    ],
)  # fmt: skip
def test_a_field_the_export_form_cannot_take_is_named_in_the_pages_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lang: str, fields: dict[str, str],
    message: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("OPENTSE_TIMEZONE", "Europe/Berlin")
    with served_shop(tmp_path) as (web, key):
        tss, _ = setup_tss(web, api_login(web, key), "KASSE-1")
        assert dashboard_login(web, key).status_code == 303
        refused = _post(web, tss, lang, **fields)
        assert refused.status_code == 400 and _alert(refused.text) == message
        assert "/dashboard/exports/" not in web.get("/dashboard/exports").text  # none started


def test_the_export_page_shows_its_filters_and_why_it_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENTSE_TIMEZONE", "Europe/Berlin")
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h, "KASSE-1")
        sell(web, h, tss, cid, "2.50")
        assert dashboard_login(web, key).status_code == 303
        started = _post(web, tss, "de", start_date="2020-01-01", end_date="02.01.2020")
        assert started.status_code == 303, started.text
        address = started.headers["location"]
        deadline = time.monotonic() + 60
        while not (status := web.get(address + "/status").json())["done"]:
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        assert status["state"] == "ERROR" and status["state_text"] == "fehlgeschlagen"
        assert status["message"] == (
            "Export fehlgeschlagen: die TSE hat in diesem Bereich keine Log-Nachrichten"
            " (E_NO_DATA_AVAILABLE)"
        )
        page = web.get(address).text
        filters = re.search(r'<dd id="export-filters">(.*?)</dd>', page, re.S)
        assert filters is not None
        assert filters.group(1) == (
            "Von Datum (Europe/Berlin): 2020-01-01 00:00:00 CET;"
            " Bis Datum (Europe/Berlin): 2020-01-02 23:59:59 CET"
        )
        by_register = _post(web, tss, "en", client_id=cid)
        assert by_register.status_code == 303, by_register.text
        page = web.get(by_register.headers["location"]).text
        assert '<dd id="export-filters">Register: KASSE-1</dd>' in page


def test_the_tse_page_shows_an_exports_period_as_dates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TSE page's list of exports shows the filter its exportData log signed; a
    date range there is Unix seconds (date=1795302000-1795388399)."""
    from datetime import datetime

    from opentse.dashboard.pages import shop_zone_of_env

    monkeypatch.setenv("OPENTSE_TIMEZONE", "Europe/Berlin")
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h, "KASSE-1")
        sell(web, h, tss, cid, "2.50")
        assert dashboard_login(web, key).status_code == 303
        today = datetime.now(shop_zone_of_env()).date()
        started = _post(web, tss, "de", start_date=today.strftime("%d.%m.%Y"))
        assert started.status_code == 303, started.text
        address = started.headers["location"]
        deadline = time.monotonic() + 60
        while not (status := web.get(address + "/status").json())["done"]:
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        assert status["state"] == "COMPLETED", status
        page = web.get(f"/dashboard/tss/{tss}", params={"lang": "de"}).text
        rows = export_rows(page)
        assert len(rows) == 1, rows
        # the same local midnight the export's own page names (CET or CEST)
        shown = re.search(r'<dd id="export-filters">Von Datum \(Europe/Berlin\): ([^<]+)</dd>',
                          web.get(address).text)  # fmt: skip
        assert shown is not None and shown.group(1).startswith(f"{today.isoformat()} 00:00:00 ")
        assert f"Zeitraum {shown.group(1)} – …" in rows[0], rows[0]
        assert "date=" not in rows[0]
