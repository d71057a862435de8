"""The till's own SQLite files (books, outage journal): durable, created on demand."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
