"""The HTTP service's own tables (``server/service_store.py``) on PostgreSQL.

``PgServiceStore`` reuses every query of ``ServiceStore`` unchanged and swaps its
connection handling: statements borrow a connection from a small psycopg pool
(autocommit), ``_tx`` holds one connection for a transaction; psycopg errors are
raised as the matching ``sqlite3`` classes, which ServiceStore already handles. The SQL is SQLite
flavoured; ``translate`` maps the few differences (``?`` placeholders, ``BEGIN
IMMEDIATE``, an alias for the derived table of ``_page``). ``rowid`` ordering works
because migration ``postgresql/0002_service.sql`` gives every table a ``rowid``
identity column.

``open_service_store(installation, data_dir)`` picks the right one for the engine
store of an installation, so the server and ``opentse apikey`` need one call.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from opentse.errors import StorageError
from opentse.server.service_store import ServiceStore
from opentse.storage.pg_deadline import (
    QUERY_DEADLINE,
    REQUEST_WAIT,
    WATCHDOG,
    Watch,
    check_connection,
    connection_kwargs,
    no_answer,
)
from opentse.storage.postgres import PostgresStore, _storage_error, migrate

_STRING = re.compile(r"('(?:[^']|'')*')")
_DERIVED = re.compile(r"^(SELECT count\(\*\) FROM \(.*\))$", re.DOTALL | re.IGNORECASE)


def translate(sql: str, with_params: bool = True) -> str:
    """SQLite-flavoured SQL of ServiceStore -> PostgreSQL (outside string literals).

    ``%`` is doubled only when parameters follow (psycopg interpolates only then).
    """
    if sql.strip().upper() == "BEGIN IMMEDIATE":
        return "BEGIN"
    parts = _STRING.split(sql)
    for index in range(0, len(parts), 2):  # even parts are outside '...'
        if with_params:
            parts[index] = parts[index].replace("%", "%%")
        parts[index] = parts[index].replace("?", "%s")
    out = "".join(parts)
    if _DERIVED.match(out):
        out += " AS page"  # PostgreSQL < 16 needs an alias for a subquery in FROM
    return out


class _Result:
    """A finished statement's rows, detached from its (returned) connection."""

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)


class _Conn:
    """The sqlite3.Connection subset ServiceStore uses, on a pool or one connection."""

    def __init__(
        self,
        pool: ConnectionPool,
        wait: Callable[[], float],
        held: psycopg.Connection[Any] | None = None,
        held_watch: Watch | None = None,
    ):
        self._pool = pool
        self._wait = wait
        self._held = held
        self._held_watch = held_watch  # the transaction's deadline, renewed per statement

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Result:
        """One statement, answered within QUERY_DEADLINE (pg_deadline)."""
        watch = self._held_watch
        try:
            if self._held is not None:
                if watch is not None:
                    watch.renew()
                result = _run(self._held, sql, params)
                if watch is not None:
                    watch.renew()  # the next statement, or COMMIT, gets its own
                return result
            with (
                self._pool.connection(timeout=self._wait()) as conn,
                WATCHDOG.watch(conn, QUERY_DEADLINE) as watch,
            ):
                return _run(conn, sql, params)
        except psycopg.Error as exc:
            raise _translate_error(exc, watch is not None and watch.expired) from exc

    def commit(self) -> None:
        """Autocommit: nothing to do (ServiceStore calls it after migrating)."""


def _run(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any]) -> _Result:
    cursor = conn.execute(translate(sql, bool(params)), tuple(params) if params else None)
    rows = cursor.fetchall() if cursor.description is not None else []
    return _Result(rows, cursor.rowcount)


class DatabaseUnavailable(StorageError, sqlite3.OperationalError):
    """The database cannot be reached or is busy (no connection within the pool's
    wait, a connection lost, a lock or statement timeout): a StorageError, so the API
    answers 503 with Retry-After instead of 500, and still the sqlite3 class
    ServiceStore's own handlers catch."""


def _translate_error(exc: psycopg.Error, cut: bool = False) -> sqlite3.Error:
    """psycopg errors as the sqlite3 classes ServiceStore and its callers handle;
    ``cut``: the deadline dropped the connection."""
    if cut:
        return DatabaseUnavailable(
            f"PostgreSQL failed while reading or writing the service tables: "
            f"{no_answer(QUERY_DEADLINE)}",
            code="E_STORAGE_UNAVAILABLE",
        )
    text = f"PostgreSQL: {str(exc).strip()}"
    if isinstance(exc, psycopg.IntegrityError):
        return sqlite3.IntegrityError(text)
    if isinstance(exc, psycopg.OperationalError):
        error = _storage_error("reading or writing the service tables", exc)
        return DatabaseUnavailable(error.message, code=error.code)
    return sqlite3.DatabaseError(text)


