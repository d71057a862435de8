"""A closing's business day (Z_BUCHUNGSTAG) named by the shop: a bar closing at
01:30 books the evening before, and a day outside its receipts is refused before
anything is booked or signed (the cash difference included)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
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
from opentse.register.shoptime import business_day, parse_day_start
from opentse.register.zreport import close_day
from opentse.testing import FrozenClock, ready_tse

BERLIN = ZoneInfo("Europe/Berlin")
CLIENT = "KASSE-BAR"
MASTER = MasterData(
    Company("Bar GmbH", "Nachtweg 1", "10115", "Berlin", vat_id="DE123456789"),
    Location("Bar", "Nachtweg 1", "10115", "Berlin"),
    CashRegister(CLIENT),
    "tse-bar",
)


def _paid(text: str, price: str) -> Sale:
    sale = Sale()
    sale.add_line(text, 1, price, 1)
    sale.add_payment("cash", price)
    return sale


class Bar:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = FrozenClock(1_700_000_000)
        self.inst = Installation.open(tmp_path / "data", clock=self.clock)
        ready_tse(self.inst.service, "tse-bar", client_id=CLIENT, logout=True)
        self.books = Books(tmp_path / "till.db")
        self.journal = OutageLog(tmp_path / "journal.db")
        self.register = Register(
            EmbeddedBackend(self.inst.service, "tse-bar"),
            RegisterConfig(Seller("Bar", ("Nachtweg 1", "10115 Berlin")), CLIENT),
            self.journal,
            clock=lambda: datetime.fromtimestamp(self.clock.now(), UTC),
            books=self.books,
        )

    def at(self, local: datetime) -> datetime:
        self.clock.set(int(local.timestamp()))
        return local.astimezone(UTC)

    def close(self) -> None:
        self.books.close_file()
        self.journal.close()
        self.inst.close()


@pytest.fixture
def bar(tmp_path: Path) -> Iterator[Bar]:
    opened = Bar(tmp_path)
    yield opened
    opened.close()


def _rows(path: Path, name: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(path) as archive:
        text = archive.read(name).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


def test_closing_after_midnight_books_the_evening(bar: Bar, tmp_path: Path) -> None:
    evening = date(2026, 3, 6)
    bar.at(datetime(2026, 3, 6, 22, 15, tzinfo=BERLIN))
    bar.register.connect()
    bar.register.sell(_paid("Bier", "4.50"))
    bar.at(datetime(2026, 3, 7, 0, 40, tzinfo=BERLIN))
    bar.register.sell(_paid("Wein", "6.00"))
    created = bar.at(datetime(2026, 3, 7, 1, 30, tzinfo=BERLIN))
    too_early = evening - timedelta(days=1)
    logs = bar.inst.store.count_logs("tse-bar")
    with pytest.raises(ProtocolError) as info:  # before the first receipt's day
        close_day(bar.register, bar.books, MASTER, "20.00", created=created, business_day=too_early)
    assert info.value.code == "E_BUSINESS_DAY"
    with pytest.raises(ProtocolError) as info:  # a day that has not begun
        close_day(
            bar.register,
            bar.books,
            MASTER,
            "20.00",
            created=created,
            business_day=evening + timedelta(days=2),
        )
    assert info.value.code == "E_BUSINESS_DAY"
    # refused before anything was booked: no cash difference signed, nothing closed
    assert bar.inst.store.count_logs("tse-bar") == logs
    assert bar.books.open_count() == 2
    closed = close_day(
        bar.register, bar.books, MASTER, "10.50", created=created, business_day=evening
    )
    assert closed.closing.business_day == evening
    path = write_export([closed.closing], tmp_path / "z.zip")
    assert [f for f in check_export(path) if f.severity == "error"] == []
    (z,) = _rows(path, "cashpointclosing.csv")
    assert z["Z_BUCHUNGSTAG"] == evening.isoformat()
    # the next closing cannot go back before this one's day
    bar.at(datetime(2026, 3, 7, 18, 0, tzinfo=BERLIN))
    bar.register.sell(_paid("Cola", "3.00"))
    created = bar.at(datetime(2026, 3, 7, 23, 0, tzinfo=BERLIN))
    with pytest.raises(ProtocolError) as info:
        bar.books.check_business_day(evening - timedelta(days=1), created)
    assert info.value.code == "E_BUSINESS_DAY"
    assert close_day(
        bar.register, bar.books, MASTER, "13.50", created=created
    ).closing.business_day == date(2026, 3, 7)


def test_pos_close_business_day_option(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "tse-bar", client_id=CLIENT, logout=True)
    base = ["--data", str(data), "--tss", "tse-bar", "--client", CLIENT]
    shop = ["--company", "Bar GmbH", "--street", "Nachtweg 1", "--postal-code", "10115"]
    shop += ["--city", "Berlin", "--vat-id", "DE123456789"]
    runner = CliRunner()
    app = build_app()
    sold = runner.invoke(
        app, ["pos", "sell", *base, "--line", "Bier:1:4.50:1", "--pay", "bar:4.50", "--json"]
    )
    assert sold.exit_code == 0, sold.output
    today = datetime.now(BERLIN).date()
    for bad in (
        "07.03.2026",
        (today + timedelta(days=1)).isoformat(),
        (today - timedelta(days=1)).isoformat(),
    ):
        refused = runner.invoke(
            app, ["pos", "close", *base, *shop, "--counted-cash", "4.50", "--business-day", bad]
        )
        assert refused.exit_code == 1, refused.output
        assert "E_BUSINESS_DAY" in refused.output
    closed = runner.invoke(
        app,
        [
            "pos",
            "close",
            *base,
            *shop,
            "--counted-cash",
            "4.50",
            "--business-day",
            today.isoformat(),
            "--json",
        ],
    )
    assert closed.exit_code == 0, closed.output
    assert json.loads(closed.stdout)["business_day"] == today.isoformat()


def test_a_bar_keeps_its_day_start_and_closes_at_dawn_on_the_evening(
    bar: Bar, tmp_path: Path
) -> None:
    """A bar open until 05:00 had to name the evening with --business-day at every
    closing; without it the closing at 05:15 booked the morning's date. With the day
    start kept in its books (06:00), a closing before 06:00 books the evening, also
    a night whose first receipt is after midnight, and across the October change;
    a closing after 06:00 books its own day."""
    bar.books.set_day_start(time(6, 0))
    bar.at(datetime(2026, 10, 24, 22, 15, tzinfo=BERLIN))
    bar.register.connect()
    bar.register.sell(_paid("Bier", "4.50"))
    bar.at(datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN))  # the hour that happens twice
    bar.register.sell(_paid("Wein", "6.00"))
    dawn = bar.at(datetime(2026, 10, 25, 5, 15, tzinfo=BERLIN))
    night = close_day(bar.register, bar.books, MASTER, "10.50", created=dawn)
    assert night.closing.business_day == date(2026, 10, 24)
    path = write_export([night.closing], tmp_path / "z1.zip")
    assert [f for f in check_export(path) if f.severity == "error"] == []
    (z,) = _rows(path, "cashpointclosing.csv")
    assert z["Z_BUCHUNGSTAG"] == "2026-10-24"
    bar.at(datetime(2026, 10, 26, 0, 40, tzinfo=BERLIN))  # nobody came before midnight
    bar.register.sell(_paid("Cola", "3.00"))
    dawn = bar.at(datetime(2026, 10, 26, 4, 0, tzinfo=BERLIN))
    second = close_day(bar.register, bar.books, MASTER, "13.50", created=dawn)
    assert second.closing.business_day == date(2026, 10, 25)
    bar.at(datetime(2026, 10, 26, 18, 0, tzinfo=BERLIN))
    bar.register.sell(_paid("Saft", "2.00"))
    evening = bar.at(datetime(2026, 10, 26, 19, 0, tzinfo=BERLIN))
    third = close_day(bar.register, bar.books, MASTER, "15.50", created=evening)
    assert third.closing.business_day == date(2026, 10, 26)
    reopened = Books(tmp_path / "till.db")  # kept in the file
    assert reopened.day_start() == time(6, 0)
    reopened.close_file()


@pytest.mark.parametrize(
    ("local", "start", "day"),
    [
        (datetime(2026, 10, 25, 5, 59, tzinfo=BERLIN), time(6, 0), date(2026, 10, 24)),
        (datetime(2026, 10, 25, 6, 0, tzinfo=BERLIN), time(6, 0), date(2026, 10, 25)),
        (datetime(2026, 3, 29, 1, 30, tzinfo=UTC), time(4, 0), date(2026, 3, 28)),  # 03:30 CEST
        (datetime(2026, 3, 29, 2, 30, tzinfo=UTC), time(4, 0), date(2026, 3, 29)),  # 04:30 CEST
        (datetime(2027, 1, 1, 0, 30, tzinfo=BERLIN), time(6, 0), date(2026, 12, 31)),
        (datetime(2026, 7, 1, 0, 30, tzinfo=BERLIN), None, date(2026, 7, 1)),
    ],
)
def test_business_day_of_an_instant(local: datetime, start: time | None, day: date) -> None:
    assert business_day(local, BERLIN, start) == day


@pytest.mark.parametrize("bad", ["6:00", "06-00", "24:00", "12:01", "06:00:00", "abends"])
def test_a_day_start_that_is_no_morning_time_is_refused(bad: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_day_start(bad)
    assert info.value.code == "E_DAY_START"


def test_pos_close_day_start_option_is_kept_and_checked(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "tse-bar", client_id=CLIENT, logout=True)
    journal = tmp_path / "bar.db"
    base = ["--data", str(data), "--tss", "tse-bar", "--client", CLIENT]
    base += ["--journal", str(journal)]
    shop = ["--company", "Bar GmbH", "--street", "Nachtweg 1", "--postal-code", "10115"]
    shop += ["--city", "Berlin", "--vat-id", "DE123456789"]
    runner, app = CliRunner(), build_app()

    def sell() -> None:
        sold = runner.invoke(
            app, ["pos", "sell", *base, "--line", "Bier:1:4.50:1", "--pay", "bar:4.50"]
        )
        assert sold.exit_code == 0, sold.output

    sell()
    refused = runner.invoke(
        app, ["pos", "close", *base, *shop, "--counted-cash", "4.50", "--day-start", "13:00"]
    )
    assert refused.exit_code == 1 and "E_DAY_START" in refused.output, refused.output
    books = Books(journal)
    assert books.day_start() is None and books.open_count() == 1  # nothing kept or closed
    books.close_file()
    closed = runner.invoke(
        app,
        ["pos", "close", *base, *shop, "--counted-cash", "4.50", "--day-start", "12:00", "--json"],
    )
    assert closed.exit_code == 0, closed.output
    expected = business_day(datetime.now(UTC), BERLIN, time(12, 0))  # before noon: yesterday
    assert json.loads(closed.stdout)["business_day"] == expected.isoformat()
    sell()
    again = runner.invoke(app, ["pos", "close", *base, *shop, "--counted-cash", "9.00", "--json"])
    assert again.exit_code == 0, again.output  # the kept day start, no option
    assert json.loads(again.stdout)["business_day"] == expected.isoformat()
    sell()
    reset = runner.invoke(
        app,
        ["pos", "close", *base, *shop, "--counted-cash", "13.50", "--day-start", "00:00", "--json"],
    )
    assert reset.exit_code == 0, reset.output
    assert json.loads(reset.stdout)["business_day"] == datetime.now(BERLIN).date().isoformat()
