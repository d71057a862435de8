"""Closings in the books: kept so they export again with the same content, references
from a cancellation to its original (also across closings), the Z report, the VAT
rate in force, and bad input refused at booking time (never at export)."""

from __future__ import annotations

import csv
import dataclasses
import io
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from opentse.cli.dsfinvk import select_closings
from opentse.errors import FormatError, ProtocolError
from opentse.formats.dsfinvk.check import check_export
from opentse.formats.dsfinvk.export import write_export
from opentse.formats.dsfinvk.model import CashRegister, Company, Location
from opentse.formats.dsfinvk.tables import vat_rate
from opentse.installation import Installation
from opentse.register import EmbeddedBackend, OutageLog, Register, RegisterConfig, Sale, Seller
from opentse.register.books import Books, MasterData
from opentse.register.shoptime import local_day, shop_zone
from opentse.register.zreport import build_zreport, close_day, render_pdf, render_text
from opentse.testing import ready_tse

CLIENT = "KASSE-BOOKS-Z"
MASTER = MasterData(
    Company("Z GmbH", "Weg 1", "12345", "Ort", vat_id="DE123456789"),
    Location("Z", "Weg 1", "12345", "Ort"),
    CashRegister(CLIENT),
    "tse-zb",
)


@dataclass
class Till:
    register: Register
    books: Books


@pytest.fixture(scope="module")
def service() -> Iterator[Any]:
    with tempfile.TemporaryDirectory() as folder, Installation.open(Path(folder)) as inst:
        ready_tse(inst.service, "tse-zb", client_id=CLIENT, logout=True)
        yield inst.service


@pytest.fixture
def till(service: Any) -> Iterator[Till]:
    books, journal = Books(":memory:"), OutageLog(":memory:")
    register = Register(
        EmbeddedBackend(service, "tse-zb"),
        RegisterConfig(Seller("Z", ("Weg 1", "12345 Ort")), CLIENT),
        journal,
        books=books,
    )
    register.connect()
    yield Till(register, books)
    books.close_file()
    journal.close()


def sale(*lines: tuple[str, str, int], pay: str = "cash") -> Sale:
    s = Sale()
    for text, price, key in lines:
        s.add_line(text, 1, price, key)
    s.add_payment(pay, s.total)
    return s


