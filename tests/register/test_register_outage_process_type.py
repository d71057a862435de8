"""TSE_TA_VORGANGSART of a Vorgang the TSE failed to sign is the processType the register
meant to sign: an order booked during an outage is exported as Bestellung-V1, a
receipt as Kassenbeleg-V1, a cash-book entry as SonstigerVorgang; signed ones carry the
signed processType. Books written before the processType was kept (no column) still
open, close and export, the missing processType taken from BON_TYP.

The outage is the TSE refusing the register (its client deregistered by the admin, as
in test_register_dsfinvk.py); the export goes through the DSFinV-K checker, which
verifies every signed row against the TSE's public key."""

from __future__ import annotations

import contextlib
import csv
import io
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from opentse.formats.dsfinvk.check import check_export
from opentse.formats.dsfinvk.export import write_export
from opentse.formats.dsfinvk.model import CashRegister, Company, Location
from opentse.installation import Installation
from opentse.register import EmbeddedBackend, OutageLog, Register, RegisterConfig, Sale, Seller
from opentse.register.books import Books, MasterData
from opentse.register.dsfinvk_bridge import default_process_type, dsfinvk_receipt
from opentse.register.register import SaleResult
from opentse.register.sale import CashBookEntry
from opentse.register.zreport import close_day
from opentse.testing import ADMIN_PIN, ready_tse

TSE = "tse-ptype"
CLIENT = "KASSE-PTYPE"
MASTER = MasterData(
    Company("P GmbH", "Weg 1", "12345", "Ort", vat_id="DE123456789"),
    Location("P", "Weg 1", "12345", "Ort"),
    CashRegister(CLIENT),
    TSE,
)


@pytest.fixture(scope="module")
def service() -> Iterator[Any]:
    with tempfile.TemporaryDirectory() as folder, Installation.open(Path(folder)) as inst:
        ready_tse(inst.service, TSE, client_id=CLIENT, logout=True)
        yield inst.service


@contextlib.contextmanager
def outage(service: Any) -> Iterator[None]:
    """The TSE refuses this register (client deregistered) until the block ends."""
    service.authenticate(TSE, ADMIN_PIN)
    service.deregister_client(TSE, CLIENT)
    service.logout(TSE)
    try:
        yield
    finally:
        service.authenticate(TSE, ADMIN_PIN)
        service.register_client(TSE, CLIENT)
        service.logout(TSE)


@contextlib.contextmanager
def till(service: Any, path: Path) -> Iterator[tuple[Register, Books]]:
    """A register whose journal and books share one file, as ``opentse pos`` keeps them."""
    journal, books = OutageLog(path), Books(path)
    register = Register(
        EmbeddedBackend(service, TSE),
        RegisterConfig(Seller("P", ("Weg 1", "12345 Ort")), CLIENT),
        journal,
        books=books,
    )
    try:
        register.connect()
        yield register, books
    finally:
        books.close_file()
        journal.close()


def paid(text: str, price: str) -> Sale:
    s = Sale()
    s.add_line(text, 1, price, 1)
    s.add_payment("cash", price)
    return s


def order() -> Sale:
    s = Sale()
    s.add_line('Schnitzel "Wiener Art"', 2, "14.50", 1)
    s.add_line("Apfelschorle", 1, "3.20", 1)
    return s


def csv_rows(path: Path, name: str) -> dict[str, dict[str, str]]:
    """A table of the export by BON_ID (one row per receipt in the tables read here)."""
    with zipfile.ZipFile(path) as archive:
        text = archive.read(name).decode("utf-8")
    return {r["BON_ID"]: r for r in csv.DictReader(io.StringIO(text, newline=""), delimiter=";")}


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {n: archive.read(n) for n in archive.namelist()}


def errors(path: Path) -> list[Any]:
    return [f for f in check_export(path) if f.severity == "error"]


def assert_signed_row(row: dict[str, str], result: SaleResult) -> None:
    """A signed Vorgang exports exactly what the TSE signed."""
    signed = result.signed
    assert signed is not None
    assert row["TSE_TA_VORGANGSART"] == signed.process_type
    assert row["TSE_VORGANGSDATEN"] == signed.process_data
    assert row["TSE_TANR"] == str(signed.transaction_number)
    assert row["TSE_TA_SIG"] != "" and row["TSE_TA_FEHLER"] == ""


def assert_unsigned_row(row: dict[str, str], process_type: str) -> None:
    assert row["TSE_TA_VORGANGSART"] == process_type
    assert row["TSE_TA_FEHLER"] != ""
    assert (row["TSE_TANR"], row["TSE_TA_SIG"], row["TSE_TA_SIGZ"]) == ("", "", "")


