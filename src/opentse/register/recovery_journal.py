"""What recovery (recovery.py) must remember across a crash, in the register journal.

Several tills may share one client id, so after a crash a register must tell its own
open transactions from another till's. It keeps three tables for that: the Starts it
sent whose Finish is not confirmed yet (``pending_starts``, noted *before* sending),
the transactions it knows the TSE may still hold open (``dangling_transactions``,
with how each was resolved) and the other tills' young open transactions the last
recovery left alone (``foreign_open_transactions``, for the operator).

A sale's note also carries its books entry (``booking``, pending_booking.py), written
in the same commit as the note: recovery books a sale whose Finish the TSE holds
from it. Journals written before that column existed get it when opened (NULL for
their notes, which recovery then treats as it did before).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from sqlite3 import Connection

from opentse.register.localdb import LocalStore, time_or_none, utc_text

RECOVERY_SCHEMA = """
CREATE TABLE IF NOT EXISTS dangling_transactions (
    tse_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    transaction_number INTEGER NOT NULL,
    found_at TEXT NOT NULL,
    resolved_at TEXT,
    resolution TEXT,
    receipt_ref TEXT NOT NULL DEFAULT '',   -- the receipt whose Start was signed
    process_type TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tse_id, transaction_number)
);
CREATE TABLE IF NOT EXISTS pending_starts (
    receipt_ref TEXT PRIMARY KEY,         -- the Start's idempotency ref is <ref>:start
    tse_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    process_type TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    booking TEXT                          -- the sale's books entry (JSON), if any
);
CREATE TABLE IF NOT EXISTS foreign_open_transactions (
    tse_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    transaction_number INTEGER NOT NULL,
    process_type TEXT NOT NULL,
    started_at TEXT,                      -- the TSE's Start time, when it said
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    PRIMARY KEY (tse_id, transaction_number)
);
"""


@dataclass(frozen=True)
class DanglingTransaction:
    tse_id: str
    client_id: str
    transaction_number: int
    found_at: datetime
    resolved_at: datetime | None
    resolution: str | None
    receipt_ref: str = ""
    process_type: str = ""


@dataclass(frozen=True)
class PendingStart:
    """A Start this register sent (written before sending) whose Finish has not
    been confirmed: recovery asks the TSE by ref which transaction it began."""

    receipt_ref: str
    tse_id: str
    client_id: str
    process_type: str
    sent_at: datetime
    booking: str | None = None  # PendingBooking JSON: the sale's books entry


@dataclass(frozen=True)
class ForeignOpen:
    """An open transaction of this register's client that this journal never
    started and that is too young to count as abandoned: another till's, left
    alone at the last recovery (``started_at`` None: the TSE did not say)."""

    tse_id: str
    client_id: str
    transaction_number: int
    process_type: str
    started_at: datetime | None
    first_seen_at: datetime
    last_seen_at: datetime


class RecoveryJournal(LocalStore):
    """The recovery tables of the register journal; ``OutageLog`` (outage.py) adds
    the outages and opens the file with :data:`RECOVERY_SCHEMA` in its schema."""

    def __init__(self, path: Path | str, schema: str, what: str) -> None:
        super().__init__(path, schema, what)
        self._add_booking_column()

    def _add_booking_column(self) -> None:
        """A journal from before the sale's books entry was kept with its note: add
        the column (checked again under the write lock: two processes may open the
        same old file)."""

        def missing() -> bool:
            columns = self._db.execute("PRAGMA table_info(pending_starts)").fetchall()
            return "booking" not in {str(c[1]) for c in columns}

        if missing():
            with self._immediate() as db:
                if missing():
                    db.execute("ALTER TABLE pending_starts ADD COLUMN booking TEXT")

    def record_dangling(
        self,
        *,
        tse_id: str,
        client_id: str,
        transaction_number: int,
        at: datetime,
        receipt_ref: str = "",
        process_type: str = "",
    ) -> None:
        """A transaction the TSE may still hold open (first record wins)."""
        self._write(
            "INSERT OR IGNORE INTO dangling_transactions (tse_id, client_id, "
            "transaction_number, found_at, receipt_ref, process_type) VALUES (?, ?, ?, ?, ?, ?)",
            (tse_id, client_id, transaction_number, utc_text(at), receipt_ref, process_type),
        )

    def resolve_dangling(
        self, *, tse_id: str, transaction_number: int, at: datetime, resolution: str
    ) -> None:
        self._write(
            "UPDATE dangling_transactions SET resolved_at = ?, resolution = ? "
            "WHERE tse_id = ? AND transaction_number = ?",
            (utc_text(at), resolution, tse_id, transaction_number),
        )

    def dangling(self) -> list[DanglingTransaction]:
        rows = self._read(
            "SELECT tse_id, client_id, transaction_number, found_at, resolved_at, resolution, "
            "receipt_ref, process_type FROM dangling_transactions "
            "ORDER BY found_at, transaction_number"
        )
        result = []
        for r in rows:
            found = time_or_none(r[3])
            assert found is not None
            result.append(
                DanglingTransaction(
                    r[0], r[1], int(r[2]), found, time_or_none(r[4]), r[5], str(r[6]), str(r[7])
                )
            )
        return result

    def record_start(
        self,
        *,
        tse_id: str,
        client_id: str,
        receipt_ref: str,
        process_type: str,
        at: datetime,
        booking: str | None = None,
    ) -> None:
        """Before a Start is sent: from now on a crash leaves a transaction this
        journal can claim as its own (by ref) on recovery."""
        with self._immediate() as db:
            insert_start(db, tse_id, client_id, receipt_ref, process_type, at, booking)

    def forget_start(self, receipt_ref: str, *, durable: bool = True) -> None:
        """The Start's transaction is finished, or known as dangling, or never began.

        ``durable=False`` (a sale's own confirmed Finish: one fsync less per sale)
        is safe because a note that outlives its transaction is harmless: recovery
        asks the TSE which transaction the Start began and finishes it with the
        receipt's own finish ref, which the TSE answers with the stored signature
        (nothing is signed; the journal says "had been signed by its own Finish"),
        a transaction no longer open is never aborted (recovery.py), and the sale is
        not booked again: the register removes the note only after its books commit
        returned, and recovery books only what the books lack."""
        self._write(
            "DELETE FROM pending_starts WHERE receipt_ref = ?", (receipt_ref,), durable=durable
        )

    def pending_starts(self) -> list[PendingStart]:
        rows = self._read(
            "SELECT receipt_ref, tse_id, client_id, process_type, sent_at, booking "
            "FROM pending_starts ORDER BY sent_at, receipt_ref"
        )
        return [
            PendingStart(
                str(r[0]), str(r[1]), str(r[2]), str(r[3]), datetime.fromisoformat(r[4]), r[5]
            )
            for r in rows
        ]

    def note_foreign_open(
        self,
        *,
        tse_id: str,
        client_id: str,
        transactions: list[tuple[int, str, datetime | None]],
        at: datetime,
    ) -> None:
        """Replace the client's list of open transactions left to other tills by
        what recovery saw now: (number, processType, start time) each; one that was
        seen before keeps its ``first_seen_at``."""
        with self._immediate() as db:
            keep = [n for n, _, _ in transactions]
            db.execute(
                "DELETE FROM foreign_open_transactions WHERE tse_id = ? AND client_id = ? "
                f"AND transaction_number NOT IN ({','.join('?' * len(keep))})",
                (tse_id, client_id, *keep),
            )
            for number, process_type, started in transactions:
                db.execute(
                    "INSERT INTO foreign_open_transactions (tse_id, client_id, "
                    "transaction_number, process_type, started_at, first_seen_at, "
                    "last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(tse_id, "
                    "transaction_number) DO UPDATE SET last_seen_at = excluded.last_seen_at",
                    (
                        tse_id,
                        client_id,
                        number,
                        process_type,
                        None if started is None else utc_text(started),
                        utc_text(at),
                        utc_text(at),
                    ),
                )

    def foreign_open(self) -> list[ForeignOpen]:
        """Open transactions of this client that the last recovery left to other tills."""
        rows = self._read(
            "SELECT tse_id, client_id, transaction_number, process_type, started_at, "
            "first_seen_at, last_seen_at FROM foreign_open_transactions "
            "ORDER BY tse_id, transaction_number"
        )
        return [
            ForeignOpen(
                str(r[0]),
                str(r[1]),
                int(r[2]),
                str(r[3]),
                time_or_none(r[4]),
                datetime.fromisoformat(r[5]),
                datetime.fromisoformat(r[6]),
            )
            for r in rows
        ]


def insert_start(
    db: Connection,
    tse_id: str,
    client_id: str,
    receipt_ref: str,
    process_type: str,
    at: datetime,
    booking: str | None,
) -> None:
    """The Start note, inside the caller's write transaction (the register's sale
    takes its receipt number in the same commit: outage.OutageLog.record_sale_start)."""
    db.execute(
        "INSERT OR IGNORE INTO pending_starts (receipt_ref, tse_id, client_id, "
        "process_type, sent_at, booking) VALUES (?, ?, ?, ?, ?, ?)",
        (receipt_ref, tse_id, client_id, process_type, utc_text(at), booking),
    )
