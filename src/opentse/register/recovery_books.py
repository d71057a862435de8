"""Every TSE transaction recovery finishes is accounted for in the books, once.

An auditor matches the TSE's export against the DSFinV-K export (transactions_tse.csv:
TSE_TANR, times, counter, signature), so a transaction the TSE signed for this
register must appear there exactly once. Recovery (recovery.py) finishes two kinds
that the sale itself never booked as signed:

* a transaction it **aborted** (``AVBelegabbruch``; DSFinV-K 2.4 records aborted
  Vorgänge too; :func:`aborted_sale`). When the till died before its receipt was
  printed and booked, the abort is booked under that receipt's own id and number
  (the number would otherwise be a gap). When the receipt was printed "TSE
  ausgefallen" and booked unsigned, the abort is a Vorgang of its own (a new number,
  a reference to that receipt) and TSE_TA_FEHLER says whose transaction it was. An
  open transaction of the client no receipt of this register claims (an abandoned
  one) is booked as an abort too. Aborts have one 0.00 line, no payments and zero
  amounts, as their processData.
* a sale whose **Finish the TSE signed** although the till got no answer in time:
  the printed receipt (and its books row) stays as it is -- sale, times, number --
  and gets the TSE's Finish log, with TSE_TA_FEHLER saying it was printed without
  signature (:meth:`Books.add_late_signature`). A day already closed is never
  changed; the journal then says so.

Only the transaction's own data is booked: the Finish log the TSE answered, matched
against what the sale's Start note meant to sign (pending_booking.matches; without
a note, as journals of older versions forgot it, against the processData of the
receipt's booked sale), and a TSE transaction already in the books (by its number)
is never booked again, so recovery may run any number of times.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from opentse.errors import FormatError, ProtocolError
from opentse.formats import processdata as pd
from opentse.register.backends import Signed
from opentse.register.books import Books
from opentse.register.books_schema import BookedReceipt
from opentse.register.dsfinvk_bridge import default_process_type
from opentse.register.outage import OutageLog
from opentse.register.pending_booking import PendingBooking, book_recovered, matches
from opentse.register.recovery_journal import PendingStart
from opentse.register.sale import Sale

#: BON_IDs of aborts booked as Vorgänge of their own: one per (TSE, transaction).
ABORT_NAMESPACE = uuid.UUID("6f1c8f0e-3b57-4d0c-9a43-2f5a4b1c7d21")

#: The text of the one (0.00) line of an abort recovery booked.
ABORT_LINE_TEXT = "Vorgang abgebrochen (Wiederherstellung)"

#: How TSE_TA_FEHLER of a receipt printed unsigned but signed by the TSE begins.
LATE_SIGNATURE_PREFIX = "Beleg als TSE-Ausfall gedruckt ("

#: TSE_TA_FEHLER is A200 (DSFinV-K Anhang G).
FEHLER_MAX = 200


def printed_as_failure(signature: bytes, error: str) -> bool:
    """Was the receipt printed "TSE ausgefallen"? Unsigned, or signed only later. An
    abort recovery booked carries a TSE_TA_FEHLER note but was never printed."""
    return not signature or error.startswith(LATE_SIGNATURE_PREFIX)


def abort_bon_id(tse_id: str, transaction_number: int) -> str:
    """The BON_ID of the abort of a transaction no unprinted receipt claims: the same
    on every recovery run (36 characters, within BON_ID's 40)."""
    return str(uuid.uuid5(ABORT_NAMESPACE, f"{tse_id}:{transaction_number}"))


def aborted_sale() -> Sale:
    """The Vorgang of recovery's abort: one line of 0.00 (a DSFinV-K receipt has at
    least one Bonpos) at the normal rate, no payments: its Kassenbeleg-V1 processData
    rebuilt from the rows is the signed ``AVBelegabbruch^0.00_..._0.00^``."""
    sale = Sale("AVBelegabbruch")
    sale.add_line(ABORT_LINE_TEXT, 1, "0.00", 1)
    return sale


def late_signature_note(reason: str) -> str:
    """TSE_TA_FEHLER of a receipt printed without signature whose Finish the TSE had
    signed: why it was printed so, and that the signature was taken over later."""
    head = LATE_SIGNATURE_PREFIX
    tail = "); die TSE hatte ihn signiert, Signatur nachträglich übernommen"
    room = FEHLER_MAX - len(head) - len(tail)
    reason = reason or "keine Antwort"
    if len(reason) > room:
        reason = reason[: room - 3] + "..."
    return f"{head}{reason}{tail}"


def abort_note(bon_nr: int) -> str:
    """TSE_TA_FEHLER of the abort of a printed, unsigned receipt's transaction."""
    return (
        f"Transaktion des als TSE-Ausfall gedruckten Belegs {bon_nr}, "
        "von der Wiederherstellung als Abbruch beendet"
    )


@dataclass(frozen=True)
class RecoveredTransaction:
    """A transaction recovery finished: the TSE's answer (its number is the
    Finish's) and what the register knows of it (its receipt's id, the sale's Start
    note if it still has it, and whether the Finish is recovery's own abort)."""

    tse_id: str
    receipt_ref: str
    pending: PendingStart | None
    signed: Signed
    aborted: bool


def account(books: Books, journal: OutageLog, tx: RecoveredTransaction) -> str:
    """Book ``tx`` where it belongs (see the module text); what to add to the
    journal's resolution ("" when the books have it already). Raises what the books
    raise: the note and dangling record then stay for the next recovery."""
    if books.bon_id_of_transaction(tx.tse_id, tx.signed.transaction_number) is not None:
        return ""  # booked already (recovery run twice, or the sale's own commit)
    booking = None
    if tx.pending is not None and tx.pending.booking is not None:
        try:
            booking = PendingBooking.from_json(tx.pending.booking)
        except FormatError as exc:
            return f"; not booked: {exc}"
    if booking is not None and matches(booking, tx.signed):
        return _book_sale(books, tx, booking)
    if tx.aborted:
        return _book_abort(books, journal, tx, booking)
    if booking is not None:
        return "; not booked: its processData differs from the noted sale's"
    return _sign_booked_without_note(books, tx)


def _sign_booked_without_note(books: Books, tx: RecoveredTransaction) -> str:
    """A journal from before the note stayed after a failed Finish: the receipt's
    books row says what the sale meant to sign (Kassenbeleg-V1, Bestellung-V1)."""
    booked = books.booked(tx.receipt_ref) if tx.receipt_ref else None
    if booked is None or booked.signed:
        return ""  # nothing says what the sale meant to sign: never booked as it
    sale = books.sale(tx.receipt_ref)
    # NULL in books older than the column: by BON_TYP, as the DSFinV-K export reads
    # it (an AVBestellung row is an order, signed as Bestellung-V1)
    process_type = booked.process_type or default_process_type(sale.bon_typ)
    try:
        if process_type == pd.PROCESS_TYPE_KASSENBELEG:
            meant = sale.process_data()
        elif process_type == pd.PROCESS_TYPE_BESTELLUNG:
            meant = sale.order_process_data()
        else:
            return "; not booked: no Start note to match its processData with"
    except (ProtocolError, FormatError) as exc:  # the row gives no such processData:
        # it cannot be this Finish, and asking again would only fail again
        return f"; not booked: the booked sale gives no {process_type} ({exc.code})"
    if (tx.signed.process_type, tx.signed.process_data) != (process_type, meant):
        return "; not booked: its processData differs from the booked sale's"
    return _late_signature(books, tx, booked)


def _book_sale(books: Books, tx: RecoveredTransaction, booking: PendingBooking) -> str:
    """The sale's own Finish: booked if the books lack it, else signs its row."""
    booked = books.booked(tx.receipt_ref)
    if booked is None:
        book_recovered(books, tx.receipt_ref, booking, tx.signed)
        return f"; booked by recovery as receipt {booking.bon_nr}"
    return _late_signature(books, tx, booked)


def _late_signature(books: Books, tx: RecoveredTransaction, booked: BookedReceipt) -> str:
    if booked.signed:
        return ""
    if books.add_late_signature(tx.receipt_ref, tx.signed, late_signature_note(booked.error)):
        return f"; signature added to receipt {booked.bon_nr}, printed without it"
    return f"; not booked: receipt {booked.bon_nr} is closed unsigned"


def _book_abort(
    books: Books, journal: OutageLog, tx: RecoveredTransaction, booking: PendingBooking | None
) -> str:
    """Recovery's own abort (AVBelegabbruch, zero amounts, no payments)."""
    printed = books.booked(tx.receipt_ref) if tx.receipt_ref else None
    refs: tuple[str, ...] = ()
    if booking is not None and printed is None:
        # the till died before printing and booking: the abort takes the receipt's place
        bon_id, bon_nr, note = tx.receipt_ref, booking.bon_nr, ""
    else:
        # booked already is ruled out by account() (the row carries this Finish)
        bon_id = abort_bon_id(tx.tse_id, tx.signed.transaction_number)
        bon_nr = journal.reserve_number(bon_id)  # the same number if run again
        note = "" if printed is None else abort_note(printed.bon_nr)
        if printed is not None:
            refs = (tx.receipt_ref,)
    books.record_raw(
        aborted_sale(),
        bon_nr=bon_nr,
        bon_id=bon_id,
        tse_id=tx.tse_id,
        start=tx.signed.start_time,
        end=tx.signed.log_time,
        signed=tx.signed,
        error=note,
        references=refs,
        process_type=tx.signed.process_type,
    )
    return f"; booked as receipt {bon_nr} (AVBelegabbruch)"