def test_outage_exports_the_process_type_the_register_meant_to_sign(
    service: Any, tmp_path: Path
) -> None:
    with till(service, tmp_path / "pos.db") as (register, books):
        signed_order = register.order(order())
        signed_sale = register.sell(paid("Brot", "3.20"))
        with outage(service):
            failed_order = register.order(order())
            failed_sale = register.sell(paid("Wein", "8.99"))
            entry, _status = register.book(CashBookEntry("Einzahlung", Decimal("50.00")))
        assert failed_order.tse_failed and failed_sale.tse_failed and entry is None
        assert failed_order.process_type == "Bestellung-V1"
        assert failed_sale.process_type == "Kassenbeleg-V1"
        after = register.sell(paid("Kuchen", "2.50"))  # the TSE is back
        assert after.signed is not None
        assert signed_order.signed is not None
        assert signed_order.signed.process_type == "Bestellung-V1"
        # the receipt built straight from the SaleResult says the same
        fresh = dsfinvk_receipt(order(), failed_order, bon_nr=1).tse
        assert fresh is not None and fresh.process_type == "Bestellung-V1"
        day = close_day(register, books, MASTER, "64.69")  # 3.20 + 8.99 + 50.00 + 2.50
        assert len(day.closing.receipts) == 6  # counted == expected: no difference booked
        path = write_export([day.closing], tmp_path / "outage.zip")
        assert errors(path) == []
        tse_rows = csv_rows(path, "transactions_tse.csv")
        assert_unsigned_row(tse_rows[failed_order.receipt_ref], "Bestellung-V1")
        assert_unsigned_row(tse_rows[failed_sale.receipt_ref], "Kassenbeleg-V1")
        (entry_ref,) = set(tse_rows) - {
            r.receipt_ref for r in (signed_order, signed_sale, failed_order, failed_sale, after)
        }
        assert_unsigned_row(tse_rows[entry_ref], "SonstigerVorgang")
        for result in (signed_order, signed_sale, after):
            assert_signed_row(tse_rows[result.receipt_ref], result)
        kinds = csv_rows(path, "transactions.csv")
        assert kinds[failed_order.receipt_ref]["BON_TYP"] == "AVBestellung"
        assert kinds[failed_sale.receipt_ref]["BON_TYP"] == "Beleg"
        again = write_export([books.closed_day(day.closing.z_nr).closing], tmp_path / "again.zip")
        assert members(again) == members(path)  # the kept processType, read back


def _drop_process_type_column(path: Path) -> None:
    """Turn a books file into one of the previous schema (no ``process_type``)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("ALTER TABLE books_receipts DROP COLUMN process_type")
        db.commit()
        columns = {str(c[1]) for c in db.execute("PRAGMA table_info(books_receipts)")}
    assert "process_type" not in columns and "error" in columns


def _process_types(path: Path) -> dict[str, str | None]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT bon_id, process_type FROM books_receipts").fetchall()
    return {str(bon_id): ptype for bon_id, ptype in rows}


def test_books_without_the_column_open_close_and_export(service: Any, tmp_path: Path) -> None:
    file = tmp_path / "old.db"
    with till(service, file) as (register, books):
        first = register.sell(paid("Brot", "3.20"))
        with outage(service):
            closed_order = register.order(order())
        day1 = close_day(register, books, MASTER, "3.20")
        before = write_export([day1.closing], tmp_path / "day1.zip")
        signed = register.sell(paid("Wein", "8.99"))
        with outage(service):
            failed_order = register.order(order())
            failed_sale = register.sell(paid("Kuchen", "2.50"))
    assert closed_order.tse_failed and failed_order.tse_failed and failed_sale.tse_failed
    _drop_process_type_column(file)

    with till(service, file) as (register, books):
        kept = _process_types(file)
        assert set(kept.values()) == {None}  # the column is back, old rows have none
        assert len(kept) == 5
        # a closing made before the change exports byte for byte as it did
        again = write_export([books.closed_day(day1.closing.z_nr).closing], tmp_path / "1b.zip")
        assert members(again) == members(before)
        rows1 = csv_rows(again, "transactions_tse.csv")
        assert_unsigned_row(rows1[closed_order.receipt_ref], "Bestellung-V1")
        assert_signed_row(rows1[first.receipt_ref], first)
        with outage(service):
            new_order = register.order(order())  # booked with the column present
        assert _process_types(file)[new_order.receipt_ref] == "Bestellung-V1"
        day2 = close_day(register, books, MASTER, "11.49")
        path = write_export([books.closed_day(1).closing, day2.closing], tmp_path / "old-books.zip")
        assert errors(path) == []
        rows = csv_rows(path, "transactions_tse.csv")
        assert_signed_row(rows[signed.receipt_ref], signed)
        assert_unsigned_row(rows[failed_order.receipt_ref], "Bestellung-V1")  # by BON_TYP
        assert_unsigned_row(rows[failed_sale.receipt_ref], "Kassenbeleg-V1")
        assert_unsigned_row(rows[new_order.receipt_ref], "Bestellung-V1")
    with till(service, file) as (_register, books):  # opens again, nothing to add
        assert books.open_count() == 0


def test_record_raw_keeps_the_process_type_or_takes_it_from_bon_typ(tmp_path: Path) -> None:
    assert default_process_type("AVBestellung") == "Bestellung-V1"
    for bon_typ in ("Beleg", "AVTraining", "AVBelegstorno", "AVBelegabbruch"):
        assert default_process_type(bon_typ) == "Kassenbeleg-V1"
    file = tmp_path / "books.db"
    books = Books(file)
    when = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    ordered = order().as_order()
    for n, (sale, ptype) in enumerate(
        ((ordered, None), (paid("Brot", "3.20"), None), (paid("Bar", "5.00"), "SonstigerVorgang")),
        start=1,
    ):
        books.record_raw(sale, bon_nr=n, bon_id=str(n), tse_id="t", start=when, end=when,
                         signed=None, error="TSE", process_type=ptype)  # fmt: skip
    books.close_file()
    assert _process_types(file) == {
        "1": "Bestellung-V1",
        "2": "Kassenbeleg-V1",
        "3": "SonstigerVorgang",
    }