POOL_WAIT = REQUEST_WAIT  # seconds a statement waits for a pooled connection
STOP_WAIT = 2.0  # ... once the node is stopping (``stopping``)


class PgServiceStore(ServiceStore):
    """``ServiceStore`` on PostgreSQL; the schema is applied by ``migrate``."""

    # export leases: the database server's clock, shared by every node (unix ms)
    _NOW_MS = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"

    def __init__(self, url: str, *, pool_max: int = 6, apply_migrations: bool = True) -> None:
        if apply_migrations:
            migrate(url)
        # how long a statement waits for a pooled connection: POOL_WAIT, less in a
        # ``waiting`` block of the calling thread, and at most STOP_WAIT once stopping
        self._wait_default = POOL_WAIT
        self._wait_local = threading.local()
        self._pg_pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(2, pool_max),
            kwargs=connection_kwargs(url, autocommit=True),
            check=check_connection,  # after a server restart: reconnect
            timeout=POOL_WAIT,
            open=False,
            name="opentse-service",
        )
        self._pg_pool.open(wait=True, timeout=30.0)
        self._pg_closed = False
        try:
            super().__init__(Path(os.devnull))  # no file: every query goes to the pool
        except BaseException:
            self._pg_pool.close()
            raise
        WATCHDOG.attach()

    def _migrate(self) -> None:
        """Done in ``__init__`` (``storage.postgres.migrate``, PostgreSQL dialect)."""

    def _conn(self) -> Any:
        if self._pg_closed:
            raise sqlite3.ProgrammingError("the service store is closed")
        return _Conn(self._pg_pool, self._wait)

    def _wait(self) -> float:
        """Seconds this thread's next statement waits for a connection."""
        local: float | None = getattr(self._wait_local, "seconds", None)
        return self._wait_default if local is None else min(local, self._wait_default)

    @contextmanager
    def waiting(self, seconds: float) -> Iterator[None]:
        """Statements of this thread in the block wait at most ``seconds`` for a
        connection (the export heartbeat: a node whose database is away notices it in
        seconds, not after the REQUEST_WAIT a request may wait for the database)."""
        before = getattr(self._wait_local, "seconds", None)
        self._wait_local.seconds = seconds
        try:
            yield
        finally:
            self._wait_local.seconds = before

    def stopping(self) -> None:
        """From now on every statement waits at most STOP_WAIT seconds for a
        connection: a node stopping while its database does not answer ends in
        seconds (its export leases run out on their own)."""
        self._wait_default = min(self._wait_default, STOP_WAIT)
        super().stopping()

    @contextmanager
    def _tx(self, *, durable: bool = False) -> Iterator[Any]:
        """One transaction on one connection; not ``durable`` ones (index rows, which
        the logs can rebuild) commit without waiting for the disk."""
        if self._pg_closed:
            raise sqlite3.ProgrammingError("the service store is closed")
        watch = None
        try:
            with (
                self._pg_pool.connection(timeout=self._wait()) as conn,
                WATCHDOG.watch(conn, QUERY_DEADLINE) as watch,  # renewed per statement
                conn.transaction(),
            ):
                setting = "on" if durable else "off"  # explicit: not the server default
                conn.execute(f"SET LOCAL synchronous_commit = {setting}")
                yield _Conn(self._pg_pool, self._wait, conn, watch)
        except psycopg.Error as exc:  # BEGIN or COMMIT failed
            raise _translate_error(exc, watch is not None and watch.expired) from exc

    def close(self) -> None:
        """Drain the base class's index writer, then close the pool. Idempotent."""
        if self._pg_closed:
            return
        super().close()
        self._pg_closed = True
        self._pg_pool.close(timeout=STOP_WAIT)
        WATCHDOG.detach()


def open_service_store(installation: Any, data_dir: Path) -> ServiceStore:
    """The service store beside an installation's engine store (same database)."""
    store = getattr(installation, "store", None)
    if isinstance(store, PostgresStore):
        return PgServiceStore(store.url)
    from opentse.server.context import db_path_of

    return ServiceStore(db_path_of(installation, data_dir))
