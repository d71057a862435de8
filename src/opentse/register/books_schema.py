"""The layout of the register's books in SQLite, and the upgrade of older files.

The books share the till's file with the outage journal (``<data>/pos/<client>.db``)
and outlive many versions of the register, so a file written before a column
existed is upgraded in place when it is opened, never rejected.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from opentse.errors import StorageError
from opentse.register.localdb import open_local_db

BOOKS_SCHEMA = """
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
    z_nr INTEGER,
    process_type TEXT
);
CREATE TABLE IF NOT EXISTS books_closings (
    z_nr INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    receipts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS books_references (
    bon_id TEXT NOT NULL,
    ref_bon_id TEXT NOT NULL,
    ref_type TEXT NOT NULL,
    PRIMARY KEY (bon_id, ref_bon_id)
);
CREATE TABLE IF NOT EXISTS books_master (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS books_closing_data (
    z_nr INTEGER PRIMARY KEY,
    business_day TEXT NOT NULL,
    data TEXT NOT NULL
);
"""

#: The columns of ``books_receipts`` a closing reads, in this order.
RECEIPT_COLUMNS = "bon_nr, bon_id, tse_id, started_at, ended_at, sale, signed, error, process_type"
ENDED_AT = 4  # its index in RECEIPT_COLUMNS


@dataclass(frozen=True)
class BookedReceipt:
    """What recovery needs to know of a booked receipt: its number (BON_NR), whether
    it carries a Finish log, whether a closing took it, its TSE_TA_FEHLER and the
    processType it was (to be) signed with (None in books older than the column)."""

    bon_nr: int
    signed: bool
    closed: bool
    error: str
    process_type: str | None = None


def open_books_db(path: Path | str) -> sqlite3.Connection:
    """The books' connection, the file created or upgraded to the current layout."""
    db = open_local_db(path, BOOKS_SCHEMA, "register books", busy_timeout_ms=10000)
    _add_process_type_column(db)
    return db


def _add_process_type_column(db: sqlite3.Connection) -> None:
    """Books written before the intended processType was kept lack the column: add it
    (NULL for their rows, which then default by BON_TYP -- dsfinvk_bridge.
    default_process_type). Checked again inside the write lock, so two processes
    opening the same old file do not both add it."""

    def missing() -> bool:
        columns = db.execute("PRAGMA table_info(books_receipts)").fetchall()
        return "process_type" not in {str(c[1]) for c in columns}

    if not missing():
        return
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            if missing():
                db.execute("ALTER TABLE books_receipts ADD COLUMN process_type TEXT")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        db.close()
        raise StorageError(f"cannot open the register books: {exc}") from exc
