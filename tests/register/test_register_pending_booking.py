"""The Start note carries the sale's books entry: written in the same commit as the
note and the receipt number, read back exactly, and journals from before it are
upgraded on open and recovered as they were."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wal_frames import commit_ends

from opentse.errors import FormatError
from opentse.register import (
    EmbeddedBackend,
    Light,
    OutageLog,
    Register,
    RegisterConfig,
    Sale,
    SaleLine,
    Seller,
)
from opentse.register.books import Books
from opentse.register.pending_booking import PendingBooking
from opentse.testing import memory_service, ready_tse

NOW = 1_700_000_000
TSE = "tse-1"
CLIENT = "KASSE-1"
SELLER = Seller("Café Muster", ("Musterstraße 1", "12345 Musterstadt"))


def _register(backend: EmbeddedBackend, journal: OutageLog, books: Books) -> Register:
    now = datetime.fromtimestamp(NOW, UTC)
    return Register(
        backend, RegisterConfig(SELLER, CLIENT), journal, clock=lambda: now, books=books
    )


def _sell(register: Register) -> None:
    sale = Sale()
    sale.add_line("Kaffee", 2, "2.50", 1)
    sale.add_payment("cash", "10.00")
    assert register.sell(sale).signed is not None


def _commits(wal: Path) -> int:
    """Commits in the WAL's current generation."""
    return len(commit_ends(wal))


def test_a_signed_sale_writes_its_number_note_and_books_entry_in_one_commit(
    tmp_path: Path,
) -> None:
    """The journal gets two commits per signed sale: the receipt number with the
    Start note and its books entry (waits for the disk), and the note's removal
    (does not)."""
    service = memory_service(now=NOW)
    ready_tse(service, TSE, client_id=CLIENT, logout=True)
    journal_file = tmp_path / "till.db"
    journal, books = OutageLog(journal_file), Books(tmp_path / "books.db")
    register = _register(EmbeddedBackend(service, TSE), journal, books)
    register.connect()
    _sell(register)
    before = _commits(Path(f"{journal_file}-wal"))
    _sell(register)
    assert _commits(Path(f"{journal_file}-wal")) - before == 2
    journal.close()
    books.close_file()


def test_a_journal_from_before_the_books_entry_is_upgraded_and_recovered_as_before(
    tmp_path: Path,
) -> None:
    """An old journal's pending_starts has no booking column: it is added on open,
    the old note reads back without booking and recovery treats it as it did."""
    journal_file = tmp_path / "old.db"
    with sqlite3.connect(journal_file) as db:
        db.execute(
            "CREATE TABLE pending_starts (receipt_ref TEXT PRIMARY KEY, tse_id TEXT NOT NULL, "
            "client_id TEXT NOT NULL, process_type TEXT NOT NULL, sent_at TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO pending_starts VALUES ('r1', ?, ?, 'Kassenbeleg-V1', ?)",
            (TSE, CLIENT, datetime.fromtimestamp(NOW, UTC).isoformat()),
        )
    service = memory_service(now=NOW)
    ready_tse(service, TSE, client_id=CLIENT, logout=True)
    backend = EmbeddedBackend(service, TSE)
    number = backend.start(CLIENT, "Kassenbeleg-V1", ref="r1:start").transaction_number
    backend.finish(CLIENT, number, "Kassenbeleg-V1", "Beleg^2.50_0.00_0.00_0.00_0.00^2.50:Bar",
                   ref="r1:finish")  # fmt: skip
    journal, books = OutageLog(journal_file), Books(":memory:")
    [note] = journal.pending_starts()
    assert (note.receipt_ref, note.booking) == ("r1", None)
    assert _register(backend, journal, books).connect().light is Light.GREEN
    [dangling] = journal.dangling()
    assert dangling.resolution == "had been signed by its own Finish (Kassenbeleg-V1)"
    assert books.open_count() == 0 and journal.pending_starts() == []
    journal.close()
    books.close_file()


cents = st.integers(min_value=-5000, max_value=5000).map(lambda c: Decimal(c) / 100)
texts = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), min_size=1).filter(
    str.strip
)


@st.composite
def sales(draw: st.DrawFn) -> Sale:
    sale = Sale(draw(st.sampled_from(["Beleg", "AVTraining", "AVBestellung", "AVBelegstorno"])))
    for _ in range(draw(st.integers(0, 4))):
        quantity = draw(st.sampled_from(["1", "2", "0.5", "-1", "1.250"]))
        # SaleLine, not add_line: books from before text.py may hold any text, and
        # such an entry reads back as well (add_line refuses control characters)
        sale.lines.append(SaleLine(draw(texts), Decimal(quantity), draw(cents),
                                   draw(st.integers(1, 7)),
                                   draw(st.sampled_from(["Umsatz", "Pfand", "Rabatt"])),
                                   Decimal(draw(st.sampled_from(["0", "0.10"])))))  # fmt: skip
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            sale.add_payment("cash", draw(cents), currency="USD", amount_eur=draw(cents))
        else:
            method = draw(st.sampled_from(["cash", "card", "voucher", "other"]))
            sale.add_payment(method, draw(cents), name=draw(st.sampled_from(["", "Girocard"])))
    return sale


@settings(max_examples=100, deadline=None)
@given(
    sale=sales(),
    bon_nr=st.integers(1, 2**40),
    data=st.text(),
    references=st.lists(st.uuids().map(str), max_size=3),
)
def test_a_books_entry_reads_back_exactly(
    sale: Sale, bon_nr: int, data: str, references: list[str]
) -> None:
    booking = PendingBooking(bon_nr, "tse-ä", sale, "Kassenbeleg-V1", data, tuple(references))
    back = PendingBooking.from_json(booking.to_json())
    assert back == booking
    assert [str(line.quantity) for line in back.sale.lines] == [
        str(line.quantity) for line in sale.lines
    ]  # Decimal text kept, not only its value


@pytest.mark.parametrize(
    "text", ["", "[]", '{"v": 2}', '{"v": 1, "bon_nr": 1}', '{"v": 1, "bon_nr": "x"}']
)
def test_an_unreadable_books_entry_is_a_format_error(text: str) -> None:
    with pytest.raises(FormatError) as info:
        PendingBooking.from_json(text)
    assert info.value.code == "E_JOURNAL_BOOKING"
