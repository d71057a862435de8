"""Review of recovery's bookings: no receipt number lost, no late signature lost.

* Recovery books the abort of a printed, unsigned receipt's transaction with the
  next receipt number. The number must be the same however often recovery runs:
  a till dying between taking it and the books' commit, or two recoveries at once
  (``opentse pos`` commands of one till in two processes), must leave no gap in
  BON_NR.
* ``close_day`` closes the books; a Finish the TSE signed after the till's deadline
  must be in them before they are closed (a closed day is never changed again, so
  it would be missing from the DSFinV-K export for good; an auditor's cross-check
  with the TSE's TAR names it).

Real embedded TSE (an installation's), real books and journal; the only fault
injected is the till's death (a BaseException the register cannot catch) and a
TSE answer that does not come back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cafe_muster import CLIENT, MASTER, SELLER, TSE

from opentse.engine.export import ExportFilter
from opentse.formats.dsfinvk.check import check_export
from opentse.formats.dsfinvk.export import write_export
from opentse.installation import Installation
from opentse.register import (
    EmbeddedBackend,
    Light,
    OutageLog,
    Register,
    RegisterConfig,
    Sale,
    Signed,
)
from opentse.register.books import Books
from opentse.register.recovery_books import ABORT_LINE_TEXT, abort_bon_id
from opentse.register.sale import Sale as SaleType
from opentse.register.zreport import ZReport, build_zreport, close_day
from opentse.testing import ready_tse
from opentse.verify.crosscheck_read import cross_check_files


class Crash(BaseException):
    """The till's process dies here (not an Exception: the register cannot note it)."""


class AnswerLost(EmbeddedBackend):
    """The TSE's answer to an armed Finish never comes back: ``signed`` -- the TSE
    did sign it; ``lost`` -- it never reached the TSE."""

    mode: str | None = None

    def finish(
        self, client_id: str, number: int, process_type: str, process_data: str, *, ref: str
    ) -> Signed:
        mode, self.mode = self.mode, None
        if mode == "lost":
            raise ConnectionError("the Finish never reached the TSE")
        signed = super().finish(client_id, number, process_type, process_data, ref=ref)
        if mode == "signed":
            raise ConnectionError("the TSE's answer was lost")
        return signed


class DiesBeforeBookingAnAbort(Books):
    """The till dies once, just before the books' commit of recovery's abort."""

    armed = True

    def record_raw(self, sale: SaleType, **kwargs: Any) -> None:
        if self.armed and any(line.text == ABORT_LINE_TEXT for line in sale.lines):
            self.armed = False
            raise Crash("before the abort's books commit")
        super().record_raw(sale, **kwargs)


def _sale(amount: str = "2.50") -> Sale:
    sale = Sale()
    sale.add_line("Kaffee", 2, amount, 1)
    sale.add_payment("card", str(2 * Decimal(amount)))
    return sale


def _register(backend: EmbeddedBackend, journal: OutageLog, books: Books) -> Register:
    config = RegisterConfig(SELLER, CLIENT, timeout=5.0)
    return Register(backend, config, journal, clock=lambda: datetime.now(UTC), books=books)


def _bon_numbers(till: Path) -> list[int]:
    with sqlite3.connect(till) as db:
        return [int(r[0]) for r in db.execute("SELECT bon_nr FROM books_receipts ORDER BY 1")]


def _export_matches_the_tse(register: Register, books: Books, service: Any, path: Path) -> ZReport:
    """Close the day, export and check it, cross-check it with the TSE's TAR for the
    client (every transaction once, same data). Returns the Z report."""
    closed = close_day(register, books, MASTER, "0.00")
    export = write_export([closed.closing], path / "day.zip")
    assert [f for f in check_export(export) if f.severity == "error"] == []
    tar = path / "tse.tar"
    with tar.open("wb") as out:
        service.export(TSE, out, ExportFilter(client_id=CLIENT), log_export=False)
    cross = cross_check_files(export, tar)
    assert [(f.code, f.message) for f in cross.findings] == []
    return build_zreport(closed)


@pytest.fixture
def installation(tmp_path: Path) -> Iterator[Installation]:
    with Installation.open(tmp_path / "data") as inst:
        ready_tse(inst.service, TSE, client_id=CLIENT, logout=True)
        yield inst


