"""A bar in Berlin open 20:00-05:00 across the clock changes and New Year's Eve.

The end of summer time (last Sunday of October, 03:00 CEST -> 02:00 CET) makes the hour
02:00-03:00 happen twice; the start (last Sunday of March, 02:00 -> 03:00) skips it.
Receipts must still name each instant unambiguously, follow the TSE's order, belong to
the evening's business day, and the night's DSFinV-K export must pass the checker, the
cross-check with the TSE's TAR and the TAR's own verification.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.engine.export import ExportFilter
from opentse.formats.dsfinvk.check import check_export
from opentse.formats.dsfinvk.export import write_export
from opentse.formats.dsfinvk.model import CashRegister, Company, Location
from opentse.formats.qr import parse_qr_payload
from opentse.installation import Installation
from opentse.register import (
    EmbeddedBackend,
    OutageLog,
    Register,
    RegisterConfig,
    Sale,
    Seller,
    Signed,
)
from opentse.register.books import Books, MasterData
from opentse.register.remote import RemoteBackend
from opentse.register.render_text import render_text
from opentse.register.shoptime import local_text
from opentse.register.zreport import build_zreport, close_day
from opentse.register.zreport import render_text as render_zreport
from opentse.testing import FrozenClock, ready_tse
from opentse.verify.crosscheck_read import cross_check_files
from opentse.verify.report import verify_exports

BERLIN = ZoneInfo("Europe/Berlin")
CLIENT = "BAR-1"
TSE = "bar-tse"
MASTER = MasterData(
    Company("Nachtbar GmbH", "Tresenweg 1", "10115", "Berlin", vat_id="DE123456789"),
    Location("Nachtbar", "Tresenweg 1", "10115", "Berlin"),
    CashRegister(CLIENT),
    TSE,
)
NIGHTS = {
    "summer-time-ends": date(2026, 10, 24),
    "summer-time-starts": date(2026, 3, 28),
    "new-years-eve": date(2026, 12, 31),
}


def _bier() -> Sale:
    sale = Sale()
    sale.add_line("Bier", 1, "4.00", 1)
    sale.add_payment("cash", "4.00")
    return sale


def _rows(path: Path, name: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(path) as archive:
        text = archive.read(name).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


class Bar:
    def __init__(self, root: Path, evening: date) -> None:
        opens = datetime(evening.year, evening.month, evening.day, 20, 0, tzinfo=BERLIN)
        self.clock = FrozenClock(int(opens.timestamp()))
        self.inst = Installation.open(root / "data", clock=self.clock)
        ready_tse(self.inst.service, TSE, client_id=CLIENT, logout=True)
        till = root / "till.db"
        self.books, self.journal = Books(till), OutageLog(till)
        self.register = Register(
            EmbeddedBackend(self.inst.service, TSE),
            RegisterConfig(Seller("Nachtbar", ("Tresenweg 1", "10115 Berlin")), CLIENT),
            self.journal,
            clock=lambda: datetime.fromtimestamp(self.clock.now(), UTC),
            books=self.books,
        )

    def at(self, instant: datetime) -> None:
        self.clock.set(int(instant.timestamp()))

    def close(self) -> None:
        self.books.close_file()
        self.journal.close()
        self.inst.close()


@pytest.fixture(params=sorted(NIGHTS), ids=sorted(NIGHTS))
def night(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Bar, date]]:
    evening = NIGHTS[request.param]
    bar = Bar(tmp_path, evening)
    yield bar, evening
    bar.close()


def test_a_night_across_the_clock_change(night: tuple[Bar, date], tmp_path: Path) -> None:
    bar, evening = night
    opens = datetime(evening.year, evening.month, evening.day, 20, 0, tzinfo=BERLIN)
    closes = datetime.combine(evening + timedelta(days=1), datetime.min.time(), BERLIN)
    closes = closes.replace(hour=5)
    bar.register.connect()
    instant, sold = opens.astimezone(UTC), []
    while instant < closes:  # a beer every 20 minutes of real (UTC) time
        bar.at(instant)
        sold.append((instant, bar.register.sell(_bier())))
        instant += timedelta(minutes=20)
    hours = (closes.astimezone(UTC) - opens.astimezone(UTC)) // timedelta(hours=1)
    assert hours == {date(2026, 10, 24): 10, date(2026, 3, 28): 8}.get(evening, 9)
    assert len(sold) == 3 * hours

    dates = []
    for at, result in sold:
        assert result.signed is not None and result.receipt.ended_at == at
        text = render_text(result.receipt)
        (datum,) = [line for line in text.splitlines() if line.startswith("Datum: ")]
        dates.append(datum)
        # the QR code's times are the TSE's, in UTC (DSFinV-K Anhang I)
        payload = result.receipt.qr_payload or ""
        qr = parse_qr_payload(payload)
        assert qr.start_time == qr.log_time == at
        assert payload.split(";")[6:8] == [at.strftime("%Y-%m-%dT%H:%M:%S.000Z")] * 2
    # every receipt's printed date names its own instant: the repeated hour of the
    # October night printed twice the same "02:20:00" for two receipts an hour apart
    assert len(set(dates)) == len(dates), [d for d in dates if dates.count(d) > 1]
    numbers = [result.signed.transaction_number for _, result in sold if result.signed]
    assert numbers == sorted(numbers)
    bons = [int(result.receipt.receipt_number) for _, result in sold]
    assert bons == sorted(bons)

    bar.at(closes + timedelta(minutes=15))
    created = datetime.fromtimestamp(bar.clock.now(), UTC)
    counted = str(4 * len(sold))
    day = close_day(bar.register, bar.books, MASTER, counted, business_day=evening, created=created)
    assert day.closing.business_day == evening
    report = render_zreport(build_zreport(day))
    assert f"Geschäftstag: {evening.isoformat()}" in report
    assert f"Vorgänge:     {len(sold)}" in report

    export = write_export([day.closing], tmp_path / "night.zip")
    assert [f for f in check_export(export) if f.severity == "error"] == []
    (z,) = _rows(export, "cashpointclosing.csv")
    assert z["Z_BUCHUNGSTAG"] == evening.isoformat()
    assert datetime.fromisoformat(z["Z_ERSTELLUNG"]) == created
    transactions = _rows(export, "transactions.csv")
    tse_rows = {r["BON_ID"]: r for r in _rows(export, "transactions_tse.csv")}
    assert [int(r["BON_NR"]) for r in transactions] == bons
    for (at, result), row in zip(sold, transactions, strict=True):
        start, end = (datetime.fromisoformat(row[k]) for k in ("BON_START", "BON_ENDE"))
        assert start == end == at  # the same instant, with the offset in force then
        assert start.utcoffset() == at.astimezone(BERLIN).utcoffset()
        tse = tse_rows[row["BON_ID"]]
        assert int(tse["TSE_TANR"]) == result.signed.transaction_number  # type: ignore[union-attr]
        assert datetime.fromisoformat(tse["TSE_TA_START"]) == at
        assert datetime.fromisoformat(tse["TSE_TA_ENDE"]) == at

    tar = tmp_path / "tse.tar"
    with tar.open("wb") as out:
        bar.inst.service.export(TSE, out, ExportFilter(client_id=CLIENT), log_export=False)
    cross = cross_check_files(export, tar)
    assert [(f.code, f.message) for f in cross.findings] == []
    verified = verify_exports([tar], workers=1)
    assert [f for f in verified.findings if f.severity == "error"] == []


def test_receipts_printed_while_the_tse_is_down_in_the_repeated_hour(tmp_path: Path) -> None:
    """A receipt "TSE ausgefallen" has no TSE times in UTC: its Vorgangsbeginn and
    -ende are all it says about when it was made, so they must name the instant."""
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    second = first + timedelta(hours=1)  # 02:30 CET
    bar = Bar(tmp_path, date(2026, 10, 24))
    try:
        bar.at(first)
        bar.register.connect()
        bar.inst.close()  # the TSE's database is gone: every call fails
        texts = []
        for at in (first, second):
            bar.at(at)
            result = bar.register.sell(_bier())
            assert result.tse_failed
            texts.append(render_text(result.receipt))
        stamps = [
            [line for line in text.splitlines() if line.startswith("Vorgangsbeginn")]
            for text in texts
        ]
        assert stamps[0] != stamps[1]
        assert stamps[0] == ["Vorgangsbeginn: 25.10.2026 02:30:00 (UTC+02:00)"]
        assert stamps[1] == ["Vorgangsbeginn: 25.10.2026 02:30:00 (UTC+01:00)"]
        # the journal's status names when the outage began, in the same words
        message = bar.journal.status(BERLIN).message
        assert "seit 25.10.2026 02:30 (UTC+02:00)" in message, message
    finally:
        bar.books.close_file()
        bar.journal.close()


def test_local_text_names_the_offset_only_in_the_repeated_hour() -> None:
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert local_text(first, BERLIN) == "25.10.2026 02:30:00 (UTC+02:00)"
    assert local_text(first + timedelta(hours=1), BERLIN) == "25.10.2026 02:30:00 (UTC+01:00)"
    # outside the repeated hour nothing changes
    assert local_text(first + timedelta(hours=2), BERLIN) == "25.10.2026 03:30:00"
    assert local_text(datetime(2026, 3, 29, 1, 0, tzinfo=UTC), BERLIN) == "29.03.2026 03:00:00"
    assert local_text(first, BERLIN, "%H:%M") == "02:30 (UTC+02:00)"


TRANSITIONS = [
    datetime(year, month, day, 1, 0, tzinfo=UTC)
    for year, month, day in ((2025, 3, 30), (2025, 10, 26), (2026, 3, 29), (2026, 10, 25))
]


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(TRANSITIONS),
    st.integers(min_value=-3 * 3600, max_value=3 * 3600),
)
def test_printed_local_times_name_one_instant(transition: datetime, seconds: int) -> None:
    """Around each clock change, the printed text read back in Berlin's zone gives
    the instant it was printed for, and no other instant prints the same text."""
    at = transition + timedelta(seconds=seconds)
    text = local_text(at, BERLIN)
    wall, _, offset = text.partition(" (UTC")
    naive = datetime.strptime(wall, "%d.%m.%Y %H:%M:%S")
    candidates = {naive.replace(tzinfo=BERLIN, fold=fold).astimezone(UTC) for fold in (0, 1)}
    if offset:
        (read,) = [c for c in candidates if c.astimezone(BERLIN).isoformat()[-6:] == offset[:-1]]
    else:
        assert len(candidates) == 1
        (read,) = candidates
    assert read == at
    for other in (at - timedelta(hours=1), at + timedelta(hours=1)):
        assert local_text(other, BERLIN) != text


class SlowTill(EmbeddedBackend):
    """The cashier takes ten minutes between opening the receipt and paying."""

    clock: FrozenClock

    def finish(
        self, client_id: str, number: int, process_type: str, process_data: str, *, ref: str
    ) -> Signed:
        self.clock.set(self.clock.now() + 600)
        return super().finish(client_id, number, process_type, process_data, ref=ref)


def test_a_receipt_open_while_the_clocks_go_back(tmp_path: Path) -> None:
    """Started 02:55 CEST, paid 02:05 CET: the end reads earlier on the wall clock
    than the start, yet the export says the order (offsets) and passes the checks."""
    bar = Bar(tmp_path, date(2026, 10, 24))
    try:
        backend = SlowTill(bar.inst.service, TSE)
        backend.clock = bar.clock
        bar.register.backend = backend
        started = datetime(2026, 10, 25, 0, 55, tzinfo=UTC)
        bar.at(started)
        bar.register.connect()
        result = bar.register.sell(_bier())
        assert result.signed is not None
        ended = started + timedelta(minutes=10)
        assert (result.signed.start_time, result.signed.log_time) == (started, ended)
        assert "Datum: 25.10.2026 02:05:00 (UTC+01:00)" in render_text(result.receipt)
        bar.at(datetime(2026, 10, 25, 4, 15, tzinfo=UTC))
        created = datetime.fromtimestamp(bar.clock.now(), UTC)
        day = close_day(bar.register, bar.books, MASTER, "4.00", created=created)
        export = write_export([day.closing], tmp_path / "night.zip")
        assert [f for f in check_export(export) if f.severity == "error"] == []
        (row,) = _rows(export, "transactions.csv")
        assert (row["BON_START"], row["BON_ENDE"]) == (
            "2026-10-25T02:55:00+02:00",
            "2026-10-25T02:05:00+01:00",
        )
        tar = tmp_path / "tse.tar"
        with tar.open("wb") as out:
            bar.inst.service.export(TSE, out, ExportFilter(client_id=CLIENT), log_export=False)
        assert [(f.code, f.message) for f in cross_check_files(export, tar).findings] == []
    finally:
        bar.close()


@pytest.fixture
def tse_clock() -> FrozenClock:
    """The served TSE's clock (conftest's fiskaly_tss): 02:30 CEST on the night the
    clocks go back."""
    return FrozenClock(int(datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp()))


def test_over_http_the_repeated_hour_prints_apart(
    tmp_path: Path, tse_clock: FrozenClock, fiskaly_tss: Callable[[str], dict[str, str]]
) -> None:
    """A till on `opentse serve` (fiskaly SIGN DE v2): the service's unix times make
    the same receipts as the embedded TSE's, an hour apart and told apart."""
    served = fiskaly_tss(CLIENT)
    backend = RemoteBackend(served["origin"], served["api_key"], served["api_secret"],
                            served["tss"], served["client"])  # fmt: skip
    journal = OutageLog(tmp_path / "till.db")
    register = Register(
        backend,
        RegisterConfig(Seller("Nachtbar", ("Tresenweg 1",)), served["client"]),
        journal,
        clock=lambda: datetime.fromtimestamp(tse_clock.now(), UTC),
    )
    try:
        for offset in ("+02:00", "+01:00"):
            result = register.sell(_bier())
            assert result.signed is not None
            at = datetime.fromtimestamp(tse_clock.now(), UTC)
            assert result.receipt.ended_at == at
            text = render_text(result.receipt)
            assert f"Datum: 25.10.2026 02:30:00 (UTC{offset})" in text
            assert f"TSE-Stop: {at:%Y-%m-%dT%H:%M:%S}.000Z" in text
            tse_clock.set(tse_clock.now() + 3600)
    finally:
        journal.close()
        backend.close()
