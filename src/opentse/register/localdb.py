"""The till's own SQLite files (books, outage journal): durable, created on demand."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentse.errors import StorageError


def open_local_db(
    path: Path | str, schema: str, what: str, *, busy_timeout_ms: int | None = None
) -> sqlite3.Connection:
    """Open (creating folder and schema) a WAL file whose commits are on disk when
    they return (``synchronous=FULL``); ``":memory:"`` for tests of the logic only."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        if busy_timeout_ms is not None:
            db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        db.executescript(schema)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open the {what}: {exc}") from exc
    return db


def peek(path: Path, sql: str) -> tuple[Any, ...] | None:
    """The first row ``sql`` reads from the till file ``path``, opened read-only (a
    probe of a file that may be another's: nothing is created or written); None
    when there is none, or the file is no SQLite database it can read."""
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        ) as db:
            row: tuple[Any, ...] | None = db.execute(sql).fetchone()
    except sqlite3.Error:
        return None
    return row


def utc_text(value: datetime) -> str:
    """A journal time as stored: ISO 8601 in UTC (naive times are refused, they
    would be read back as some other zone's)."""
    if value.tzinfo is None:
        raise ValueError("journal times must be timezone-aware")
    return value.astimezone(UTC).isoformat()


def time_or_none(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class LocalStore:
    """One connection to a till's file, shared by the register's threads under one
    lock (a TSE call that timed out may still be writing from its own thread)."""

    def __init__(self, path: Path | str, schema: str, what: str) -> None:
        self._db = open_local_db(path, schema, what)
        self._lock = threading.Lock()
        self._what = what

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(
        self, sql: str, params: tuple[object, ...] = (), *, durable: bool = True
    ) -> sqlite3.Cursor:
        """One statement in its own transaction. ``durable=False`` commits without
        waiting for the disk (``synchronous=NORMAL`` for this commit only): a crash
        of the process keeps it, a power loss may lose it -- and, the WAL being
        appended in order, only together with every later commit that was not
        synced either; the next durable commit to the file syncs it too."""
        try:
            with self._lock:
                if durable:
                    return self._db.execute(sql, params)
                self._db.execute("PRAGMA synchronous=NORMAL")
                try:
                    return self._db.execute(sql, params)
                finally:
                    self._db.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            raise StorageError(f"{self._what} write failed: {exc}") from exc

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """A write transaction under the lock: committed when the block ends,
        rolled back when it raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