def test_a_crash_before_the_abort_is_booked_leaves_no_gap_in_the_receipt_numbers(
    tmp_path: Path, installation: Installation
) -> None:
    till = tmp_path / "till.db"
    backend = AnswerLost(installation.service, TSE)
    journal, books = OutageLog(till), DiesBeforeBookingAnAbort(till)
    register = _register(backend, journal, books)
    assert register.connect().light is Light.GREEN
    backend.mode = "lost"
    assert register.sell(_sale()).tse_failed  # receipt 1, printed "TSE ausgefallen"
    with pytest.raises(Crash):
        register.sell(_sale("3.00"))  # receipt 2 booked; recovery dies before its abort
    assert _bon_numbers(till) == [1, 2]
    journal.close()
    books.close_file()

    journal, books = OutageLog(till), Books(till)  # the till starts again
    restarted = _register(EmbeddedBackend(installation.service, TSE), journal, books)
    assert restarted.connect().light is Light.GREEN
    [dangling] = journal.dangling()
    assert dangling.resolution is not None and "booked as receipt 3" in dangling.resolution
    assert books.find_bon_id("3") == abort_bon_id(TSE, dangling.transaction_number)
    assert not restarted.sell(_sale()).tse_failed  # receipt 4
    assert _bon_numbers(till) == [1, 2, 3, 4]  # no number lost
    report = _export_matches_the_tse(restarted, books, installation.service, tmp_path)
    assert report.tse_failures == 1
    journal.close()
    books.close_file()


def test_a_late_signature_is_booked_before_the_day_is_closed(
    tmp_path: Path, installation: Installation
) -> None:
    """No sale between the outage and the closing (nothing ended the outage): the
    closing itself takes over what the TSE signed."""
    till = tmp_path / "till.db"
    backend = AnswerLost(installation.service, TSE)
    journal, books = OutageLog(till), Books(till)
    register = _register(backend, journal, books)
    assert register.connect().light is Light.GREEN
    assert not register.sell(_sale()).tse_failed  # receipt 1
    backend.mode = "signed"
    late = register.sell(_sale("3.10"))  # receipt 2: the TSE signed, the till never heard
    assert late.tse_failed and late.signed is None
    report = _export_matches_the_tse(register, books, installation.service, tmp_path)
    assert report.tse_failures == 1  # printed "TSE ausgefallen", signed later
    [dangling] = journal.dangling()
    assert dangling.resolution == (
        "had been signed by its own Finish (Kassenbeleg-V1); "
        "signature added to receipt 2, printed without it"
    )
    journal.close()
    books.close_file()


@pytest.mark.parametrize("column", [None, "Kassenbeleg-V1"], ids=["null", "other-type"])
def test_an_order_in_books_older_than_the_process_type_column_gets_its_late_signature(
    tmp_path: Path, installation: Installation, column: str | None
) -> None:
    """A journal of an older version forgot the note after a failed Finish, and books
    older than the ``process_type`` column hold the order with NULL there: the row
    says AVBestellung, which was signed as Bestellung-V1 (as the DSFinV-K export
    reads it, dsfinvk_bridge.default_process_type), not Kassenbeleg-V1. A row whose
    sale cannot give the processType's data (an order has no payments, so no
    Kassenbeleg-V1) is resolved with the journal saying why, not retried for ever."""
    till = tmp_path / "till.db"
    backend = AnswerLost(installation.service, TSE)
    journal, books = OutageLog(till), Books(till)
    register = _register(backend, journal, books)
    assert register.connect().light is Light.GREEN
    order = Sale()
    order.add_line("Kaffee", 2, "2.50", 1)
    backend.mode = "signed"
    late = register.order(order)  # receipt 1: the TSE signed it, the till never heard
    assert late.tse_failed
    journal.forget_start(late.receipt_ref)  # as the older version did
    with sqlite3.connect(till) as db:  # as books older than the column hold it
        db.execute(
            "UPDATE books_receipts SET process_type = ? WHERE bon_id = ?",
            (column, late.receipt_ref),
        )
    printed = books.booked(late.receipt_ref)
    assert register.recover() != []
    [dangling] = journal.dangling()
    if column is not None:
        assert dangling.resolution == (
            "had been signed by its own Finish (Bestellung-V1); "
            "not booked: the booked sale gives no Kassenbeleg-V1 (E_PAYMENT_SHORT)"
        )
        assert books.booked(late.receipt_ref) == printed
        journal.close()
        books.close_file()
        return
    assert dangling.resolution == (
        "had been signed by its own Finish (Bestellung-V1); "
        "signature added to receipt 1, printed without it"
    )
    report = _export_matches_the_tse(register, books, installation.service, tmp_path)
    assert report.tse_failures == 1
    journal.close()
    books.close_file()
