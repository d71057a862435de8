"""A sale's Start note is removed without waiting for the disk (one fsync less per
sale). A power loss can then lose the removal: the journal comes back with a note of
a Start whose transaction the TSE has finished. Simulated faithfully -- the journal
file is copied with its WAL cut after the last commit that reached the disk, i.e.
without the removal -- and recovered through the real Register against a real
embedded TSE (and a real ``opentse serve`` over HTTP): nothing is signed, aborted or
booked, the sale stays as signed."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from wal_frames import commit_ends

from opentse.engine.service import TSEService
from opentse.register import (
    CashBookEntry,
    EmbeddedBackend,
    Light,
    OutageLog,
    Register,
    RegisterConfig,
    Sale,
    Seller,
    Signed,
)
from opentse.register.books import Books
from opentse.register.remote import RemoteBackend
from opentse.testing import memory_service, ready_tse
from opentse.tr03151 import codec
from opentse.tr03151.logmessage import TransactionLogData

NOW = 1_700_000_000
TSE = "tse-1"
CLIENT = "KASSE-1"
SELLER = Seller("Café Muster", ("Musterstraße 1", "12345 Musterstadt"))


def _cut_last_commit(wal: Path) -> None:
    """Lose the WAL's last transaction, as a power loss before its fsync does: keep
    the frames up to the commit before it."""
    ends = commit_ends(wal)
    assert len(ends) >= 2, "no earlier commit to fall back to"
    wal.write_bytes(wal.read_bytes()[: ends[-2]])


def _power_loss_after_last_commit(journal_file: Path) -> Path:
    """The journal (still open: nothing checkpointed) as the disk has it when the
    power fails after its last commit, before anything synced it: a copy of the
    file and its WAL without that commit (the -shm index is rebuilt on open)."""
    crashed = journal_file.parent / "after-power-loss"
    crashed.mkdir()
    shutil.copyfile(journal_file, crashed / journal_file.name)
    shutil.copyfile(f"{journal_file}-wal", crashed / f"{journal_file.name}-wal")
    _cut_last_commit(crashed / f"{journal_file.name}-wal")
    return crashed / journal_file.name


def _logs(service: TSEService) -> list[tuple[int, bytes]]:
    return [(log.signature_counter, log.message) for log in service.store.iter_logs(TSE)]


def _transaction_logs(service: TSEService, number: int) -> list[TransactionLogData]:
    out = []
    for log in service.store.iter_logs(TSE):
        data = codec.decode_log_message(log.message).certified
        if isinstance(data, TransactionLogData) and data.transaction_number == number:
            out.append(data)
    return out


def _sell(register: Register) -> Signed | None:
    sale = Sale()
    sale.add_line("Kaffee", 2, "2.50", 1)
    sale.add_payment("cash", "5.00")
    return register.sell(sale).signed


def _order(register: Register) -> Signed | None:
    sale = Sale("AVBestellung")
    sale.add_line("Tasse Kaffee", 2, "2.50", 1)
    return register.order(sale).signed


def _cash(register: Register) -> Signed | None:
    signed, _ = register.book(CashBookEntry("Einzahlung", Decimal("50.00"), "Wechselgeld"))
    return signed


def _register(service: TSEService, journal: OutageLog, books: Books) -> Register:
    return Register(
        EmbeddedBackend(service, TSE),
        RegisterConfig(SELLER, CLIENT),
        journal,
        clock=lambda: datetime.fromtimestamp(NOW, UTC),
        books=books,
    )


@pytest.mark.parametrize(
    ("book", "process_type"),
    [(_sell, "Kassenbeleg-V1"), (_order, "Bestellung-V1"), (_cash, "SonstigerVorgang")],
)
def test_a_start_note_whose_removal_was_lost_signs_aborts_and_books_nothing(
    tmp_path: Path, book: Callable[[Register], Signed | None], process_type: str
) -> None:
    service = memory_service(now=NOW)
    ready_tse(service, TSE, client_id=CLIENT, logout=True)
    journal_file = tmp_path / "till.db"
    # the books in a file of their own: their commit does not sync the journal's WAL,
    # so the power loss can take the removal alone
    books_file = tmp_path / "books.db"
    journal, books = OutageLog(journal_file), Books(books_file)
    register = _register(service, journal, books)
    assert register.connect().light is Light.GREEN
    signed = book(register)
    assert signed is not None and signed.process_type == process_type
    number = signed.transaction_number
    assert journal.pending_starts() == []
    bon_id = books.find_bon_id("1")  # receipt number 1's BON_ID: the Start's ref

    crashed = _power_loss_after_last_commit(journal_file)
    journal.close()
    books.close_file()

    logs_before = _logs(service)
    restored, books = OutageLog(crashed), Books(books_file)
    [stale] = restored.pending_starts()  # the removal is lost, and nothing before it
    assert (stale.receipt_ref, stale.process_type) == (bon_id, process_type)

    restarted = _register(service, restored, books)
    assert restarted.connect().light is Light.GREEN  # recovery runs here

    # nothing signed: the TSE's logs are exactly those before the recovery, the
    # transaction has its Start and its own Finish, and nothing is left open
    assert _logs(service) == logs_before
    start, finish = _transaction_logs(service, number)
    assert (start.operation_type, finish.operation_type) == (
        "StartTransaction",
        "FinishTransaction",
    )
    assert finish.process_data == signed.process_data.encode()
    assert finish.process_type == process_type
    assert service.get(TSE).state.open_transactions == {}
    # the journal documents what recovery found and that it was signed all along
    assert restored.pending_starts() == []
    [dangling] = restored.dangling()
    assert (dangling.transaction_number, dangling.receipt_ref) == (number, bon_id)
    assert dangling.resolution == f"had been signed by its own Finish ({process_type})"
    # nothing booked: the books hold the one Vorgang, as signed
    assert books.open_count() == 1 and books.find_bon_id("1") == bon_id
    # the register carries on where the disk left it: the next receipt number and
    # the TSE's next transaction, two signatures later
    next_signed = _sell(restarted)
    assert next_signed is not None
    assert next_signed.transaction_number == number + 1
    assert next_signed.signature_counter == signed.signature_counter + 2
    assert books.find_bon_id("2") != bon_id and books.open_count() == 2
    restored.close()
    books.close_file()


def test_only_the_removal_skips_the_wait_for_the_disk(tmp_path: Path) -> None:
    """The removal commits with synchronous=NORMAL; the connection is back at FULL
    right after, so every other journal write still waits for the disk (checked on
    the connection itself: the setting is not visible otherwise)."""
    journal = OutageLog(tmp_path / "till.db")
    at = datetime.fromtimestamp(NOW, UTC)
    journal.record_start(
        tse_id=TSE, client_id=CLIENT, receipt_ref="r1", process_type="Kassenbeleg-V1", at=at
    )
    journal.forget_start("r1", durable=False)
    assert journal.pending_starts() == []
    assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    journal.close()


def test_the_same_over_http_signs_nothing(
    tmp_path: Path, fiskaly_tss: Callable[[str], dict[str, str]]
) -> None:
    """A RemoteBackend (fiskaly SIGN DE v2 against ``opentse serve``): the stale note
    is found by its transaction id, the Finish's revision is answered as stored, and
    the TSE's next signature follows the sale's directly."""
    served = fiskaly_tss(CLIENT)

    def remote() -> RemoteBackend:
        args = ("origin", "api_key", "api_secret", "tss", "client")
        return RemoteBackend(*(served[a] for a in args), retries=0)

    journal_file, backend = tmp_path / "till.db", remote()
    journal = OutageLog(journal_file)
    try:
        register = Register(backend, RegisterConfig(SELLER, CLIENT), journal)
        assert register.connect().light is Light.GREEN
        sale = Sale()
        sale.add_line("Kaffee", 2, "2.50", 1)
        sale.add_payment("cash", "5.00")
        sold = register.sell(sale)
        assert sold.signed is not None and journal.pending_starts() == []
        crashed = _power_loss_after_last_commit(journal_file)
    finally:
        journal.close()
        backend.close()

    restored, backend = OutageLog(crashed), remote()
    try:
        [stale] = restored.pending_starts()
        assert stale.receipt_ref == sold.receipt_ref
        restarted = Register(backend, RegisterConfig(SELLER, CLIENT), restored)
        assert restarted.connect().light is Light.GREEN
        assert restored.pending_starts() == [] and backend.open_transactions(CLIENT) == []
        [dangling] = restored.dangling()
        assert dangling.transaction_number == sold.signed.transaction_number
        assert dangling.resolution == "had been signed by its own Finish (Kassenbeleg-V1)"
        again = _sell(restarted)
        assert again is not None
        assert again.transaction_number == sold.signed.transaction_number + 1
        assert again.signature_counter == sold.signed.signature_counter + 2
    finally:
        restored.close()
        backend.close()