def csv_rows(path: Path, name: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(path) as archive:
        text = archive.read(name).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {n: archive.read(n) for n in archive.namelist()}


def test_closing_exports_again_the_same_and_storno_refers_across_closings(
    till: Till, tmp_path: Path
) -> None:
    first = sale(("Brot", "3.20", 2), ("Wein", "8.99", 1))
    original = till.register.sell(first)
    day1 = close_day(till.register, till.books, MASTER, "12.19")
    at_close = write_export([day1.closing], tmp_path / "z1.zip")
    again = write_export([till.books.closed_day(1).closing], tmp_path / "z1-again.zip")
    assert members(at_close) == members(again)
    storno = till.register.sell(first.storno())
    till.books.add_reference(storno.receipt_ref, original.receipt_ref)
    day2 = close_day(till.register, till.books, MASTER, "0.00")
    assert (day2.opening_cash, day2.counted_cash) == (Decimal("12.19"), Decimal("0.00"))
    both = write_export([d.closing for d in till.books.closed_days()], tmp_path / "both.zip")
    assert [f for f in check_export(both) if f.severity == "error"] == []
    (ref,) = csv_rows(both, "references.csv")
    assert (ref["Z_NR"], ref["BON_ID"], ref["REF_TYP"]) == ("2", storno.receipt_ref, "Transaktion")
    assert (ref["REF_Z_NR"], ref["REF_BON_ID"]) == ("1", original.receipt_ref)
    assert ref["REF_Z_KASSE_ID"] == CLIENT
    assert ref["REF_DATUM"] == local_day(day1.closing.created, shop_zone()).isoformat()
    with pytest.raises(ProtocolError) as info:
        till.books.add_reference(storno.receipt_ref, "no-such-receipt")
    assert info.value.code == "E_BOOKS_REFERENCE"


def test_z_report_text_pdf_json(till: Till) -> None:
    till.register.sell(sale(("Kaffee", "2.50", 1), ("Brezel", "0.90", 2)))
    till.register.sell(sale(("Zeitung", "2.20", 2), pay="card"))
    training = sale(("Probe", "1.00", 1))
    training.bon_typ = "AVTraining"
    till.register.sell(training)
    report = build_zreport(close_day(till.register, till.books, MASTER, "3.50"))
    assert report.expected_cash == Decimal("3.40") and report.difference == Decimal("0.10")
    assert report.total == Decimal("5.70")  # 3.40 + 2.20 + 0.10; training does not count
    assert [(v.key, v.gross) for v in report.vat] == [
        (1, Decimal("2.50")),
        (2, Decimal("3.10")),
        (5, Decimal("0.10")),
    ]
    assert sum(v.net + v.vat for v in report.vat) == report.total
    assert ("AVTraining", 1, Decimal("1.00")) in report.receipts_by_type
    text = render_text(report)
    assert "Kassenbestand IST (gezählt)" in text and "3,50" in text
    assert "AVTraining x1 (zählt nicht)" in text
    assert all(len(line) <= 48 for line in text.splitlines())
    assert render_pdf(report).startswith(b"%PDF")
    body = report.to_json()
    assert body["difference"] == "0.10" and body["z_nr"] == 1


def test_vat_rate_in_force_and_zero_payments(till: Till, tmp_path: Path) -> None:
    farm = Sale()
    farm.add_line("Kartoffeln", 2, "3.00", 3)
    farm.add_payment("card", "0.00")
    farm.add_payment("cash", "6.00")
    result = till.register.sell(farm)
    assert result.signed is not None
    assert result.signed.process_data == "Beleg^0.00_0.00_6.00_0.00_0.00^6.00:Bar"
    day = close_day(till.register, till.books, MASTER, "6.00")
    path = write_export([day.closing], tmp_path / "farm.zip")
    assert [f for f in check_export(path) if f.severity == "error"] == []
    today = datetime.now(shop_zone()).date()  # the shop's day
    rate = {r["UST_SCHLUESSEL"]: r["UST_SATZ"] for r in csv_rows(path, "vat.csv")}["3"]
    assert Decimal(rate.replace(",", ".")) == vat_rate(3, today)
    assert [r["ZAHLART_TYP"] for r in csv_rows(path, "datapayment.csv")] == ["Bar"]


def test_bad_amounts_are_refused_when_booked(till: Till) -> None:
    s = Sale()
    for call, code in (
        (lambda: s.add_line("Kaffee", 1, "2.505", 1), "E_AMOUNT_PRECISION"),
        (lambda: s.add_line("Kaffee", "0.0005", "2.50", 1), "E_QUANTITY_PRECISION"),
        (lambda: s.add_payment("cash", "1.001"), "E_AMOUNT_PRECISION"),
        (lambda: s.add_discount("Rabatt", "0.123", 1), "E_AMOUNT_PRECISION"),
        (lambda: s.add_line("Kaffee", 1, 2.5, 1), "E_AMOUNT_FORMAT"),  # type: ignore[arg-type]
    ):
        with pytest.raises(ProtocolError) as info:
            call()
        assert info.value.code == code
    assert s.lines == [] and s.payments == []
    till.register.sell(sale(("Tee", "1.80", 1)))
    with pytest.raises(ProtocolError) as info:
        close_day(till.register, till.books, MASTER, "1.805")
    assert info.value.code == "E_AMOUNT_PRECISION"
    assert till.books.open_count() == 1  # nothing closed, nothing booked


def test_select_closings_refuses_open_days_and_empty_ranges(till: Till) -> None:
    with pytest.raises(FormatError) as empty:
        select_closings(till.books, None, None)
    assert empty.value.code == "E_DSFINVK_EMPTY" and "nothing was closed" in empty.value.message
    till.register.sell(sale(("Tee", "1.80", 1)))
    today = datetime.now(shop_zone()).date()  # the shop's day
    with pytest.raises(ProtocolError) as still_open:
        select_closings(till.books, today, today)
    assert still_open.value.code == "E_DSFINVK_NOT_CLOSED"
    assert today.isoformat() in still_open.value.message
    close_day(till.register, till.books, MASTER, "1.80")
    assert [c.z_nr for c in select_closings(till.books, today, None)] == [1]
    with pytest.raises(FormatError) as other:
        select_closings(till.books, date(2020, 1, 1), date(2020, 1, 2))
    assert other.value.code == "E_DSFINVK_EMPTY" and today.isoformat() in other.value.message
    with pytest.raises(ProtocolError) as backwards:
        select_closings(till.books, today, date(2020, 1, 1))
    assert backwards.value.code == "E_DSFINVK_DATE"


def test_restaurant_order_is_exported_as_avbestellung(till: Till, tmp_path: Path) -> None:
    order = Sale()
    order.add_line('Schnitzel "Wiener Art"', 2, "14.50", 1)
    order.add_line("Apfelschorle", 1, "3.20", 1)
    signed = till.register.order(order).signed
    assert signed is not None and signed.process_type == "Bestellung-V1"
    final = sale(('Schnitzel "Wiener Art"', "29.00", 1), ("Apfelschorle", "3.20", 1))
    till.register.sell(final)
    day = close_day(till.register, till.books, MASTER, "32.20")
    kinds = [r.bon_typ for r in day.closing.receipts]
    assert kinds == ["AVBestellung", "Beleg"]
    assert build_zreport(day).total == Decimal("32.20")  # the order is no business case
    path = write_export([day.closing], tmp_path / "order.zip")
    assert [f for f in check_export(path) if f.severity == "error"] == []


def test_plain_sale_order_the_tse_failed_to_sign_still_closes(
    service: Any, till: Till, tmp_path: Path
) -> None:
    """An order booked as ``Sale()`` is an AVBestellung in the books even when its TSE
    call fails (the closing once saw an unpaid Beleg: E_DSFINVK_MODEL at export)."""
    unknown = Register(  # same books, journal and TSE; a client the TSE does not know
        EmbeddedBackend(service, "tse-zb"),
        RegisterConfig(Seller("Z", ("Weg 1", "12345 Ort")), "KASSE-NOT-REGISTERED"),
        till.register.journal,
        books=till.books,
    )
    order = Sale()
    order.add_line("Schnitzel", 2, "14.50", 1)
    ordered = unknown.order(order)
    assert ordered.tse_failed and ordered.receipt.bon_typ == "AVBestellung"
    assert "BESTELLUNG" in ordered.to_json()["receipt_text"]
    assert till.books.sale(ordered.receipt_ref).bon_typ == "AVBestellung"
    till.register.sell(sale(("Schnitzel", "29.00", 1)))
    day = close_day(till.register, till.books, MASTER, "29.00")
    assert [r.bon_typ for r in day.closing.receipts] == ["AVBestellung", "Beleg"]
    assert build_zreport(day).total == Decimal("29.00")
    path = write_export([day.closing], tmp_path / "failed-order.zip")
    assert [f for f in check_export(path) if f.severity == "error"] == []


def test_orders_with_payments_or_other_types_are_refused_before_signing(till: Till) -> None:
    paid = sale(("Schnitzel", "14.50", 1))
    training = Sale("AVTraining")
    training.add_line("Schnitzel", 1, "14.50", 1)
    before = till.books.open_count()
    for order, code in ((paid, "E_ORDER_PAYMENT"), (training, "E_ORDER_BON_TYP")):
        with pytest.raises(ProtocolError) as info:
            till.register.order(order)
        assert info.value.code == code
    assert till.books.open_count() == before


def test_storno_and_its_reference_are_booked_in_one_transaction(
    service: Any, till: Till, tmp_path: Path
) -> None:
    first = sale(("Brot", "3.20", 2))
    original = till.register.sell(first)
    logs = len(list(service.logs("tse-zb")))
    with pytest.raises(ProtocolError) as unknown:
        till.register.sell(first.storno(), references=("no-such-receipt",))
    assert unknown.value.code == "E_BOOKS_REFERENCE"
    assert len(list(service.logs("tse-zb"))) == logs  # refused before any TSE call
    assert till.books.open_count() == 1
    storno = till.register.sell(first.storno(), references=(original.receipt_ref,))
    assert till.books.referenced_by(original.receipt_ref) == [storno.receipt_ref]
    day = close_day(till.register, till.books, MASTER, "0.00")
    (receipt,) = [r for r in day.closing.receipts if r.bon_id == storno.receipt_ref]
    assert [r.ref_bon_id for r in receipt.references] == [original.receipt_ref]
    path = write_export([day.closing], tmp_path / "storno.zip")
    assert [f for f in check_export(path) if f.severity == "error"] == []


def test_a_booking_whose_reference_fails_books_nothing() -> None:
    books = Books(":memory:")
    when = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    books.record_raw(sale(("Brot", "3.20", 2)), bon_nr=1, bon_id="a", tse_id="t",
                     start=when, end=when, signed=None, error="TSE")  # fmt: skip
    with pytest.raises(ProtocolError) as info:
        books.record_raw(sale(("Brot", "3.20", 2)).storno(), bon_nr=2, bon_id="b", tse_id="t",
                         start=when, end=when, signed=None, error="TSE",
                         references=("a", "missing"))  # fmt: skip
    assert info.value.code == "E_BOOKS_REFERENCE"
    assert books.open_count() == 1 and books.referenced_by("a") == []  # rolled back, both
    assert books.missing(["a", "b", "missing"]) == ["b", "missing"]
    books.close_file()


@pytest.mark.parametrize("width", [32, 48, 64])
def test_z_report_wraps_a_long_register_serial_and_company(till: Till, width: int) -> None:
    """Z_KASSE_ID is the register's TSE client id, up to 100 characters (fiskaly's are
    'ERS <uuid>'): the Z report cut it (and the company) at the paper's width."""
    till.register.sell(sale(("Kaffee", "2.50", 1)))
    report = build_zreport(close_day(till.register, till.books, MASTER, "2.50"))
    serial = "ERS 8cb8e2de-4052-481b-945b-118022951944-Kasse-im-Obergeschoss"
    company = "Bäckerei und Konditorei Müller & Söhne GmbH & Co. KG, Filiale Hauptstraße"
    text = render_text(dataclasses.replace(report, z_kasse_id=serial, company=company), width=width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), [ln for ln in lines if len(ln) > width]
    assert serial in "".join(line.strip() for line in lines)
    assert " ".join(company.split()) in " ".join(" ".join(lines).split())
