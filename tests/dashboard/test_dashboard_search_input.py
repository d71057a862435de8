"""The search form reads what a shop owner types: amounts with thousands separators,
a ",-", a euro sign; dates as DD.MM.YYYY; a register in any case. A filter it cannot
read is reported and nothing is listed: the page showed the alert above a list of
all transactions ("50 results"), as if they matched. ``1.234`` was read as 1,23 EUR
(rounded) and found the receipts of 1,23. A served app (uvicorn on loopback)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from dashboard_support import api_login, dashboard_login, sell, served_shop, setup_tss
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.dashboard.pages import shop_zone_of_env
from opentse.dashboard.search_fields import parse_amount


def _search(web: httpx.Client, **params: str) -> tuple[list[int], str]:
    page = web.get("/dashboard/tx", params=params, headers={"accept-language": "en"})
    # a refused field is a 400 page saying why, a search a 200
    assert page.status_code == (400 if 'role="alert"' in page.text else 200)
    return [int(n) for n in re.findall(r'/tx/(\d+)">', page.text)], page.text


def test_the_search_reads_what_a_shop_owner_types(tmp_path: Path) -> None:
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h, "KASSE-01")
        big, fifty, small = (sell(web, h, tss, cid, a) for a in ("1234.50", "50.00", "1.23"))
        assert dashboard_login(web, key).status_code == 303
        for typed in ("1.234,50", "1,234.50", "1234,50", "1 234,50 €"):
            assert _search(web, amount=typed)[0] == [big["number"]], typed
        for typed in ("50,-", "50 €", "EUR 50", "€50,00", "50"):
            assert _search(web, amount=typed)[0] == [fifty["number"]], typed
        assert _search(web, amount="1,23")[0] == [small["number"]]
        assert _search(web, amount="1.234")[0] == []  # 1234,00, not 1,23 rounded
        assert _search(web, register="kasse-01", amount="50")[0] == [fifty["number"]]
        day = datetime.fromtimestamp(fifty["time_start"], shop_zone_of_env()).date()
        german = day.strftime("%d.%m.%Y")
        found, _ = _search(web, **{"from": german, "to": german})
        assert sorted(found) == sorted([big["number"], fifty["number"], small["number"]])
        for field, typed, message in (
            ("amount", "21,4256", "Invalid amount."),
            ("amount", "zwanzig", "Invalid amount."),
            ("number", "#12x", "Invalid number."),
            ("from", "31.02.2026", "Invalid date: Date from ("),
        ):
            numbers, html = _search(web, **{field: typed})
            assert numbers == [] and message in html, (field, typed)
            assert "results" not in html and "No transaction found" not in html  # none ran


@settings(max_examples=100, deadline=None)
@given(cents=st.integers(0, 10**12), negative=st.booleans())
def test_amounts_with_thousands_separators(cents: int, negative: bool) -> None:
    euros = f"{cents // 100:,}"
    sign = "-" if negative and cents else ""
    expected = Decimal(cents) / 100 * (-1 if sign else 1)
    english = f"{sign}{euros}.{cents % 100:02d}"
    german = f"{sign}{euros.replace(',', '.')},{cents % 100:02d}"
    assert parse_amount(english) == expected and parse_amount(german) == expected
    assert parse_amount(f"{german} €") == expected
    if cents % 100 == 0:
        assert parse_amount(f"{sign}{euros.replace(',', '.')},-") == expected


def test_amounts_that_are_refused() -> None:
    for bad in ("1.2.3", "1.234.5", "1,234,50", "1.23,45", "0.123", "1e5", "--5", "€", "21,425,1"):
        with pytest.raises(ValueError):
            parse_amount(bad)
    # digits other than 0-9 (str.isdigit takes them, Decimal does not: it was a 500)
    for bad in ("²", "1²", "5,²", "1.²³⁴", "١٢", "1.٢٣٤,00"):
        with pytest.raises(ValueError):
            parse_amount(bad)


def test_a_page_number_that_is_no_number_is_refused() -> None:
    """None: the search refuses it (a 400 page naming ``page=...``); it was read as
    the first page, hiding the edit."""
    from opentse.dashboard.transaction_pages import _page_number

    typed = ("2", " 3 ", "²", "١", "0", "-1", "x", "")
    assert [_page_number(t) for t in typed] == [2, 3, None, None, None, None, None, 1]


def test_every_match_can_be_paged_to(tmp_path: Path) -> None:
    """A day's 120 receipts: the page said "50 results" and "only the first 50 are
    shown, please narrow the search", and the other 70 could not be reached."""
    from opentse.dashboard.transactions import SEARCH_LIMIT

    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h, "KASSE-01")
        sold = [sell(web, h, tss, cid, "2.00")["number"] for _ in range(2 * SEARCH_LIMIT + 20)]
        assert dashboard_login(web, key).status_code == 303
        seen: list[int] = []
        link: str | None = "/dashboard/tx?state=FINISHED&amount=2,00"
        texts = []
        while link is not None:
            page = web.get(link.replace("&amp;", "&"), headers={"accept-language": "en"})
            assert page.status_code == 200
            seen += [int(n) for n in re.findall(r'/tx/(\d+)">', page.text)]
            texts += re.findall(r"Results \d+–\d+ of \d+", page.text)
            older = re.search(r'href="([^"]+)" rel="next"', page.text)
            link = older.group(1) if older else None
        assert seen == sorted(sold, reverse=True)
        assert texts == ["Results 1–50 of 120", "Results 51–100 of 120", "Results 101–120 of 120"]
        past = web.get("/dashboard/tx?state=FINISHED&amount=2,00&page=99&lang=en").text
        assert "Results 101–120 of 120" in past  # was "Results 4901–4900 of 120"
        back = web.get("/dashboard/tx?state=FINISHED&amount=2,00&page=3")
        assert 'rel="prev"' in back.text and 'rel="next"' not in back.text
        newer = re.search(r'href="([^"]+)" rel="prev"', back.text)
        assert newer and "before=" in newer.group(1)  # the hits just before this page
        two = web.get(newer.group(1).replace("&amp;", "&"), headers={"accept-language": "en"})
        assert "Results 51–100 of 120" in two.text
        assert ">1 result</p>" in _search(web, number=str(sold[0]))[1]  # was "1 results"


