"""A sale the TSE signed but the books never got (the till lost power between the
TSE's Finish and the books' commit) is booked by recovery from its Start note, with
the TSE's stored signature, exactly as the sale itself would have booked it.

The crash is real: the backend is the real embedded one, and right after the TSE
answered the Finish (or right before it is sent) the journal and books files are
copied with their WALs, as the disk holds them then (every commit so far waited
for the disk). The till carries on from the copies against the same TSE."""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from cafe_muster import ABORT, CLIENT, MASTER, SELLER, TSE

from opentse.engine.service import TSEService
from opentse.formats.dsfinvk.check import check_export
from opentse.formats.dsfinvk.export import write_export
from opentse.installation import Installation
from opentse.register import (
    CashBookEntry,
    EmbeddedBackend,
    Light,
    OutageLog,
    Register,
    RegisterConfig,
    Sale,
    Signed,
)
from opentse.register.books import Books
from opentse.register.pending_booking import PendingBooking
from opentse.register.remote import RemoteBackend
from opentse.register.zreport import close_day
from opentse.testing import memory_service, ready_tse
from opentse.tr03151 import codec
from opentse.tr03151.logmessage import TransactionLogData

NOW = 1_700_000_000


class Crash(BaseException):
    """The till's process dies here (not an Exception: the register cannot note it)."""


class CrashingBackend(EmbeddedBackend):
    """The real embedded backend; when armed, the till's files are copied as the disk
    has them right after the TSE answered the Finish (``after``) or right before it
    is sent (``before``, and the process dies there)."""

    def __init__(self, service: TSEService, files: list[Path], crashed: Path) -> None:
        super().__init__(service, TSE)
        self.files, self.crashed = files, crashed
        self.armed: str | None = None

    def _copy(self) -> None:
        self.crashed.mkdir()
        for file in self.files:
            for suffix in ("", "-wal"):
                if Path(f"{file}{suffix}").exists():
                    shutil.copyfile(f"{file}{suffix}", self.crashed / f"{file.name}{suffix}")
        self.armed = None

    def finish(
        self, client_id: str, number: int, process_type: str, process_data: str, *, ref: str
    ) -> Signed:
        if self.armed == "before":
            self._copy()
            raise Crash("finish")
        signed = super().finish(client_id, number, process_type, process_data, ref=ref)
        if self.armed == "after":
            self._copy()
        return signed


def _sell(register: Register) -> tuple[str, Signed | None]:
    sale = Sale()
    sale.add_line("Kaffee", 2, "2.50", 1)
    sale.add_line("Brezel", 1, "0.90", 2)
    sale.add_payment("cash", "10.00")
    result = register.sell(sale)
    return result.receipt_ref, result.signed


def _order(register: Register) -> tuple[str, Signed | None]:
    sale = Sale("AVBestellung")
    sale.add_line("Tasse Kaffee", 2, "2.50", 1)
    result = register.order(sale)
    return result.receipt_ref, result.signed


def _storno(register: Register) -> tuple[str, Signed | None]:
    """The cancellation of receipt 1 (the first ``_sell``), pointing at it."""
    assert register.books is not None
    original = register.books.find_bon_id("1")
    storno = register.books.sale(original).storno()
    result = register.sell(storno, references=[original])
    return result.receipt_ref, result.signed


def _cash(register: Register) -> tuple[str, Signed | None]:
    signed, _ = register.book(CashBookEntry("Einzahlung", Decimal("50.00"), "Wechselgeld"))
    bon_id = register.books.find_bon_id("2") if register.books is not None else ""
    return bon_id, signed


def _register(
    backend: EmbeddedBackend | RemoteBackend,
    journal: OutageLog,
    books: Books,
    *,
    frozen: bool = True,
) -> Register:
    """The till; ``frozen``: at the memory TSE's time, else at the real time (an
    installation's TSE runs on it)."""
    now = datetime.fromtimestamp(NOW, UTC)
    clock = (lambda: now) if frozen else (lambda: datetime.now(UTC))
    return Register(backend, RegisterConfig(SELLER, CLIENT), journal, clock=clock, books=books)


def _row(books_file: Path, bon_id: str) -> tuple[object, ...]:
    with sqlite3.connect(books_file) as db:
        row = db.execute(
            "SELECT bon_nr, bon_id, tse_id, started_at, ended_at, sale, signed, error, z_nr, "
            "process_type FROM books_receipts WHERE bon_id = ?",
            (bon_id,),
        ).fetchone()
        references = db.execute(
            "SELECT ref_bon_id, ref_type FROM books_references WHERE bon_id = ?", (bon_id,)
        ).fetchall()
    assert row is not None, bon_id
    return (*row, references)


def _logs(service: TSEService) -> list[tuple[int, bytes]]:
    return [(log.signature_counter, log.message) for log in service.store.iter_logs(TSE)]


