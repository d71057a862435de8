"""The register's books: every booked Vorgang with what the TSE signed, and its closings.

DSFinV-K 2.4 (chapter 5) builds the Kassenabschluss from the single records, so the
books keep exactly those: the sale as booked (lines, payments, business cases), the
Finish log's data (or the TSE failure), and the description of each TSE used. A
closing (``close``) takes every receipt not yet closed, numbers the closing (Z_NR)
and hands back a :class:`~opentse.formats.dsfinvk.model.Closing` for the export
(built by books_closing.py). The books live in SQLite, in the register's own file
(next to the outage journal; layout in books_schema.py).

A TSE is described (public key, certificate) when the register first reaches it. A
receipt made before its TSE was ever reached has no TSE row in the export (the
DSFinV-K checker reports E_RECEIPT_NO_TSE for it): connect the TSE once, and later
closings are complete.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentse.errors import ProtocolError
from opentse.formats.dsfinvk import model
from opentse.formats.processdata import PROCESS_TYPE_BESTELLUNG
from opentse.register.backends import Signed, TseDescription
from opentse.register.books_closing import (
    ClosedDay,
    build_closing,
    check_business_day,
    closed_day,
    closing_record,
    next_z_nr,
    open_rows,
    tse_infos,
)
from opentse.register.books_json import (
    MasterData,
    master_from_json,
    master_to_json,
    money_or_none,
    sale_from_json,
    sale_to_json,
    signed_to_json,
)
from opentse.register.books_schema import BookedReceipt, open_books_db
from opentse.register.dsfinvk_bridge import default_process_type
from opentse.register.sale import Sale
from opentse.register.shoptime import (
    DEFAULT_SHOP_TIMEZONE,
    local_day,
    parse_day_start,
    shop_zone,
)
from opentse.register.shoptime import business_day as business_day_of
from opentse.register.text import check_texts

__all__ = ["Books", "MasterData"]

if TYPE_CHECKING:
    from opentse.register.sale_result import SaleResult


def _after_midnight(start: time) -> time | None:
    """A kept day start; 00:00 is the calendar day (None)."""
    return None if start == time() else start


class Books:
    """Bookkeeping store of one register (one DSFinV-K cash register).

    Days (open days, a closing's business day, the receipt's day for the VAT rate)
    are the shop's local days in ``timezone`` (an IANA name; shoptime.py); stored
    times stay UTC. A zone given is kept in the books, so a later reader without one
    (``opentse dsfinvk export``) counts days the same way; default Europe/Berlin.
    """

    def __init__(self, path: Path | str, *, timezone: str | None = None) -> None:
        self._db = open_books_db(path)
        self.path = Path(path)  # the register file, for messages that name it
        self._lock = threading.Lock()
        if timezone is not None:
            shop_zone(timezone)  # E_TIMEZONE before it is kept
            self._db.execute(
                "INSERT INTO books_master (name, value) VALUES ('timezone', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (timezone,),
            )
        row = self._db.execute("SELECT value FROM books_master WHERE name = 'timezone'").fetchone()
        self.timezone: str = DEFAULT_SHOP_TIMEZONE if row is None else str(row[0])
        self.zone: tzinfo = shop_zone(self.timezone)
        row = self._db.execute("SELECT value FROM books_master WHERE name = 'day_start'").fetchone()
        self._day_start = None if row is None else _after_midnight(parse_day_start(str(row[0])))

    def day_start(self) -> time | None:
        """The local time the shop's business day starts at (``set_day_start``); None:
        at midnight. Kept in the file, read when it is opened, as the time zone."""
        return self._day_start

    def set_day_start(self, start: time) -> None:
        """Keep when the shop's business day starts (a bar open past midnight: 06:00):
        a closing without a business day named books the day it started on; 00:00 is
        the calendar day again."""
        with self._lock:
            self._db.execute(
                "INSERT INTO books_master (name, value) VALUES ('day_start', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (f"{start:%H:%M}",),
            )
            self._day_start = _after_midnight(start)

    def business_day(self, at: datetime) -> date:
        """The business day an instant belongs to (the shop's zone and day start)."""
        return business_day_of(at, self.zone, self._day_start)

    def close_file(self) -> None:
        with self._lock:
            self._db.close()

    # --- master data -----------------------------------------------------------------

    def set_master(self, master: MasterData) -> None:
        """Keep company, location and register; later closings use them by default."""
        with self._lock:
            self._db.execute(
                "INSERT INTO books_master (name, value) VALUES ('master', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (json.dumps(master_to_json(master), ensure_ascii=False),),
            )

    def master(self) -> MasterData | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM books_master WHERE name = 'master'"
            ).fetchone()
        return None if row is None else master_from_json(json.loads(row[0]))

    def set_register_serial(self, serial: str) -> None:
        """Keep the register's serial number as the TSE service holds it for this
        till's client: a till that cannot reach the service still prints it and closes
        the day under it (the TSE signed its logs with it, §6 Nr. 6 KassenSichV)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO books_master (name, value) VALUES ('register_serial', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (serial,),
            )

    def set_seller(self, name: str, address: tuple[str, ...]) -> None:
        """Keep the seller printed on the receipts (§6 Nr. 1 KassenSichV), so a till
        gives it once (``opentse pos --seller-name``), not with every sale."""
        check_texts(
            [("seller name", name)]
            + [(f"seller address line {n}", line) for n, line in enumerate(address, 1)]
        )
        with self._lock:
            self._db.execute(
                "INSERT INTO books_master (name, value) VALUES ('seller', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (json.dumps({"name": name, "address": list(address)}, ensure_ascii=False),),
            )

    def seller(self) -> tuple[str, tuple[str, ...]] | None:
        """The seller kept by set_seller, else the last closing's company and address."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM books_master WHERE name = 'seller'"
            ).fetchone()
        if row is not None:
            kept = json.loads(row[0])
            return str(kept["name"]), tuple(str(line) for line in kept["address"])
        master = self.master()
        if master is None:
            return None
        company = master.company
        return company.name, (company.street, f"{company.postal_code} {company.city}")

    def register_serial(self) -> str | None:
        """The serial kept by set_register_serial, else the last closing's KASSE_SERIENNR."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM books_master WHERE name = 'register_serial'"
            ).fetchone()
        if row is not None:
            return str(row[0])
        master = self.master()
        return None if master is None else master.register.serial_number

    def tse_serial(self, tse_id: str) -> str | None:
        """The serial number (hex SHA-256 of the public key) of a TSE described before."""
        with self._lock:
            row = self._db.execute(
                "SELECT public_key FROM books_tses WHERE tse_id = ?", (tse_id,)
            ).fetchone()
        return None if row is None else hashlib.sha256(bytes(row[0])).hexdigest()

    def tse_certificate(self, tse_id: str) -> bytes:
        """The certificate (DER) of a TSE described before; empty when unknown."""
        with self._lock:
            row = self._db.execute(
                "SELECT certificate FROM books_tses WHERE tse_id = ?", (tse_id,)
            ).fetchone()
        return b"" if row is None or row[0] is None else bytes(row[0])

    def tses_of(self, bon_ids: Iterable[str]) -> list[str]:
        """The TSE ids these receipts were booked for (to sign, or as TSE ausgefallen),
        distinct and sorted: the outage log says which TSE a till was without."""
        found: set[str] = set()
        with self._lock:
            for bon_id in bon_ids:
                row = self._db.execute(
                    "SELECT tse_id FROM books_receipts WHERE bon_id = ?", (bon_id,)
                ).fetchone()
                if row is not None:
                    found.add(str(row[0]))
        return sorted(found)

    # --- booking ---------------------------------------------------------------------

    def remember_tse(self, tse_id: str, description: TseDescription) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO books_tses (tse_id, public_key, certificate, algorithm, time_format)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(tse_id) DO UPDATE SET "
                "public_key = excluded.public_key, certificate = excluded.certificate, "
                "algorithm = excluded.algorithm, time_format = excluded.time_format",
                (
                    tse_id,
                    description.public_key,
                    description.certificate,
                    description.algorithm,
                    description.time_format,
                ),
            )

    def record(
        self,
        sale: Sale,
        result: SaleResult,
        *,
        tse_id: str,
        references: Sequence[str] = (),
    ) -> None:
        """Keep one booked Vorgang (its receipt number is its BON_NR) and the receipts
        it points at (``references``, e.g. a cancellation's original), in one
        transaction. A restaurant order (Bestellung-V1) is kept as BON_TYP
        AVBestellung without payments: the final receipt is the business case
        (DSFinV-K 2.4, Anhang C). The processType kept is the one signed, or -- the
        TSE failed -- the one the register meant to sign (TSE_TA_VORGANGSART)."""
        signed = result.signed
        process_type = result.process_type if signed is None else signed.process_type
        if process_type == PROCESS_TYPE_BESTELLUNG:
            sale = Sale("AVBestellung", list(sale.lines), [])
        self.record_raw(
            sale,
            bon_nr=int(result.receipt.receipt_number),
            bon_id=result.receipt_ref,
            tse_id=tse_id,
            start=result.receipt.started_at,
            end=result.receipt.ended_at,
            signed=result.signed,
            error=result.error or "",
            references=references,
            process_type=process_type,
        )

    def record_raw(
        self,
        sale: Sale,
        *,
        bon_nr: int,
        bon_id: str,
        tse_id: str,
        start: datetime,
        end: datetime,
        signed: Signed | None,
        error: str = "",
        references: Sequence[str] = (),
        process_type: str | None = None,
    ) -> None:
        """Keep one Vorgang given by its parts (cash-book entries come this way) with
        its references (REF_TYP Transaktion) in the same transaction: a crash leaves
        both or neither. A reference to a receipt not in the books books nothing.
        ``process_type``: what was (or was to be) signed; default the signed one, else
        by BON_TYP (:func:`~opentse.register.dsfinvk_bridge.default_process_type`)."""
        if process_type is None:
            process_type = (
                default_process_type(sale.bon_typ) if signed is None else signed.process_type
            )
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO books_receipts (bon_nr, bon_id, tse_id, started_at, ended_at, "
                    "sale, signed, error, process_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        bon_nr,
                        bon_id,
                        tse_id,
                        start.isoformat(),
                        end.isoformat(),
                        sale_to_json(sale),
                        None if signed is None else signed_to_json(signed),
                        error,
                        process_type,
                    ),
                )
                for ref_bon_id in references:
                    self._insert_reference(bon_id, ref_bon_id, "Transaktion")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def add_reference(self, bon_id: str, ref_bon_id: str, ref_type: str = "Transaktion") -> None:
        """``bon_id`` points at ``ref_bon_id`` (a cancellation at its original;
        DSFinV-K 3.2.5 Bon_Referenzen). Both must be in the books. A Vorgang booked
        through the Register gets its references with :meth:`record` instead."""
        with self._lock:
            self._insert_reference(bon_id, ref_bon_id, ref_type)

    def missing(self, bon_ids: Iterable[str]) -> list[str]:
        """Those of ``bon_ids`` not in the books (checked before signing a reference)."""
        query = "SELECT 1 FROM books_receipts WHERE bon_id = ?"
        with self._lock:
            return [
                b
                for b in dict.fromkeys(bon_ids)
                if self._db.execute(query, (b,)).fetchone() is None
            ]

    def booked(self, bon_id: str) -> BookedReceipt | None:
        """What the books hold for receipt ``bon_id`` (None: nothing): recovery asks
        before it books a TSE transaction it finished (recovery_books.py)."""
        with self._lock:
            row = self._db.execute(
                "SELECT bon_nr, signed IS NOT NULL, z_nr, error, process_type "
                "FROM books_receipts WHERE bon_id = ?",
                (bon_id,),
            ).fetchone()
        if row is None:
            return None
        return BookedReceipt(int(row[0]), bool(row[1]), row[2] is not None, str(row[3]), row[4])

    def bon_id_of_transaction(self, tse_id: str, transaction_number: int) -> str | None:
        """The receipt booked with TSE transaction ``transaction_number`` of ``tse_id``
        (its Finish log), if any: so recovery books a TSE transaction once."""
        with self._lock:
            row = self._db.execute(
                "SELECT bon_id FROM books_receipts WHERE tse_id = ? AND signed IS NOT NULL "
                "AND json_extract(signed, '$.number') = ? ORDER BY bon_nr LIMIT 1",
                (tse_id, transaction_number),
            ).fetchone()
        return None if row is None else str(row[0])

    def add_late_signature(self, bon_id: str, signed: Signed, error: str) -> bool:
        """Receipt ``bon_id``, booked (and printed) without signature because the
        TSE's answer did not come in time, gets the Finish the TSE did sign; ``error``
        (TSE_TA_FEHLER) says so. The Vorgang itself -- sale, times, number -- stays
        as printed. False, changing nothing, if the receipt is signed already, not
        in the books, or in a closing (a closed day is never changed)."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE books_receipts SET signed = ?, error = ? "
                "WHERE bon_id = ? AND signed IS NULL AND z_nr IS NULL",
                (signed_to_json(signed), error, bon_id),
            )
        return cursor.rowcount == 1

    def order_start(self, bon_id: str) -> datetime | None:
        """The TSE's start of order ``bon_id`` (Bestellung-V1), printed on the bill as
        TSE-Erstbestellung; None when the order was not signed. Another receipt is
        ``E_POS_FIRST_ORDER``."""
        with self._lock:
            row = self._db.execute(
                "SELECT process_type, started_at, signed IS NOT NULL "
                "FROM books_receipts WHERE bon_id = ?",
                (bon_id,),
            ).fetchone()
        if row is None or row[0] != PROCESS_TYPE_BESTELLUNG:
            raise ProtocolError(
                f"receipt {bon_id} is not an order (pos order): no first order",
                code="E_POS_FIRST_ORDER",
            )
        return datetime.fromisoformat(str(row[1])) if row[2] else None

    def referenced_by(self, bon_id: str) -> list[str]:
        """The receipts that point at ``bon_id`` (e.g. its cancellation)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT bon_id FROM books_references WHERE ref_bon_id = ? ORDER BY bon_id",
                (bon_id,),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def sale(self, bon_id: str) -> Sale:
        """The booked sale of receipt ``bon_id`` (e.g. to cancel it)."""
        with self._lock:
            row = self._db.execute(
                "SELECT sale FROM books_receipts WHERE bon_id = ?", (bon_id,)
            ).fetchone()
        if row is None:
            raise ProtocolError(f"no receipt {bon_id!r} in the books", code="E_BOOKS_NO_RECEIPT")
        return sale_from_json(row[0])

    def find_bon_id(self, text: str) -> str:
        """A receipt's BON_ID from its BON_ID or its receipt number (BON_NR)."""
        with self._lock:
            row = self._db.execute(
                "SELECT bon_id FROM books_receipts WHERE bon_id = ? OR CAST(bon_nr AS TEXT) = ?",
                (text, text),
            ).fetchone()
        if row is None:
            raise ProtocolError(f"no receipt {text!r} in the books", code="E_BOOKS_NO_RECEIPT")
        return str(row[0])

    # --- state -----------------------------------------------------------------------

    def open_count(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM books_receipts WHERE z_nr IS NULL"
            ).fetchone()
        return int(row[0])

    def open_days(self) -> list[date]:
        """The shop's (local) days of the receipts not closed yet (for
        E_DSFINVK_NOT_CLOSED)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT ended_at FROM books_receipts WHERE z_nr IS NULL"
            ).fetchall()
        return sorted({local_day(datetime.fromisoformat(r[0]), self.zone) for r in rows})

    def last_counted_cash(self) -> Decimal:
        """The cash counted at the last closing: the float the next day starts with."""
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM books_closing_data ORDER BY z_nr DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return model.ZERO
        return money_or_none(json.loads(row[0]).get("counted_cash")) or model.ZERO

    def preview(
        self, *, z_kasse_id: str, master: MasterData, created: datetime | None = None
    ) -> model.Closing:
        """The closing ``close`` would make now (nothing is written): for the expected
        cash before the count is booked."""
        created = created or datetime.now(UTC)
        with self._lock:
            rows = open_rows(self._db)
            z_nr = next_z_nr(self._db)
            tses = tse_infos(self._db, rows)
            return build_closing(self._db, self.zone, z_kasse_id, z_nr, created, master, rows, tses)

    # --- closings --------------------------------------------------------------------

    def close(
        self,
        *,
        z_kasse_id: str,
        company: model.Company,
        location: model.Location,
        register: model.CashRegister,
        created: datetime | None = None,
        counted_cash: Decimal | None = None,
        opening_cash: Decimal | None = None,
        business_day: date | None = None,
    ) -> model.Closing:
        """The next Kassenabschluss over every receipt not closed yet (Z_NR counts up);
        the receipts are marked closed and the closing is kept (so it can be exported
        again) in the same transaction. The business day (Z_BUCHUNGSTAG) is
        ``business_day`` or the shop's business day of ``created`` (its local day, the
        day before while earlier than the kept day start)."""
        created = created or datetime.now(UTC)
        master = MasterData(company, location, register)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = open_rows(self._db)
                if not rows:
                    raise ProtocolError(
                        "no receipts since the last closing", code="E_NOTHING_TO_CLOSE"
                    )
                tses = tse_infos(self._db, rows)
                z_nr = next_z_nr(self._db)
                day = business_day_of(created, self.zone, self._day_start)
                if business_day is not None:
                    self._check_day(business_day, created, rows)
                    day = business_day
                closing = build_closing(
                    self._db, self.zone, z_kasse_id, z_nr, created, master, rows, tses, day
                )
                data = closing_record(closing, master, tses, opening_cash, counted_cash)
                self._db.execute(
                    "INSERT INTO books_closings (z_nr, created_at, receipts) VALUES (?, ?, ?)",
                    (z_nr, created.isoformat(), len(rows)),
                )
                self._db.execute(
                    "INSERT INTO books_closing_data (z_nr, business_day, data) VALUES (?, ?, ?)",
                    (z_nr, day.isoformat(), json.dumps(data, ensure_ascii=False)),
                )
                self._db.execute("UPDATE books_receipts SET z_nr = ? WHERE z_nr IS NULL", (z_nr,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return closing

    def closed_days(self, first: date | None = None, last: date | None = None) -> list[ClosedDay]:
        """The closings whose business day lies in [first, last] (inclusive), by Z_NR."""
        with self._lock:
            rows = self._db.execute(
                "SELECT z_nr, business_day, data FROM books_closing_data ORDER BY z_nr"
            ).fetchall()
            out = []
            for z_nr, day_text, data_text in rows:
                day = date.fromisoformat(day_text)
                if (first is not None and day < first) or (last is not None and day > last):
                    continue
                out.append(closed_day(self._db, self.zone, int(z_nr), day, json.loads(data_text)))
        return out

    def closed_day(self, z_nr: int) -> ClosedDay:
        with self._lock:
            row = self._db.execute(
                "SELECT business_day, data FROM books_closing_data WHERE z_nr = ?", (z_nr,)
            ).fetchone()
            if row is None:
                raise ProtocolError(f"no closing {z_nr} in the books", code="E_BOOKS_NO_CLOSING")
            return closed_day(
                self._db, self.zone, z_nr, date.fromisoformat(row[0]), json.loads(row[1])
            )

    def check_business_day(self, business_day: date, created: datetime | None = None) -> None:
        """``E_BUSINESS_DAY`` unless ``business_day`` suits a closing made at
        ``created`` (now) over the receipts open now (the rule:
        books_closing.check_business_day); a caller checks before it books anything
        for the closing."""
        created = created or datetime.now(UTC)
        with self._lock:
            rows = open_rows(self._db)
            if rows:
                self._check_day(business_day, created, rows)

    # --- internals (lock held) -------------------------------------------------------

    def _check_day(self, business_day: date, created: datetime, rows: list[Any]) -> None:
        check_business_day(
            self._db,
            self.zone,
            business_day,
            local_day(created, self.zone),
            rows,
            day_start=self._day_start,
        )

    def _insert_reference(self, bon_id: str, ref_bon_id: str, ref_type: str) -> None:
        found = self._db.execute(
            "SELECT COUNT(*) FROM books_receipts WHERE bon_id IN (?, ?)", (bon_id, ref_bon_id)
        ).fetchone()[0]
        if found != 2:
            raise ProtocolError(
                f"reference {bon_id} -> {ref_bon_id}: receipt not in the books",
                code="E_BOOKS_REFERENCE",
            )
        self._db.execute(
            "INSERT OR IGNORE INTO books_references (bon_id, ref_bon_id, ref_type) "
            "VALUES (?, ?, ?)",
            (bon_id, ref_bon_id, ref_type),
        )