def test_todays_transactions_are_one_click_away(tmp_path: Path) -> None:
    """The morning's question ("today's receipts") needed both date fields filled."""
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h, "KASSE-01")
        sold = sell(web, h, tss, cid, "3.00")
        assert dashboard_login(web, key).status_code == 303
        day = datetime.fromtimestamp(sold["time_start"], shop_zone_of_env()).date().isoformat()
        page = web.get("/dashboard/tx", params={"tss": tss, "amount": "9"}).text
        link = re.search(r'<a href="([^"]+)" class="quick">Heute</a>', page)
        assert link is not None, page
        assert link.group(1) == f"/dashboard/tx?tss={tss}&amp;from={day}&amp;to={day}"
        found, html = _search(web, tss=tss, **{"from": day, "to": day})
        assert found == [sold["number"]] and ">1 result</p>" in html


def test_the_register_field_offers_the_registers(tmp_path: Path) -> None:
    """What to type as "register" was a guess (its serial number, as the POS
    registered it); the field now offers the organization's registers."""
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        setup_tss(web, h, "KASSE-02")
        setup_tss(web, h, "Bar-Theke")
        assert dashboard_login(web, key).status_code == 303
        html = web.get("/dashboard/tx").text
        assert 'list="f-registers"' in html
        options = re.search(r'<datalist id="f-registers">(.*?)</datalist>', html, re.S)
        assert options is not None
        assert re.findall(r'<option value="([^"]+)">', options.group(1)) == [
            "Bar-Theke",
            "KASSE-02",
        ]


def test_a_reversed_date_range_is_reported(tmp_path: Path) -> None:
    """ "From" after "to" listed nothing and said only "0 results"."""
    with served_shop(tmp_path) as (web, key):
        assert dashboard_login(web, key).status_code == 303
        numbers, html = _search(web, **{"from": "2026-11-23", "to": "2026-11-22"})
        assert numbers == [] and "The range is empty: &#39;from&#39; is after &#39;to&#39;." in html
        assert "0 results" not in html
        same_day = _search(web, **{"from": "22.11.2026", "to": "2026-11-22"})[1]
        assert "The range is empty" not in same_day and "0 results" in same_day


def test_a_register_that_does_not_exist_is_reported(tmp_path: Path) -> None:
    """A typo in the register field ("KASSE-2" for KASSE-02) listed nothing and said
    "No transaction found", as if that register had sold nothing. Now the field is
    marked and the page names the registers there are; a register's client id and
    any letter case are still taken."""
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h, "KASSE-02")
        sold = sell(web, h, tss, cid, "2.00")["number"]
        assert dashboard_login(web, key).status_code == 303
        numbers, html = _search(web, register="KASSE-2")
        assert numbers == [] and "No transaction found" not in html
        assert "No register &#39;KASSE-2&#39;. Registers: KASSE-02." in html
        assert 'id="f-register" aria-invalid="true"' in html
        assert _search(web, register="kasse-02")[0] == [sold]
        assert _search(web, register=cid.upper())[0] == [sold]
        _, html = _search(web, register="<b>x</b>")
        assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
