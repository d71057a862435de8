"""The register's books: every booked Vorgang with what the TSE signed, until a closing.

DSFinV-K 2.4 (chapter 5) builds the Kassenabschluss from the single records, so the
books keep exactly those: the sale as booked (lines, payments, business cases), the
Finish log's data (or the TSE failure), and the description of each TSE used. A
closing (``close``) takes every receipt not yet closed, numbers the closing (Z_NR)
and hands back a :class:`~opentse.formats.dsfinvk.model.Closing` for the export. The
books live in SQLite, in the register's own file (next to the outage journal).

A TSE is described (public key, certificate) when the register first reaches it. A
receipt made before its TSE was ever reached has no TSE row in the export (the
DSFinV-K checker reports E_RECEIPT_NO_TSE for it): connect the TSE once, and later
closings are complete.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import sqlite3
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentse.errors import ProtocolError, StorageError
from opentse.formats.dsfinvk import model
from opentse.register.backends import Signed, TseDescription
from opentse.register.dsfinvk_bridge import to_dsfinvk_receipt
from opentse.register.money import VAT_TABLE
from opentse.register.sale import Sale, SaleLine, SalePayment

if TYPE_CHECKING:
    from opentse.register.register import SaleResult

_SCHEMA = """
CREATE TABLE IF NOT EXISTS books_tses (
    tse_id TEXT PRIMARY KEY,
    public_key BLOB NOT NULL,
    certificate BLOB NOT NULL,
    algorithm TEXT NOT NULL,
    time_format TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS books_receipts (
    bon_nr INTEGER PRIMARY KEY,
    bon_id TEXT NOT NULL UNIQUE,
    tse_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    sale TEXT NOT NULL,
    signed TEXT,
    error TEXT NOT NULL,
    z_nr INTEGER
);
CREATE TABLE IF NOT EXISTS books_closings (
    z_nr INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    receipts INTEGER NOT NULL
);
"""


def sale_to_json(sale: Sale) -> str:
    lines = [
        [ln.text, str(ln.quantity), str(ln.unit_price), ln.vat_key, ln.gv_typ, str(ln.discount)]
        for ln in sale.lines
    ]
    payments = [
        [p.method, str(p.amount), p.currency, None if p.amount_eur is None else str(p.amount_eur),
         p.name]
        for p in sale.payments
    ]  # fmt: skip
    data = {"bon_typ": sale.bon_typ, "lines": lines, "payments": payments}
    return json.dumps(data, ensure_ascii=False)


def sale_from_json(text: str) -> Sale:
    data = json.loads(text)
    return Sale(
        data["bon_typ"],
        [
            SaleLine(t, Decimal(q), Decimal(p), int(k), g, Decimal(d))
            for t, q, p, k, g, d in data["lines"]
        ],
        [
            SalePayment(m, Decimal(a), c, None if e is None else Decimal(e), n)
            for m, a, c, e, n in data["payments"]
        ],
    )


def signed_to_json(signed: Signed) -> str:
    return json.dumps(
        {
            "tse_id": signed.tse_id,
            "number": signed.transaction_number,
            "counter": signed.signature_counter,
            "start": signed.start_time.isoformat(),
            "end": signed.log_time.isoformat(),
            "signature": base64.b64encode(signed.signature).decode(),
            "public_key": base64.b64encode(signed.public_key).decode(),
            "serial": signed.serial_number,
            "algorithm": signed.algorithm,
            "time_format": signed.time_format,
            "client_id": signed.client_id,
            "process_type": signed.process_type,
            "process_data": signed.process_data,
        },
        ensure_ascii=False,
    )


def signed_from_json(text: str) -> Signed:
    d: dict[str, Any] = json.loads(text)
    return Signed(
        d["tse_id"],
        int(d["number"]),
        int(d["counter"]),
        datetime.fromisoformat(d["start"]),
        datetime.fromisoformat(d["end"]),
        base64.b64decode(d["signature"]),
        base64.b64decode(d["public_key"]),
        d["serial"],
        d["algorithm"],
        d["time_format"],
        d["client_id"],
        d["process_type"],
        d["process_data"],
    )


class Books:
    """Bookkeeping store of one register (one DSFinV-K cash register)."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the register books: {exc}") from exc
        self._lock = threading.Lock()

    def close_file(self) -> None:
        with self._lock:
            self._db.close()

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

    def record(self, sale: Sale, result: SaleResult, *, tse_id: str) -> None:
        """Keep one booked Vorgang (its receipt number is its BON_NR)."""
        self.record_raw(
            sale,
            bon_nr=int(result.receipt.receipt_number),
            bon_id=result.receipt_ref,
            tse_id=tse_id,
            start=result.receipt.started_at,
            end=result.receipt.ended_at,
            signed=result.signed,
            error=result.error or "",
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
    ) -> None:
        """Keep one Vorgang given by its parts (cash-book entries come this way)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO books_receipts (bon_nr, bon_id, tse_id, started_at, ended_at, "
                "sale, signed, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    bon_nr,
                    bon_id,
                    tse_id,
                    start.isoformat(),
                    end.isoformat(),
                    sale_to_json(sale),
                    None if signed is None else signed_to_json(signed),
                    error,
                ),
            )

    def open_count(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM books_receipts WHERE z_nr IS NULL"
            ).fetchone()
        return int(row[0])

    def close(
        self,
        *,
        z_kasse_id: str,
        company: model.Company,
        location: model.Location,
        register: model.CashRegister,
        created: datetime | None = None,
    ) -> model.Closing:
        """The next Kassenabschluss over every receipt not closed yet (Z_NR counts up);
        the receipts are marked closed in the same transaction."""
        created = created or datetime.now(UTC)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                closing = self._close_locked(z_kasse_id, company, location, register, created)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return closing

    def _close_locked(
        self,
        z_kasse_id: str,
        company: model.Company,
        location: model.Location,
        register: model.CashRegister,
        created: datetime,
    ) -> model.Closing:
        rows = self._db.execute(
            "SELECT bon_nr, bon_id, tse_id, started_at, ended_at, sale, signed, error "
            "FROM books_receipts WHERE z_nr IS NULL ORDER BY bon_nr"
        ).fetchall()
        if not rows:
            raise ProtocolError("no receipts since the last closing", code="E_NOTHING_TO_CLOSE")
        known = {
            r[0]: TseDescription(bytes(r[1]), bytes(r[2]), r[3], r[4])
            for r in self._db.execute(
                "SELECT tse_id, public_key, certificate, algorithm, time_format FROM books_tses"
            )
        }
        numbers: dict[str, int] = {}
        receipts = []
        for bon_nr, bon_id, tse_id, start, end, sale_text, signed_text, error in rows:
            signed = None if signed_text is None else signed_from_json(signed_text)
            if tse_id in known and tse_id not in numbers:
                numbers[tse_id] = len(numbers) + 1
            receipt = to_dsfinvk_receipt(
                sale_from_json(sale_text),
                signed,
                bon_id=bon_id,
                bon_nr=int(bon_nr),
                start=datetime.fromisoformat(start),
                end=datetime.fromisoformat(end),
                error=error,
                tse_id=numbers.get(tse_id, 0),
            )
            if tse_id not in numbers:  # a TSE never described (never reached): no TSE row
                receipt = dataclasses.replace(receipt, tse=None)
            receipts.append(receipt)
        z_nr = int(
            self._db.execute("SELECT COALESCE(MAX(z_nr), 0) + 1 FROM books_closings").fetchone()[0]
        )
        self._db.execute(
            "INSERT INTO books_closings (z_nr, created_at, receipts) VALUES (?, ?, ?)",
            (z_nr, created.isoformat(), len(rows)),
        )
        self._db.execute("UPDATE books_receipts SET z_nr = ? WHERE z_nr IS NULL", (z_nr,))
        tses = tuple(
            model.TseInfo(
                number,
                known[tse_id].public_key,
                known[tse_id].certificate,
                known[tse_id].algorithm,
                known[tse_id].time_format,
            )
            for tse_id, number in numbers.items()
        )
        return model.Closing(
            z_kasse_id=z_kasse_id,
            created=created,
            z_nr=z_nr,
            company=company,
            location=location,
            register=register,
            tses=tses,
            vat_rates=tuple(
                model.VatRate(k, v.percent, v.description) for k, v in VAT_TABLE.items()
            ),
            receipts=tuple(receipts),
        )
