"""The books entry of a sale, kept with its Start note until the books have it.

A sale is signed at the TSE first and booked afterwards. A power loss between the
TSE's Finish and the books' commit would leave the TSE with a signed Kassenbeleg-V1
(Bestellung-V1, cash-book entry) that the books -- and so the DSFinV-K export and
the Z report -- never get. So everything the books row holds before the signature is
known travels in the journal's Start note, in the same commit as the note itself
(recovery_journal.py): recovery, finding that the TSE holds the sale's own Finish,
books it with the TSE's stored signature exactly as the sale would have been booked
(:func:`book_recovered`), once (the books are asked first). Pure but for that call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from opentse.errors import FormatError
from opentse.register.backends import Signed
from opentse.register.books import Books
from opentse.register.books_json import sale_from_json, sale_to_json
from opentse.register.sale import Sale

#: Version of the JSON kept in ``pending_starts.booking``; a reader refuses others.
BOOKING_VERSION = 1


@dataclass(frozen=True)
class PendingBooking:
    """What ``Books.record_raw`` takes for a signed sale, but the signature: the sale
    as booked (an order already as AVBestellung), its receipt number (BON_NR), the
    TSE, the processType and processData meant to be signed, and the BON_IDs it
    refers to."""

    bon_nr: int
    tse_id: str
    sale: Sale
    process_type: str
    process_data: str
    references: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": BOOKING_VERSION,
                "bon_nr": self.bon_nr,
                "tse_id": self.tse_id,
                "sale": sale_to_json(self.sale),
                "process_type": self.process_type,
                "process_data": self.process_data,
                "references": list(self.references),
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> PendingBooking:
        try:
            data = json.loads(text)
            if data["v"] != BOOKING_VERSION:
                raise ValueError(f"version {data['v']!r}")
            return cls(
                int(data["bon_nr"]),
                str(data["tse_id"]),
                sale_from_json(data["sale"]),
                str(data["process_type"]),
                str(data["process_data"]),
                tuple(str(r) for r in data["references"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise FormatError(
                f"unreadable pending booking: {exc}", code="E_JOURNAL_BOOKING"
            ) from exc


def booking_of(
    sale: Sale,
    *,
    bon_nr: int,
    tse_id: str,
    process_type: str,
    process_data: str,
    references: Sequence[str] = (),
) -> PendingBooking:
    return PendingBooking(bon_nr, tse_id, sale, process_type, process_data, tuple(references))


def matches(booking: PendingBooking, signed: Signed) -> bool:
    """The TSE's Finish is this sale's: same processType and processData."""
    return (signed.process_type, signed.process_data) == (
        booking.process_type,
        booking.process_data,
    )


def book_recovered(books: Books, bon_id: str, booking: PendingBooking, signed: Signed) -> bool:
    """Book a sale whose Finish the TSE holds but the books lack, with the TSE's
    stored signature and the rows a normal booking writes (its start and end are
    the TSE's, as a signed receipt's are). False, booking nothing, when the books
    have ``bon_id`` already (recovery run twice, or the books commit did land)."""
    if not books.missing([bon_id]):
        return False
    books.record_raw(
        booking.sale,
        bon_nr=booking.bon_nr,
        bon_id=bon_id,
        tse_id=booking.tse_id,
        start=signed.start_time,
        end=signed.log_time,
        signed=signed,
        error="",
        references=booking.references,
        process_type=signed.process_type,
    )
    return True
