"""The register's own durable journal of TSE outages (SQLite, one file per register).

BMF rules (AEAO zu §146a, Nr. 7): a failed TSE never stops the sale; the receipt is
issued with "TSE ausgefallen" and without transaction number; the failure -- start,
end, reason and the receipts it touched -- must be documented; nothing is signed
later. This module records exactly that, and derives the register's traffic light:

* green: the last signing worked;
* yellow: the last signing failed; ``consecutive_failures`` unsigned receipts so far;
* red: the TSE could not be reached or was not usable when the register started.

``opentse pos`` starts a register for every command, so "when the register started"
means: before the TSE worked for it that shop day. A TSE that cannot be reached after
it worked the same day went away while the till was running: yellow (kind
``running``), as a failed signing is; each command said red "TSE nicht erreichbar
beim Start" in the middle of the day, also while receipts were printed unsigned. An
outage keeps the colour it began with; the message names its start in the shop's time.

After more than two unsigned receipts the status carries :data:`RESTART_ADVICE`.
A daily record is written even while no TSE is connected. The same file keeps what
recovery needs after a crash (the Starts not yet confirmed, dangling and other
tills' open transactions): :class:`~opentse.register.recovery_journal.RecoveryJournal`,
which this journal extends.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from enum import StrEnum
from pathlib import Path

from opentse.register.localdb import time_or_none, utc_text
from opentse.register.recovery_journal import RECOVERY_SCHEMA, RecoveryJournal, insert_start
from opentse.register.shoptime import day_bounds, local_text, shop_zone

RESTART_ADVICE = "Mehr als zwei Belege ohne TSE: TSE-Host neu starten oder den Support anrufen."
ADVICE_AFTER = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outages (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    kind TEXT NOT NULL,            -- 'signing', 'running' (yellow); 'start', 'replaced' (red)
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
CREATE TABLE IF NOT EXISTS reserved_numbers (
    key TEXT PRIMARY KEY,                 -- what the number is for (an abort's BON_ID)
    name TEXT NOT NULL,                   -- the counter it was taken from
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
    kind: str = ""  # of the open outage: start, running, signing or replaced


@dataclass(frozen=True)
class Outage:
    id: int
    started_at: datetime
    ended_at: datetime | None
    kind: str
    reason: str
    last_reason: str
    receipt_refs: tuple[str, ...]


class OutageLog(RecoveryJournal):
    """The journal: outages, unsigned receipts, daily records and counters here,
    the recovery tables inherited. ``path`` may be ``":memory:"`` for tests of the
    logic only."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, _SCHEMA + RECOVERY_SCHEMA, "register journal")

    def _open_outage(self) -> tuple[int, str] | None:
        row = self._db.execute(
            "SELECT id, kind FROM outages WHERE ended_at IS NULL ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    # --- events ------------------------------------------------------------------------

    def record_unreachable(self, *, at: datetime, reason: str, kind: str = "start") -> None:
        """The TSE could not be used at a (re)start: open an outage of ``kind``
        (``start``: red; ``running``: yellow, the TSE worked earlier that day), or
        keep the open one as it is, with this reason as its last."""
        with self._immediate() as db:
            current = self._open_outage()
            if current is None:
                db.execute(
                    "INSERT INTO outages (started_at, kind, reason, last_reason) "
                    "VALUES (?, ?, ?, ?)",
                    (utc_text(at), kind, reason, reason),
                )
            elif kind == "replaced":  # taken out of service: red, whatever it began as
                db.execute(
                    "UPDATE outages SET last_reason = ?, kind = ? WHERE id = ?",
                    (reason, kind, current[0]),
                )
            else:
                db.execute("UPDATE outages SET last_reason = ? WHERE id = ?", (reason, current[0]))

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
        with self._immediate() as db:
            current = self._open_outage()
            if current is None:
                cursor = db.execute(
                    "INSERT INTO outages (started_at, kind, reason, last_reason) "
                    "VALUES (?, 'signing', ?, ?)",
                    (utc_text(at), reason, reason),
                )
                outage_id = int(cursor.lastrowid or 0)
            else:
                outage_id = current[0]
                db.execute("UPDATE outages SET last_reason = ? WHERE id = ?", (reason, outage_id))
            db.execute(
                "INSERT INTO unsigned_receipts (outage_id, receipt_ref, receipt_number, "
                "created_at, bon_typ, total, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (outage_id, receipt_ref, receipt_number, utc_text(at), bon_typ, str(total), reason),
            )
            count = db.execute(
                "SELECT COUNT(*) FROM unsigned_receipts WHERE outage_id = ?", (outage_id,)
            ).fetchone()[0]
        return int(count)

    def record_contact(self, *, at: datetime) -> None:
        """The TSE worked for the register (a connect that reached it)."""
        self._write(
            "INSERT INTO counters (name, value) VALUES ('tse_contact', ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (int(at.timestamp()),),
            durable=False,  # a power loss may lose it: the next outage is red then
        )

    def last_contact(self) -> datetime | None:
        rows = self._read("SELECT value FROM counters WHERE name = 'tse_contact'")
        return None if not rows else datetime.fromtimestamp(int(rows[0][0]), tz=UTC)

    def record_success(self, *, at: datetime) -> Outage | None:
        """A signing worked: the open outage (if any) ends now and is returned."""
        with self._lock:
            current = self._open_outage()
            if current is None:
                return None
            self._db.execute(
                "UPDATE outages SET ended_at = ? WHERE id = ?", (utc_text(at), current[0])
            )
        return self.outage(current[0])

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
            (day.isoformat(), utc_text(at), status.light.value, int(unsigned), note),
        )

    def has_daily_record(self, day: date) -> bool:
        return bool(self._read("SELECT 1 FROM daily_records WHERE day = ?", (day.isoformat(),)))

    def next_number(self, name: str = "receipt") -> int:
        """A durable, gapless counter (receipt numbers)."""
        with self._immediate() as db:
            return _increment(db, name)

    def reserve_number(self, key: str, name: str = "receipt") -> int:
        """The number of counter ``name`` kept for ``key``: the next one the first
        time, the same one ever after. Recovery books an abort under it, so a till
        dying before the books' commit, or two recoveries at once, leave no gap."""
        with self._immediate() as db:
            row = db.execute("SELECT value FROM reserved_numbers WHERE key = ?", (key,)).fetchone()
            if row is not None:
                return int(row[0])
            number = _increment(db, name)
            db.execute(
                "INSERT INTO reserved_numbers (key, name, value) VALUES (?, ?, ?)",
                (key, name, number),
            )
            return number

    def record_sale_start(
        self,
        *,
        tse_id: str,
        client_id: str,
        receipt_ref: str,
        process_type: str,
        at: datetime,
        booking: Callable[[int], str] | None = None,
    ) -> int:
        """A sale about to be signed, in one commit (one wait for the disk): its
        receipt number (the next ``receipt``, returned) and its Start note (as
        ``record_start``) with ``booking(number)``: the books entry recovery books
        if the TSE signs the Finish and the books never get it."""
        with self._immediate() as db:
            number = _increment(db, "receipt")
            text = None if booking is None else booking(number)
            insert_start(db, tse_id, client_id, receipt_ref, process_type, at, text)
        return number

    # --- queries -----------------------------------------------------------------------

    def status(self, zone: tzinfo | None = None) -> RegisterStatus:
        """The light of the open outage, if any; ``zone``: the shop's, for the time
        the message names (default Europe/Berlin)."""
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
        started = time_or_none(row[1])
        assert started is not None
        light = Light.RED if row[2] in ("start", "replaced") else Light.YELLOW
        since = local_text(started, zone or shop_zone(), "%d.%m.%Y %H:%M")
        what = "TSE nicht erreichbar" if light is Light.RED else "TSE ausgefallen"
        message = f"{what} seit {since}"
        if row[2] == "replaced":  # the reason names the successor and what to do
            message = f"TSE außer Betrieb (ersetzt) seit {since}: {row[3]}"
        if count > ADVICE_AFTER:
            message = f"{message}. {RESTART_ADVICE}"
        return RegisterStatus(light, count, message, started, str(row[3]), str(row[2]))

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
        started = time_or_none(row[1])
        assert started is not None
        return Outage(int(row[0]), started, time_or_none(row[2]), row[3], row[4], row[5], refs)

    def outages(self) -> list[Outage]:
        ids = [int(r[0]) for r in self._read("SELECT id FROM outages ORDER BY id")]
        return [self.outage(i) for i in ids]

    def daily_records(self) -> list[tuple[str, str, int, str]]:
        """(day, light, unsigned receipts, note) per recorded day."""
        return [
            (str(r[0]), str(r[1]), int(r[2]), str(r[3]))
            for r in self._read(
                "SELECT day, light, unsigned_receipts, note FROM daily_records ORDER BY day"
            )
        ]


def _increment(db: sqlite3.Connection, name: str) -> int:
    db.execute(
        "INSERT INTO counters (name, value) VALUES (?, 1) "
        "ON CONFLICT(name) DO UPDATE SET value = value + 1",
        (name,),
    )
    return int(db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()[0])
