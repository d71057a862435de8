"""The dashboard shows and filters dates in the shop's zone (OPENTSE_TIMEZONE,
default Europe/Berlin), as the receipts and the books do: a receipt at 00:30 on New
Year's Day in Berlin (23:30 UTC the evening before) is found under 1 January, and
the transaction page shows its local time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from dashboard_support import api_login, dashboard_login, sell, setup_tss
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.dashboard.search_fields import parse_date
from opentse.errors import OpenTSEError
from opentse.register.shoptime import day_bounds
from opentse.server.app import create_app
from opentse.server.context import ServerConfig
from opentse.testing.clock import FrozenClock
from opentse.testing.serving import served_installation

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YEAR_0030_BERLIN = 1_735_687_800  # 2024-12-31 23:30:00 UTC


@settings(max_examples=100, deadline=None)
@given(day=st.dates(min_value=date(1970, 1, 2), max_value=date(9998, 12, 31)))
def test_a_date_is_the_whole_local_day(day: date) -> None:
    start, after = day_bounds(day, BERLIN)
    assert parse_date(day.isoformat(), zone=BERLIN) == int(start.timestamp())
    assert parse_date(day.isoformat(), end=True, zone=BERLIN) == int(after.timestamp())
    assert int((after - start).total_seconds()) in (23 * 3600, 24 * 3600, 25 * 3600)


def test_summer_time_days_are_23_and_25_hours() -> None:
    def hours(text: str) -> float:
        start, end = parse_date(text, zone=BERLIN), parse_date(text, end=True, zone=BERLIN)
        assert start is not None and end is not None
        return (end - start) / 3600

    assert hours("2026-03-29") == 23
    assert hours("2026-10-25") == 25
    assert hours("2026-11-21") == 24
    assert parse_date("2026-11-21", zone=BERLIN) == 1_795_215_600  # 2026-11-20 23:00 UTC


@settings(max_examples=100, deadline=None)
@given(day=st.dates(min_value=date(2000, 1, 1), max_value=date(2068, 12, 31)))
def test_a_two_digit_year_is_this_century(day: date) -> None:
    """22.11.26 as a German types it where there is no date picker is 22 November
    2026: it was refused as an invalid date (strptime read the year 26)."""
    typed = f"{day.day}.{day.month}.{day.year % 100:02d}"
    assert parse_date(typed, zone=BERLIN) == parse_date(day.isoformat(), zone=BERLIN)


@pytest.mark.parametrize(
    "text",
    ["0001-01-01", "9999-12-31", "1969-12-31", "2026-02-30", "31.02.26", "22.11.126", "1.1.69"],
)
def test_days_outside_unix_time_or_the_calendar_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_date(text, zone=BERLIN)


@pytest.fixture
def new_year_shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """One receipt signed at 00:30 on 2025-01-01 in Berlin, served by a real app."""
    monkeypatch.delenv("OPENTSE_TIMEZONE", raising=False)
    clock = FrozenClock(NEW_YEAR_0030_BERLIN)
    with (
        served_installation(tmp_path / "data", clock) as (_, base, key),
        httpx.Client(base_url=base, timeout=30) as api,
    ):
        h = api_login(api, key)
        tss, cid = setup_tss(api, h, "KASSE-01")
        receipt = sell(api, h, tss, cid, "4.20")
        with httpx.Client(base_url=base, timeout=30) as web:
            assert dashboard_login(web, key).status_code == 303
            yield {"web": web, "receipt": receipt, "tss": tss}


def _numbers(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'/tx/(\d+)">', html)]


def test_search_by_local_day(
    new_year_shop: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    web, number = new_year_shop["web"], new_year_shop["receipt"]["number"]

    def found(day: str) -> list[int]:
        page = web.get("/dashboard/tx", params={"from": day, "to": day})
        assert page.status_code == 200
        assert "(Europe/Berlin)" in page.text or "(UTC)" in page.text
        return _numbers(page.text)

    assert found("2025-01-01") == [number]
    assert found("2024-12-31") == []
    monkeypatch.setenv("OPENTSE_TIMEZONE", "UTC")  # a shop that counts in UTC
    assert found("2024-12-31") == [number]
    assert found("2025-01-01") == []


def test_pages_show_local_time(new_year_shop: dict[str, Any]) -> None:
    web = new_year_shop["web"]
    listing = web.get("/dashboard/tx", headers={"accept-language": "en"})
    assert "Date from (Europe/Berlin)" in listing.text
    assert "2025-01-01 00:30:00 CET" in listing.text
    assert "2024-12-31 23:30:00" not in listing.text


def test_an_unknown_zone_stops_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from opentse.installation import Installation

    monkeypatch.setenv("OPENTSE_TIMEZONE", "Mars/Olympus_Mons")
    data = tmp_path / "data"
    inst = Installation.open(data)
    try:
        with pytest.raises(OpenTSEError) as caught:
            create_app(inst, ServerConfig(data_dir=data))
        assert caught.value.code == "E_TIMEZONE"
    finally:
        inst.close()
