"""The shop's local calendar (shoptime.py): business days, open days, the journal's
daily record and the VAT rate's day follow Europe/Berlin (or the configured zone)
around local midnight in winter (UTC+1) and summer (UTC+2); times stay UTC when
stored and print in local time on receipts and the Z report."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.errors import ProtocolError
from opentse.formats.dsfinvk.check import check_export
from opentse.formats.dsfinvk.export import write_export
from opentse.formats.dsfinvk.model import CashRegister, Company, Location
from opentse.installation import Installation
from opentse.register.backends import EmbeddedBackend
from opentse.register.books import Books, MasterData
from opentse.register.outage import OutageLog
from opentse.register.receipt import Seller
from opentse.register.register import Register, RegisterConfig
from opentse.register.sale import Sale
from opentse.register.shoptime import day_bounds, local_day, shop_zone
from opentse.register.zreport import build_zreport, close_day, render_text
from opentse.testing import FrozenClock, ready_tse

CLIENT = "KASSE-ZEIT"
BERLIN = ZoneInfo("Europe/Berlin")
MASTER = MasterData(
    Company("Zeit GmbH", "Uhrweg 1", "10115", "Berlin", vat_id="DE123456789"),
    Location("Zeit", "Uhrweg 1", "10115", "Berlin"),
    CashRegister(CLIENT),
    "tse-zeit",
)


@dataclass
class Shop:
    clock: FrozenClock
    register: Register
    books: Books
    journal: OutageLog
    books_path: Path

    def at(self, local: datetime) -> None:
        self.clock.set(int(local.timestamp()))


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    clock = FrozenClock(1_700_000_000)
    inst = Installation.open(tmp_path / "data", clock=clock)  # with a CA: certificates
    service = inst.service
    ready_tse(service, "tse-zeit", client_id=CLIENT, logout=True)
    books_path = tmp_path / "till.db"
    books, journal = Books(books_path), OutageLog(tmp_path / "journal.db")
    register = Register(
        EmbeddedBackend(service, "tse-zeit"),
        RegisterConfig(Seller("Zeit", ("Uhrweg 1", "10115 Berlin")), CLIENT),
        journal,
        clock=lambda: datetime.fromtimestamp(clock.now(), UTC),
        books=books,
    )
    yield Shop(clock, register, books, journal, books_path)
    books.close_file()
    journal.close()
    inst.close()


def paid(text: str, price: str, key: int = 1) -> Sale:
    sale = Sale()
    sale.add_line(text, 1, price, key)
    sale.add_payment("cash", price)
    return sale


def rows(path: Path, name: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(path) as archive:
        text = archive.read(name).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


@pytest.mark.parametrize(
    ("day", "offset"),
    [(date(2026, 1, 15), "+01:00"), (date(2026, 7, 15), "+02:00")],
    ids=["winter", "summer"],
)
def test_days_around_local_midnight(shop: Shop, tmp_path: Path, day: date, offset: str) -> None:
    before = datetime(day.year, day.month, day.day, 23, 30, tzinfo=BERLIN) - timedelta(days=1)
    after = datetime(day.year, day.month, day.day, 0, 30, tzinfo=BERLIN)
    assert before.astimezone(UTC).date() == after.astimezone(UTC).date() == day - timedelta(1)
    shop.at(before)
    shop.register.connect()
    late = shop.register.sell(paid("Kaffee", "2.50"))
    shop.at(after)
    early = shop.register.sell(paid("Tee", "1.80"))
    assert early.receipt.ended_at == after  # the TSE's time, the same instant
    assert f"Datum: {after:%d.%m.%Y} 00:30:00" in early.to_json()["receipt_text"]
    assert f"Datum: {before:%d.%m.%Y} 23:30:00" in late.to_json()["receipt_text"]
    # the first event of each local day wrote that day's journal record
    assert [d for d, *_ in shop.journal.daily_records()] == [
        (day - timedelta(1)).isoformat(),
        day.isoformat(),
    ]
    assert shop.books.open_days() == [day - timedelta(1), day]
    with sqlite3.connect(shop.books_path) as db:  # stored: UTC
        stored = [r[0] for r in db.execute("SELECT ended_at FROM books_receipts")]
    assert stored and all(t.endswith("+00:00") for t in stored)

    created = datetime(day.year, day.month, day.day, 0, 45, tzinfo=BERLIN).astimezone(UTC)
    closed = close_day(shop.register, shop.books, MASTER, "4.30", created=created)
    assert closed.closing.business_day == day  # not the UTC date, the day before
    text = render_text(build_zreport(closed))
    assert f"Geschäftstag: {day.isoformat()}" in text
    assert f"Erstellt:     {day:%d.%m.%Y} 00:45:00" in text  # local, as the receipts
    path = write_export([closed.closing], tmp_path / "z.zip")
    assert [f for f in check_export(path) if f.severity == "error"] == []
    (z,) = rows(path, "cashpointclosing.csv")
    assert z["Z_BUCHUNGSTAG"] == day.isoformat()
    ends = {r["BON_ID"]: r["BON_ENDE"] for r in rows(path, "transactions.csv")}
    assert ends[early.receipt_ref] == f"{day.isoformat()}T00:30:00{offset}"


def test_receipt_at_half_past_midnight_new_year_uses_the_new_years_vat(
    shop: Shop, tmp_path: Path
) -> None:
    """Key 3 (§24 UStG) went from 8.4 % to 7.8 % on 2025-01-01: a sale at 00:30 in
    Berlin (23:30 UTC on 2024-12-31) is a 2025 sale."""
    new_year = datetime(2025, 1, 1, 0, 30, tzinfo=BERLIN)
    shop.at(new_year)
    shop.register.connect()
    shop.register.sell(paid("Kartoffeln", "10.78", 3))
    closed = close_day(
        shop.register, shop.books, MASTER, "10.78", created=new_year + timedelta(minutes=5)
    )
    (line,) = closed.closing.receipts[0].lines
    assert (line.vat[0].net, line.vat[0].vat) == (Decimal("10.00"), Decimal("0.78"))
    path = write_export([closed.closing], tmp_path / "new-year.zip")
    assert [f for f in check_export(path) if f.severity == "error"] == []
    rates = {r["UST_SCHLUESSEL"]: r["UST_SATZ"] for r in rows(path, "vat.csv")}
    assert rates["3"] == "7,80"


@settings(max_examples=100, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
    )
)
def test_open_days_are_the_local_days_of_the_receipts(at: datetime) -> None:
    books = Books(":memory:")
    sale = paid("Brot", "3.20", 2)
    for n, when in enumerate((at, at + timedelta(hours=1)), start=1):
        books.record_raw(sale, bon_nr=n, bon_id=str(n), tse_id="t", start=when, end=when,
                         signed=None, error="TSE")  # fmt: skip
    expected = {at.astimezone(BERLIN).date(), (at + timedelta(hours=1)).astimezone(BERLIN).date()}
    assert books.open_days() == sorted(expected)
    start, end = day_bounds(local_day(at, BERLIN), BERLIN)
    assert start <= at < end and timedelta(hours=23) <= end - start <= timedelta(hours=25)
    books.close_file()


def test_zone_is_configurable_kept_in_the_books_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "till.db"
    books = Books(path, timezone="America/New_York")
    books.record_raw(paid("Brot", "3.20"), bon_nr=1, bon_id="1", tse_id="t",
                     start=datetime(2026, 3, 2, 3, 0, tzinfo=UTC),
                     end=datetime(2026, 3, 2, 3, 0, tzinfo=UTC), signed=None)  # fmt: skip
    assert books.open_days() == [date(2026, 3, 1)]  # 22:00 the evening before in New York
    books.close_file()
    again = Books(path)  # a reader without a zone: the one kept
    assert again.timezone == "America/New_York" and again.open_days() == [date(2026, 3, 1)]
    again.close_file()
    for make in (
        lambda: Books(":memory:", timezone="Mars/Olympus_Mons"),
        lambda: RegisterConfig(Seller("Z", ("Weg 1",)), CLIENT, timezone="Mars/Olympus_Mons"),
    ):
        with pytest.raises(ProtocolError) as info:
            make()
        assert info.value.code == "E_TIMEZONE"
    with pytest.raises(ProtocolError) as naive:
        local_day(datetime(2026, 1, 1, 12, 0), BERLIN)
    assert naive.value.code == "E_TIMEZONE"


def test_europe_berlin_is_found_without_the_systems_zoneinfo_files() -> None:
    """A minimal Debian has no /usr/share/zoneinfo: the tzdata package stands in."""
    code = "from opentse.register.shoptime import shop_zone; print(shop_zone())"
    env = {**os.environ, "PYTHONTZPATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Europe/Berlin"
    assert str(shop_zone()) == "Europe/Berlin"


def test_pos_timezone_option(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "tse-pos", client_id="POS-TZ", logout=True)
    base = ["--data", str(data), "--tss", "tse-pos", "--client", "POS-TZ"]
    app = build_app()

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, list(args))
        return result.exit_code, result.output

    zone = "Pacific/Kiritimati"  # UTC+14: most of the time not the UTC date
    days = {datetime.now(ZoneInfo(zone)).date().isoformat()}
    code, out = run("pos", "daily", *base, "--timezone", zone)
    days.add(datetime.now(ZoneInfo(zone)).date().isoformat())
    assert code == 0, out
    assert any(f"Daily record {d}" in out for d in days)
    code, out = run("pos", "sell", *base, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80")
    assert code == 0, out  # no --timezone: the books kept Kiritimati
    books = Books(data / "pos" / "POS-TZ.db")
    assert books.timezone == zone
    books.close_file()
    code, out = run("pos", "daily", *base, "--timezone", "Mars/Olympus_Mons")
    assert code != 0 and "E_TIMEZONE" in out


def test_register_prints_the_rate_of_the_receipts_local_day(shop: Shop) -> None:
    """Through the Register (its zone, the TSE's end time): 23:30 on New Year's Eve in
    Berlin prints key 3 at 8.4 %, 00:30 an hour later at 7.8 %."""
    for local, percent, net in (
        (datetime(2024, 12, 31, 23, 30, tzinfo=BERLIN), "8,4", "9,94"),
        (datetime(2025, 1, 1, 0, 30, tzinfo=BERLIN), "7,8", "10,00"),
    ):
        shop.at(local)
        result = shop.register.sell(paid("Kartoffeln", "10.78", 3))
        assert result.signed is not None
        (tax,) = result.receipt.taxes
        assert tax.percent == Decimal(percent.replace(",", "."))
        assert f"C {percent} %" in result.to_json()["receipt_text"]
        assert f"{tax.net}".replace(".", ",") == net