def _finish_data(service: TSEService, number: int) -> bytes:
    for log in service.store.iter_logs(TSE):
        data = codec.decode_log_message(log.message).certified
        if (
            isinstance(data, TransactionLogData)
            and data.transaction_number == number
            and data.operation_type == "FinishTransaction"
        ):
            return data.process_data
    raise AssertionError(f"no Finish of transaction {number}")


def _csv(path: Path, name: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(path) as archive:
        text = archive.read(name).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


@pytest.mark.parametrize("shared_file", [False, True], ids=["books-apart", "one-file"])
@pytest.mark.parametrize(
    ("book", "process_type"),
    [
        (_sell, "Kassenbeleg-V1"),
        (_storno, "Kassenbeleg-V1"),
        (_order, "Bestellung-V1"),
        (_cash, "SonstigerVorgang"),
    ],
)
def test_a_sale_lost_between_finish_and_books_is_booked_by_recovery(
    tmp_path: Path,
    book: Callable[[Register], tuple[str, Signed | None]],
    process_type: str,
    shared_file: bool,
) -> None:
    # an installation's TSE: it has a certificate, which the export's tse.csv needs
    with Installation.open(tmp_path / "data") as inst:
        ready_tse(inst.service, TSE, client_id=CLIENT, logout=True)
        _lose_and_recover(tmp_path, inst.service, book, process_type, shared_file)


def _lose_and_recover(
    tmp_path: Path,
    service: TSEService,
    book: Callable[[Register], tuple[str, Signed | None]],
    process_type: str,
    shared_file: bool,
) -> None:
    journal_file = tmp_path / "till.db"
    books_file = journal_file if shared_file else tmp_path / "books.db"
    files = [journal_file] if shared_file else [journal_file, books_file]
    backend = CrashingBackend(service, files, tmp_path / "crashed")
    journal, books = OutageLog(journal_file), Books(books_file)
    register = _register(backend, journal, books, frozen=False)
    assert register.connect().light is Light.GREEN
    _, first = _sell(register)  # receipt 1, booked as usual
    assert first is not None
    backend.armed = "after"
    bon_id, signed = book(register)  # receipt 2: the disk is copied after its Finish
    assert signed is not None and signed.process_type == process_type
    assert backend.armed is None
    # what the till booked without the crash: the rows recovery must write
    normal = _row(books_file, bon_id)
    journal.close()
    books.close_file()

    crashed_journal = tmp_path / "crashed" / journal_file.name
    crashed_books = tmp_path / "crashed" / books_file.name
    shutil.copytree(tmp_path / "crashed", tmp_path / "crashed-again")
    journal, books = OutageLog(crashed_journal), Books(crashed_books)
    assert books.missing([bon_id]) == [bon_id] and books.open_count() == 1
    [note] = journal.pending_starts()
    assert note.receipt_ref == bon_id and note.booking is not None
    assert PendingBooking.from_json(note.booking).bon_nr == 2

    logs_before = _logs(service)
    restarted = _register(EmbeddedBackend(service, TSE), journal, books, frozen=False)
    assert restarted.connect().light is Light.GREEN  # recovery books it here
    assert _logs(service) == logs_before  # nothing signed: the stored Finish answered
    assert _finish_data(service, signed.transaction_number) == signed.process_data.encode()
    recovered = _row(crashed_books, bon_id)
    assert recovered == normal  # the same row: sale, numbers, signature, times
    assert books.open_count() == 2 and books.find_bon_id("2") == bon_id
    assert f'"counter": {signed.signature_counter}' in str(recovered[6])
    assert f'"number": {signed.transaction_number}' in str(recovered[6])
    if book is _storno:  # its reference to the original is booked with it
        assert recovered[-1] == [(books.find_bon_id("1"), "Transaktion")]
    assert journal.pending_starts() == []
    [dangling] = journal.dangling()
    assert (dangling.transaction_number, dangling.receipt_ref) == (
        signed.transaction_number,
        bon_id,
    )
    assert dangling.resolution == (
        f"had been signed by its own Finish ({process_type}); booked by recovery as receipt 2"
    )

    # recovery twice books once: again on the same files, and from the journal as
    # the disk had it (its note back, as if the crash came before the note went)
    assert restarted.recover() == []
    assert books.open_count() == 2
    journal.close()
    again = OutageLog(tmp_path / "crashed-again" / journal_file.name)
    assert len(again.pending_starts()) == 1
    second = _register(EmbeddedBackend(service, TSE), again, books, frozen=False)
    assert second.connect().light is Light.GREEN
    assert again.pending_starts() == [] and books.open_count() == 2
    assert _row(crashed_books, bon_id) == normal
    [dangling] = again.dangling()
    assert dangling.resolution == f"had been signed by its own Finish ({process_type})"

    # the day's DSFinV-K export holds it, with the TSE's signature, and passes
    closed = close_day(second, books, MASTER, "5.40")
    assert [r.bon_id for r in closed.closing.receipts].count(bon_id) == 1
    export = write_export([closed.closing], tmp_path / "day.zip")
    assert [f for f in check_export(export) if f.severity == "error"] == []
    [tse_row] = [r for r in _csv(export, "transactions_tse.csv") if r["BON_ID"] == bon_id]
    assert tse_row["TSE_TANR"] == str(signed.transaction_number)
    assert tse_row["TSE_TA_SIGZ"] == str(signed.signature_counter)
    assert tse_row["TSE_TA_VORGANGSART"] == process_type
    [tx] = [r for r in _csv(export, "transactions.csv") if r["BON_ID"] == bon_id]
    assert tx["BON_NR"] == "2"
    again.close()
    books.close_file()


def test_a_sale_whose_finish_never_reached_the_tse_is_booked_as_aborted(
    tmp_path: Path,
) -> None:
    service = memory_service(now=NOW)
    ready_tse(service, TSE, client_id=CLIENT, logout=True)
    journal_file, books_file = tmp_path / "till.db", tmp_path / "books.db"
    backend = CrashingBackend(service, [journal_file, books_file], tmp_path / "crashed")
    journal, books = OutageLog(journal_file), Books(books_file)
    register = _register(backend, journal, books)
    assert register.connect().light is Light.GREEN
    _sell(register)
    backend.armed = "before"
    with pytest.raises(Crash):
        _sell(register)  # the Start is signed, the Finish never sent
    [note] = journal.pending_starts()
    [number] = [tx.transaction_number for tx in backend.open_transactions(CLIENT)]
    journal.close()
    books.close_file()

    journal = OutageLog(tmp_path / "crashed" / journal_file.name)
    books = Books(tmp_path / "crashed" / books_file.name)
    assert [p.receipt_ref for p in journal.pending_starts()] == [note.receipt_ref]
    restarted = _register(EmbeddedBackend(service, TSE), journal, books)
    assert restarted.connect().light is Light.GREEN
    assert _finish_data(service, number) == ABORT.encode()  # aborted, as before
    assert backend.open_transactions(CLIENT) == []
    [dangling] = journal.dangling()
    assert dangling.resolution == (
        "finished as aborted (Kassenbeleg-V1); booked as receipt 2 (AVBelegabbruch)"
    )
    assert journal.pending_starts() == []
    # not as the sale: as recovery's abort, under the number the lost sale had taken
    assert books.sale(note.receipt_ref).bon_typ == "AVBelegabbruch"
    assert books.sale(note.receipt_ref).total == 0
    assert books.find_bon_id("2") == note.receipt_ref and books.open_count() == 2
    _, next_signed = _sell(restarted)  # receipt 3
    assert next_signed is not None and books.find_bon_id("3")
    journal.close()
    books.close_file()


class CrashingRemote(RemoteBackend):
    """The real fiskaly-compatible client; the till's files are copied right after
    the service answered the Finish."""

    def __init__(self, served: dict[str, str], files: list[Path], crashed: Path) -> None:
        args = ("origin", "api_key", "api_secret", "tss", "client")
        super().__init__(*(served[a] for a in args), retries=0)
        self.files, self.crashed = files, crashed
        self.armed = False

    def finish(
        self, client_id: str, number: int, process_type: str, process_data: str, *, ref: str
    ) -> Signed:
        signed = super().finish(client_id, number, process_type, process_data, ref=ref)
        if self.armed:
            self.armed = False
            self.crashed.mkdir()
            for file in self.files:
                for suffix in ("", "-wal"):
                    shutil.copyfile(f"{file}{suffix}", self.crashed / f"{file.name}{suffix}")
        return signed


def test_the_same_over_http_books_the_service_s_stored_signature(
    tmp_path: Path, fiskaly_tss: Callable[[str], dict[str, str]]
) -> None:
    """Against ``opentse serve`` (fiskaly SIGN DE v2): the Finish's revision is
    answered as stored and booked with the row the sale itself wrote."""
    served = fiskaly_tss(CLIENT)
    journal_file = tmp_path / "till.db"
    backend = CrashingRemote(served, [journal_file], tmp_path / "crashed")
    journal, books = OutageLog(journal_file), Books(journal_file)
    try:
        register = _register(backend, journal, books, frozen=False)
        assert register.connect().light is Light.GREEN
        backend.armed = True
        bon_id, signed = _sell(register)
        assert signed is not None and not backend.armed
        normal = _row(journal_file, bon_id)
    finally:
        journal.close()
        books.close_file()
        backend.close()

    crashed = tmp_path / "crashed" / journal_file.name
    journal, books = OutageLog(crashed), Books(crashed)
    backend = CrashingRemote(served, [], tmp_path / "unused")
    try:
        assert books.missing([bon_id]) == [bon_id]
        assert _register(backend, journal, books, frozen=False).connect().light is Light.GREEN
        assert _row(crashed, bon_id) == normal
        assert journal.pending_starts() == [] and backend.open_transactions(CLIENT) == []
        [dangling] = journal.dangling()
        assert dangling.resolution == (
            "had been signed by its own Finish (Kassenbeleg-V1); booked by recovery as receipt 1"
        )
    finally:
        journal.close()
        books.close_file()
        backend.close()
