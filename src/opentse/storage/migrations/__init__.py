"""Numbered SQL migrations, shipped as package data and applied in order.

Files live in ``opentse/storage/migrations/<dialect>/NNNN_name.sql``; any team may
drop in the next number (``0002_service.sql`` ...). ``apply`` records every applied
version in ``schema_migrations`` and runs each file in its own transaction, taking
the database's write lock first and re-checking, so two processes opening the same
database at once apply each file exactly once.

The connection must be in autocommit mode (sqlite3: ``isolation_level=None``;
psycopg: ``autocommit=True``): this module issues BEGIN/COMMIT itself.
"""

from __future__ import annotations

import re
import sqlite3
import time
from contextlib import suppress
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from opentse.errors import StorageError

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass(frozen=True, slots=True)
class _Dialect:
    begin: str  # statement that starts a transaction holding the write lock
    lock: str | None  # extra statement serialising concurrent migrators, if needed
    placeholder: str
    split: bool  # execute statement by statement (sqlite3 runs one per call)


_DIALECTS = {
    "sqlite": _Dialect("BEGIN IMMEDIATE", None, "?", True),
    "postgresql": _Dialect(
        "BEGIN", "LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE", "%s", False
    ),
}


def load(dialect: str, source: Traversable | None = None) -> list[Migration]:
    """All migration files of ``dialect`` in version order.

    ``source`` replaces the packaged folder (tests). Raises StorageError when two
    files share a number (two teams picked the same one).
    """
    if dialect not in _DIALECTS:
        raise StorageError(f"unknown SQL dialect {dialect!r}", code="E_STORAGE_DIALECT")
    folder = resources.files(__name__).joinpath(dialect) if source is None else source
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise StorageError(
                f"two {dialect} migrations numbered {version:04d}: "
                f"{found[version].name} and {match.group(2)}",
                code="E_STORAGE_MIGRATION",
            )
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def split_statements(script: str) -> list[str]:
    """Split a script into complete statements (triggers keep their inner ``;``).

    Uses SQLite's own tokenizer (``sqlite3.complete_statement``), so semicolons in
    strings, comments and ``BEGIN ... END`` bodies are handled.
    """
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if _has_code(buffer):
                statements.append(buffer.strip())
            buffer = ""
    if _has_code(buffer[:-1]):
        raise StorageError("migration ends in an incomplete statement", code="E_STORAGE_MIGRATION")
    return statements


def _has_code(text: str) -> bool:
    lines = (line.split("--", 1)[0].strip() for line in text.splitlines())
    return any(line and line != ";" for line in lines)


def applied_versions(connection: Any) -> set[int]:
    rows = connection.execute("SELECT version FROM schema_migrations").fetchall()
    return {int(row[0]) for row in rows}


def apply(connection: Any, dialect: str, source: Traversable | None = None) -> list[int]:
    """Apply every migration not yet recorded; return the versions applied now.

    Each file runs in its own transaction: a failing file leaves the earlier ones
    applied and itself not at all (StorageError, code E_STORAGE_MIGRATION).
    """
    dialect_info = _DIALECTS.get(dialect)
    migrations = load(dialect, source)
    assert dialect_info is not None  # load() rejected unknown dialects
    try:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER NOT NULL PRIMARY KEY,"
            " name TEXT NOT NULL,"
            " applied_at INTEGER NOT NULL)"
        )
        done = applied_versions(connection)
        applied: list[int] = []
        for migration in migrations:
            if migration.version in done:
                continue
            if _apply_one(connection, dialect_info, migration):
                applied.append(migration.version)
        return applied
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(
            f"{dialect} migration failed: {exc}", code="E_STORAGE_MIGRATION"
        ) from exc


def _apply_one(connection: Any, dialect: _Dialect, migration: Migration) -> bool:
    """Run one file in its own transaction; False if another process was faster."""
    p = dialect.placeholder
    connection.execute(dialect.begin)
    try:
        if dialect.lock is not None:
            connection.execute(dialect.lock)
        row = connection.execute(
            f"SELECT 1 FROM schema_migrations WHERE version = {p}", (migration.version,)
        ).fetchone()
        if row is not None:
            connection.execute("ROLLBACK")
            return False
        statements = split_statements(migration.sql) if dialect.split else [migration.sql]
        for statement in statements:
            connection.execute(statement)
        connection.execute(
            f"INSERT INTO schema_migrations (version, name, applied_at) VALUES ({p}, {p}, {p})",
            (migration.version, migration.name, int(time.time())),
        )
        connection.execute("COMMIT")
        return True
    except BaseException:
        _rollback(connection)
        raise


def _rollback(connection: Any) -> None:
    """Roll back if a transaction is still open (SQLite ends some on its own)."""
    if getattr(connection, "in_transaction", True):
        with suppress(Exception):  # the original error matters more than this one
            connection.execute("ROLLBACK")
