"""The register's own durable journal of TSE outages (SQLite, one file per register).

BMF rules (AEAO zu §146a, Nr. 7): a failed TSE never stops the sale; the receipt is
issued with "TSE ausgefallen" and without transaction number; the failure -- start,
end, reason and the receipts it touched -- must be documented; nothing is signed
later. This module records exactly that, and derives the register's traffic light:

* green: the last signing worked;
* yellow: the last signing failed; ``consecutive_failures`` unsigned receipts so far;
* red: the TSE could not be reached or was not usable when the register started.

After more than two unsigned receipts the status carries :data:`RESTART_ADVICE`.
A daily record is written even while no TSE is connected. Every Start is noted
before it is sent (``pending_starts``) and forgotten once its Finish is confirmed,
so the register can tell its own transactions from another till's that shares its
client id. Transactions the TSE still holds open after a crash ("dangling") are
recorded and marked resolved when the register finishes them on reconnect; other
tills' young open transactions are listed (``foreign_open``), not touched.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from opentse.errors import StorageError
from opentse.register.localdb import open_local_db
from opentse.register.shoptime import day_bounds, shop_zone

RESTART_ADVICE = "Mehr als zwei Belege ohne TSE: TSE-Host neu starten oder den Support anrufen."
ADVICE_AFTER = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outages (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    kind TEXT NOT NULL,            -- 'signing' (yellow) or 'start' (red)
    reason TEXT NOT NULL,
    last_reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS unsigned_receipts (
    id INTEGER PRIMARY KEY,
    outage_id INTEGER NOT NULL REFERENCES outages(id),
    receipt_ref TEXT NOT NULL,
    receipt_number TEXT NOT NULL,
    created_at TEXT NOT NULL,
    bon_typ TEXT NOT NULL,
    total TEXT NOT NULL,
    reason TEXT NOT NULL
);
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
    sent_at TEXT NOT NULL
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
CREATE TABLE IF NOT EXISTS daily_records (
    day TEXT PRIMARY KEY,
    written_at TEXT NOT NULL,
    light TEXT NOT NULL,
    unsigned_receipts INTEGER NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


class Light(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


@dataclass(frozen=True)
class RegisterStatus:
    light: Light
    consecutive_failures: int
    message: str
    outage_started_at: datetime | None = None
    last_reason: str = ""


@dataclass(frozen=True)
class Outage:
    id: int
    started_at: datetime
    ended_at: datetime | None
    kind: str
    reason: str
    last_reason: str
    receipt_refs: tuple[str, ...]


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


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("journal times must be timezone-aware")
    return value.astimezone(UTC).isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class OutageLog:
    """The journal. ``path`` may be ``":memory:"`` for tests of the logic only."""

    def __init__(self, path: Path | str) -> None:
        self._db = open_local_db(path, _SCHEMA, "register journal")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        try:
            with self._lock:
                return self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise StorageError(f"register journal write failed: {exc}") from exc

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _open_outage(self) -> tuple[int, str] | None:
        row = self._db.execute(
            "SELECT id, kind FROM outages WHERE ended_at IS NULL ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    # --- events ------------------------------------------------------------------------

    def record_unreachable(self, *, at: datetime, reason: str) -> None:
        """The TSE could not be used at start: open (or keep) a red outage."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                current = self._open_outage()
                if current is None:
                    self._db.execute(
                        "INSERT INTO outages (started_at, kind, reason, last_reason) "
                        "VALUES (?, 'start', ?, ?)",
                        (_iso(at), reason, reason),
                    )
                else:
                    self._db.execute(
                        "UPDATE outages SET kind = 'start', last_reason = ? WHERE id = ?",
                        (reason, current[0]),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def record_failure(
        self,
        *,
        at: datetime,
        reason: str,
        receipt_ref: str,
        receipt_number: str,
        bon_typ: str,
        total: Decimal,
    ) -> int:
        """An unsigned receipt: opens an outage if none is open; returns the number of
        unsigned receipts in the current outage."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                current = self._open_outage()
                if current is None:
                    cursor = self._db.execute(
                        "INSERT INTO outages (started_at, kind, reason, last_reason) "
                        "VALUES (?, 'signing', ?, ?)",
                        (_iso(at), reason, reason),
                    )
                    outage_id = int(cursor.lastrowid or 0)
                else:
                    outage_id = current[0]
                    self._db.execute(
                        "UPDATE outages SET last_reason = ? WHERE id = ?", (reason, outage_id)
                    )
                self._db.execute(
                    "INSERT INTO unsigned_receipts (outage_id, receipt_ref, receipt_number, "
                    "created_at, bon_typ, total, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (outage_id, receipt_ref, receipt_number, _iso(at), bon_typ, str(total), reason),
                )
                count = self._db.execute(
                    "SELECT COUNT(*) FROM unsigned_receipts WHERE outage_id = ?", (outage_id,)
                ).fetchone()[0]
                self._db.execute("COMMIT")
                return int(count)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def record_success(self, *, at: datetime) -> Outage | None:
        """A signing worked: the open outage (if any) ends now and is returned."""
        with self._lock:
            current = self._open_outage()
            if current is None:
                return None
            self._db.execute("UPDATE outages SET ended_at = ? WHERE id = ?", (_iso(at), current[0]))
        return self.outage(current[0])

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
            (tse_id, client_id, transaction_number, _iso(at), receipt_ref, process_type),
        )

    def resolve_dangling(
        self, *, tse_id: str, transaction_number: int, at: datetime, resolution: str
    ) -> None:
        self._write(
            "UPDATE dangling_transactions SET resolved_at = ?, resolution = ? "
            "WHERE tse_id = ? AND transaction_number = ?",
            (_iso(at), resolution, tse_id, transaction_number),
        )

    def record_start(
        self, *, tse_id: str, client_id: str, receipt_ref: str, process_type: str, at: datetime
    ) -> None:
        """Before a Start is sent: from now on a crash leaves a transaction this
        journal can claim as its own (by ref) on recovery."""
        self._write(
            "INSERT OR IGNORE INTO pending_starts (receipt_ref, tse_id, client_id, "
            "process_type, sent_at) VALUES (?, ?, ?, ?, ?)",
            (receipt_ref, tse_id, client_id, process_type, _iso(at)),
        )

    def forget_start(self, receipt_ref: str) -> None:
        """The Start's transaction is finished, or known as dangling, or never began."""
        self._write("DELETE FROM pending_starts WHERE receipt_ref = ?", (receipt_ref,))

    def pending_starts(self) -> list[PendingStart]:
        rows = self._read(
            "SELECT receipt_ref, tse_id, client_id, process_type, sent_at FROM pending_starts "
            "ORDER BY sent_at, receipt_ref"
        )
        return [
            PendingStart(str(r[0]), str(r[1]), str(r[2]), str(r[3]), datetime.fromisoformat(r[4]))
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
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                keep = [n for n, _, _ in transactions]
                self._db.execute(
                    "DELETE FROM foreign_open_transactions WHERE tse_id = ? AND client_id = ? "
                    f"AND transaction_number NOT IN ({','.join('?' * len(keep))})",
                    (tse_id, client_id, *keep),
                )
                for number, process_type, started in transactions:
                    self._db.execute(
                        "INSERT INTO foreign_open_transactions (tse_id, client_id, "
                        "transaction_number, process_type, started_at, first_seen_at, "
                        "last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(tse_id, "
                        "transaction_number) DO UPDATE SET last_seen_at = excluded.last_seen_at",
                        (
                            tse_id,
                            client_id,
                            number,
                            process_type,
                            None if started is None else _iso(started),
                            _iso(at),
                            _iso(at),
                        ),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

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
                _dt(r[4]),
                datetime.fromisoformat(r[5]),
                datetime.fromisoformat(r[6]),
            )
            for r in rows
        ]

    def write_daily_record(
        self, day: date, *, at: datetime, note: str = "", zone: tzinfo | None = None
    ) -> None:
        """One row per day with the light and the day's unsigned receipts (upsert).
        ``day`` is a shop day in ``zone`` (default Europe/Berlin): the receipts counted
        are those made between its local midnights (times are stored in UTC)."""
        status = self.status()
        start, end = day_bounds(day, zone or shop_zone())
        last = end - timedelta(microseconds=1)  # a local day touches at most two UTC dates
        rows = self._read(
            "SELECT created_at FROM unsigned_receipts WHERE substr(created_at, 1, 10) IN (?, ?)",
            (start.date().isoformat(), last.date().isoformat()),
        )
        unsigned = sum(1 for (created,) in rows if start <= datetime.fromisoformat(created) < end)
        self._write(
            "INSERT INTO daily_records (day, written_at, light, unsigned_receipts, note) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(day) DO UPDATE SET written_at = excluded."
            "written_at, light = excluded.light, unsigned_receipts = excluded."
            "unsigned_receipts, note = excluded.note",
            (day.isoformat(), _iso(at), status.light.value, int(unsigned), note),
        )

    def has_daily_record(self, day: date) -> bool:
        return bool(self._read("SELECT 1 FROM daily_records WHERE day = ?", (day.isoformat(),)))

    def next_number(self, name: str = "receipt") -> int:
        """A durable, gapless counter (receipt numbers)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO counters (name, value) VALUES (?, 1) "
                    "ON CONFLICT(name) DO UPDATE SET value = value + 1",
                    (name,),
                )
                value = self._db.execute(
                    "SELECT value FROM counters WHERE name = ?", (name,)
                ).fetchone()[0]
                self._db.execute("COMMIT")
                return int(value)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # --- queries -----------------------------------------------------------------------

    def status(self) -> RegisterStatus:
        with self._lock:
            row = self._db.execute(
                "SELECT id, started_at, kind, last_reason FROM outages "
                "WHERE ended_at IS NULL ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                return RegisterStatus(Light.GREEN, 0, "TSE in Ordnung")
            count = int(
                self._db.execute(
                    "SELECT COUNT(*) FROM unsigned_receipts WHERE outage_id = ?", (row[0],)
                ).fetchone()[0]
            )
        light = Light.RED if row[2] == "start" else Light.YELLOW
        message = "TSE nicht erreichbar beim Start" if light is Light.RED else "TSE ausgefallen"
        if count > ADVICE_AFTER:
            message = f"{message}. {RESTART_ADVICE}"
        return RegisterStatus(light, count, message, _dt(row[1]), str(row[3]))

    def outage(self, outage_id: int) -> Outage:
        row = self._read(
            "SELECT id, started_at, ended_at, kind, reason, last_reason FROM outages WHERE id = ?",
            (outage_id,),
        )[0]
        refs = tuple(
            str(r[0])
            for r in self._read(
                "SELECT receipt_ref FROM unsigned_receipts WHERE outage_id = ? ORDER BY id",
                (outage_id,),
            )
        )
        started = _dt(row[1])
        assert started is not None
        return Outage(int(row[0]), started, _dt(row[2]), row[3], row[4], row[5], refs)

    def outages(self) -> list[Outage]:
        ids = [int(r[0]) for r in self._read("SELECT id FROM outages ORDER BY id")]
        return [self.outage(i) for i in ids]

    def dangling(self) -> list[DanglingTransaction]:
        rows = self._read(
            "SELECT tse_id, client_id, transaction_number, found_at, resolved_at, resolution, "
            "receipt_ref, process_type FROM dangling_transactions "
            "ORDER BY found_at, transaction_number"
        )
        result = []
        for r in rows:
            found = _dt(r[3])
            assert found is not None
            result.append(
                DanglingTransaction(
                    r[0], r[1], int(r[2]), found, _dt(r[4]), r[5], str(r[6]), str(r[7])
                )
            )
        return result

    def daily_records(self) -> list[tuple[str, str, int, str]]:
        """(day, light, unsigned receipts, note) per recorded day."""
        return [
            (str(r[0]), str(r[1]), int(r[2]), str(r[3]))
            for r in self._read(
                "SELECT day, light, unsigned_receipts, note FROM daily_records ORDER BY day"
            )
        ]
