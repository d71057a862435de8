"""The TSE store on PostgreSQL (psycopg 3 + psycopg_pool), for several API nodes.

Same promises as ``storage/sqlite.py`` (ports.py, "Nothing lost"), checked by the
same conformance suite (``opentse.testing.store_conformance``). How they are kept
when several processes on several machines sign for the same TSE:

* Per-TSE serialisation: ``run_locked`` opens a transaction and takes the TSE's
  row lock (``SELECT ... FROM tses WHERE tse_id = %s FOR UPDATE``). Writers of one
  TSE queue on that lock in any process; writers of different TSEs never meet.
  A process that dies (SIGKILL) closes its socket and PostgreSQL rolls its
  transaction back at once, releasing the lock.
* Counters: ``append`` checks that logs follow the stored counter by +1 (TR-03151:
  one per signature); the schema's trigger checks it again and advances
  ``last_signature_counter``; the state must be saved with that counter.
* Durability: logs and state commit in ONE transaction with ``synchronous_commit
  = on`` before ``run_locked`` returns, so a signature never leaves the process
  before its log message is on disk. If the commit fails, fn's result is dropped.
* State cache: the parsed ``TSEState`` is kept per TSE with its version. The lock
  query returns the state text only when the stored version differs from the
  cached one; versions increase under the row lock, so (tse, version) names one
  committed state in the whole cluster. An entry is taken out while ``fn`` runs
  (it may mutate the object) and put back only after a successful commit.
* ``iter_logs`` streams through a server-side (named) cursor: bounded memory.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from opentse.engine.ports import LockedTSE, LogFilter, StoredLog, TSERecord
from opentse.engine.state import TSEState
from opentse.errors import ConflictError, NotFoundError, OpenTSEError, StorageError
from opentse.storage import migrations
from opentse.storage.rows import (
    LOG_COLUMNS,
    RECORD_COLUMNS,
    filter_sql,
    log_from_row,
    log_params,
    record_from_row,
    record_params,
    state_from_json,
    state_to_json,
)

T = TypeVar("T")

_FETCH = 256  # rows per round trip of the server-side cursor in iter_logs
_CACHE_SIZE = 4096  # TSEState objects kept per process
_DEFAULT_POOL_MAX = 10
_MIGRATION_LOCK = 151_03151  # first key of pg_advisory_lock(int, int); second: schema

_INSERT_LOG = f"INSERT INTO logs ({LOG_COLUMNS}) VALUES ({', '.join(['%s'] * 11)})"
_INSERT_TSE = (
    f"INSERT INTO tses ({RECORD_COLUMNS}, state, version, last_signature_counter)"
    f" VALUES ({', '.join(['%s'] * 14)})"
)
# The lock query: the state text only when the caller's cached version is stale.
_LOCK_TSE = (
    "SELECT version, last_signature_counter,"
    " CASE WHEN version = %s THEN NULL ELSE state END"
    " FROM tses WHERE tse_id = %s FOR UPDATE"
)

_cursor_names = itertools.count(1)


def is_postgres_url(url: str | None) -> bool:
    return url is not None and url.startswith(("postgresql://", "postgres://"))


def _not_found(tse_id: str) -> NotFoundError:
    return NotFoundError(f"TSE {tse_id!r} does not exist", code="E_TSE_NOT_FOUND")


def _storage_error(doing: str, exc: BaseException) -> StorageError:
    """A StorageError naming what failed; never the URL (it may carry a password)."""
    if isinstance(exc, PoolTimeout | pg_errors.LockNotAvailable | pg_errors.QueryCanceled):
        code = "E_STORAGE_BUSY"
    elif isinstance(exc, psycopg.OperationalError):
        code = "E_STORAGE_UNAVAILABLE"
    else:
        code = "E_STORAGE"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StorageError(f"PostgreSQL failed while {doing}: {text}", code=code)


def migrate(url: str, *, connect_timeout: int = 10) -> list[int]:
    """Apply the numbered PostgreSQL migrations not yet applied; return their versions.

    Concurrent migrators (several nodes starting at once) are serialised by an
    advisory lock per schema: ``CREATE TABLE IF NOT EXISTS`` alone races in
    PostgreSQL.
    """
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout)
    except psycopg.Error as exc:
        raise _storage_error("connecting", exc) from exc
    try:
        conn.execute(
            "SELECT pg_advisory_lock(%s, hashtext(coalesce(current_schema(), '')))",
            (_MIGRATION_LOCK,),
        )
        return migrations.apply(conn, "postgresql")
    except psycopg.Error as exc:
        raise _storage_error("migrating", exc) from exc
    finally:
        conn.close()  # ends the session and with it the advisory lock


class PostgresStore:
    """``engine.ports.TSEStore`` on PostgreSQL (see the module docstring).

    ``url`` is a libpq URI (``postgresql://user@host:5432/db?options=...``);
    ``pool_max`` defaults to ``OPENTSE_PG_POOL_MAX`` or 10 connections per process.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_min: int = 1,
        pool_max: int | None = None,
        timeout: float = 30.0,
        apply_migrations: bool = True,
    ) -> None:
        if not is_postgres_url(url):
            raise StorageError("PostgresStore needs a postgresql:// URL", code="E_DATABASE_URL")
        self.url = url
        if pool_max is None:
            pool_max = int(os.environ.get("OPENTSE_PG_POOL_MAX", _DEFAULT_POOL_MAX))
        if apply_migrations:
            migrate(url, connect_timeout=max(1, int(timeout)))
        self._pool = ConnectionPool(
            url,
            min_size=max(1, min(pool_min, pool_max)),
            max_size=max(2, pool_max),  # iter_logs plus a writer need two
            kwargs={"autocommit": True},
            configure=_configure,
            timeout=timeout,
            open=False,
            name="opentse",
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except psycopg.Error as exc:
            self._pool.close()
            raise _storage_error("connecting", exc) from exc
        self._closed = False
        self._local = threading.local()
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[int, TSEState]] = OrderedDict()
        self._stats_lock = threading.Lock()
        self._stats = {"requests": 0, "commits": 0, "state_parsed": 0}

    def __repr__(self) -> str:  # the URL may hold a password
        return "PostgresStore(...)"

    # -- connections -------------------------------------------------------------

    @contextmanager
    def _connection(self, doing: str) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise StorageError("the store is closed", code="E_STORE_CLOSED")
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise _storage_error(doing, exc) from exc

    def _one(self, doing: str, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        with self._connection(doing) as conn:
            return conn.execute(sql, params).fetchone()

    # -- the state cache ---------------------------------------------------------

    def _cached_version(self, tse_id: str) -> int:
        with self._cache_lock:
            entry = self._cache.get(tse_id)
        return -1 if entry is None else entry[0]

    def _take(self, tse_id: str, version: int) -> TSEState | None:
        """Remove and return the cached state of ``version`` (fn may mutate it)."""
        with self._cache_lock:
            entry = self._cache.pop(tse_id, None)
        if entry is None or entry[0] != version:
            return None
        return entry[1]

    def _remember(self, tse_id: str, version: int, state: TSEState) -> None:
        """Cache a committed state; a newer entry already there wins."""
        with self._cache_lock:
            entry = self._cache.get(tse_id)
            if entry is not None and entry[0] > version:
                return
            self._cache[tse_id] = (version, state)
            self._cache.move_to_end(tse_id)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)

    def _forget(self, tse_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(tse_id, None)

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self._stats[name] += 1

    # -- TSEStore: writes --------------------------------------------------------

    def create_tse(self, record: TSERecord, state: TSEState) -> None:
        if state.tse_id != record.tse_id:
            raise StorageError("state.tse_id differs from record.tse_id", code="E_TSE_MISMATCH")
        params = (*record_params(record), state_to_json(state), state.version)
        params += (state.signature_counter,)
        self._forget(record.tse_id)
        try:
            with self._connection("creating a TSE") as conn:
                conn.execute(_INSERT_TSE, params)
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, pg_errors.UniqueViolation):
                constraint = cause.diag.constraint_name or ""
                what = "serial number" if "serial" in constraint else "id"
                raise ConflictError(
                    f"a TSE with this {what} exists ({record.tse_id!r})", code="E_TSE_CONFLICT"
                ) from None
            raise

    def run_locked(self, tse_id: str, fn: Callable[[LockedTSE], T]) -> T:
        if getattr(self._local, "busy", False):
            raise StorageError(
                "run_locked/create_tse called from inside run_locked", code="E_STORE_REENTRANT"
            )
        self._local.busy = True
        try:
            return self._run_locked(tse_id, fn)
        finally:
            self._local.busy = False

    def _run_locked(self, tse_id: str, fn: Callable[[LockedTSE], T]) -> T:
        self._count("requests")
        view: _LockedView | None = None
        with self._connection("running a TSE operation") as conn:
            try:
                with conn.transaction():
                    row = conn.execute(_LOCK_TSE, (self._cached_version(tse_id), tse_id)).fetchone()
                    if row is None:
                        raise _not_found(tse_id)
                    view = _LockedView(self, conn, tse_id, int(row[0]), int(row[1]), row[2])
                    try:
                        result = fn(view)
                        view.finish()
                    finally:
                        view.closed = True
                # leaving the block committed (synchronous_commit = on): durable now
            except BaseException:
                self._forget(tse_id)
                raise
        self._count("commits")
        if view.saved is not None:
            self._remember(tse_id, view.saved.version, view.saved)
        return result

    # -- TSEStore: reads ---------------------------------------------------------

    def get_record(self, tse_id: str) -> TSERecord:
        row = self._one(
            "reading a TSE", f"SELECT {RECORD_COLUMNS} FROM tses WHERE tse_id = %s", (tse_id,)
        )
        if row is None:
            raise _not_found(tse_id)
        return record_from_row(row)

    def get_state(self, tse_id: str) -> TSEState:
        """A committed snapshot, parsed afresh (the caller may change it freely)."""
        row = self._one(
            "reading a TSE state", "SELECT state, version FROM tses WHERE tse_id = %s", (tse_id,)
        )
        if row is None:
            raise _not_found(tse_id)
        return state_from_json(row[0], int(row[1]))

    def list_tses(self, owner: str | None = None) -> list[TSERecord]:
        """Records ordered by (created_at, tse_id), optionally of one owner."""
        sql = f"SELECT {RECORD_COLUMNS} FROM tses"
        params: tuple[str, ...] = ()
        if owner is not None:
            sql += " WHERE owner = %s"
            params = (owner,)
        with self._connection("listing TSEs") as conn:
            rows = conn.execute(sql + " ORDER BY created_at, tse_id", params).fetchall()
        return [record_from_row(row) for row in rows]

    def _require_tse(self, tse_id: str) -> None:
        if self._one("reading a TSE", "SELECT 1 FROM tses WHERE tse_id = %s", (tse_id,)) is None:
            raise _not_found(tse_id)

    def iter_logs(self, tse_id: str, flt: LogFilter | None = None) -> Iterator[StoredLog]:
        """Logs in counter order from one snapshot, through a server-side cursor.

        Raises NotFoundError at once (not at the first ``next``) for an unknown TSE.
        The iterator holds one pooled connection until it is exhausted or closed.
        """
        self._require_tse(tse_id)
        where, params = filter_sql(flt, "%s")
        sql = f"SELECT {LOG_COLUMNS} FROM logs WHERE tse_id = %s{where} ORDER BY signature_counter"
        return self._stream(sql, [tse_id, *params])

    def _stream(self, sql: str, params: Sequence[Any]) -> Iterator[StoredLog]:
        with (
            self._connection("reading logs") as conn,
            conn.transaction(),
            conn.cursor(name=f"opentse_logs_{next(_cursor_names)}") as cursor,
        ):
            cursor.itersize = _FETCH
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(_FETCH):
                for row in rows:
                    yield log_from_row(row)

    def count_logs(self, tse_id: str, flt: LogFilter | None = None) -> int:
        self._require_tse(tse_id)
        where, params = filter_sql(flt, "%s")
        row = self._one(
            "counting logs",
            f"SELECT COUNT(*) FROM logs WHERE tse_id = %s{where}",
            [tse_id, *params],
        )
        assert row is not None
        return int(row[0])

    def get_log(self, tse_id: str, signature_counter: int) -> StoredLog | None:
        row = self._one(
            "reading a log",
            f"SELECT {LOG_COLUMNS} FROM logs WHERE tse_id = %s AND signature_counter = %s",
            (tse_id, signature_counter),
        )
        return None if row is None else log_from_row(row)

    def find_ref(self, tse_id: str, ref: str) -> StoredLog | None:
        row = self._one(
            "reading a log",
            f"SELECT {LOG_COLUMNS} FROM logs WHERE tse_id = %s AND ref = %s",
            (tse_id, ref),
        )
        return None if row is None else log_from_row(row)

    # -- lifecycle ---------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """run_locked calls, commits, and how often a state had to be parsed."""
        with self._stats_lock:
            return dict(self._stats)

    def close(self) -> None:
        """Close every pooled connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Per pooled connection: a COMMIT returns only once it is durable."""
    conn.execute("SET synchronous_commit = on")


class _LockedView:
    """What ``fn`` sees inside ``run_locked``: one row-locked TSE in one transaction."""

    def __init__(
        self,
        store: PostgresStore,
        conn: psycopg.Connection[Any],
        tse_id: str,
        version: int,
        counter: int,
        state_text: str | None,
    ) -> None:
        self._store = store
        self._conn = conn
        self._tse_id = tse_id
        self._version = version  # committed before fn
        self._state_text = state_text  # None: the cache holds this version
        self._counter = counter  # last stored signature counter, including appends
        self._saved_counter = counter  # signature_counter of the state as saved
        self._current: TSEState | None = None
        self.saved: TSEState | None = None
        self.closed = False

    def _check_open(self) -> None:
        if self.closed:
            raise StorageError("LockedTSE used after run_locked returned", code="E_STORE_CLOSED")

    def load(self) -> TSEState:
        """The current state: the last one saved or loaded in this fn, the cached
        object when nobody wrote since, else parsed from the locked row."""
        self._check_open()
        if self._current is not None:
            return self._current
        state = None
        if self._state_text is None:
            state = self._store._take(self._tse_id, self._version)
        if state is None:
            text = self._state_text
            if text is None:  # the cache lost the entry since the lock query
                text = self._execute(
                    "reading a TSE state", "SELECT state FROM tses WHERE tse_id = %s"
                )[0]
            state = state_from_json(text, self._version)
            self._store._count("state_parsed")
        self._current = state
        return state

    def _execute(self, doing: str, sql: str) -> tuple[Any, ...]:
        try:
            row: tuple[Any, ...] | None = self._conn.execute(sql, (self._tse_id,)).fetchone()
        except psycopg.Error as exc:
            raise _storage_error(doing, exc) from exc
        assert row is not None  # the row is locked: it cannot vanish
        return row

    def save(self, state: TSEState) -> None:
        """Persist ``state`` (with ``version`` bumped, set on the object too).

        Its signature_counter must be the last stored one (TR-03151: the counter
        counts every signature; state and logs never disagree).
        """
        self._check_open()
        if state.tse_id != self._tse_id:
            raise StorageError("state belongs to another TSE", code="E_TSE_MISMATCH")
        if state.signature_counter != self._counter:
            raise StorageError(
                f"state.signature_counter {state.signature_counter} differs from the last "
                f"stored counter {self._counter}",
                code="E_COUNTER_GAP",
            )
        version = self._version + 1
        text = state_to_json(state)
        try:
            self._conn.execute(
                "UPDATE tses SET state = %s, version = %s WHERE tse_id = %s",
                (text, version, self._tse_id),
            )
        except psycopg.Error as exc:
            raise _storage_error("saving a TSE state", exc) from exc
        state.version = version
        self._saved_counter = state.signature_counter
        self._current = state
        self.saved = state

    def append(self, logs: Sequence[StoredLog]) -> None:
        """Store ``logs`` (all or none): counters must continue the stored ones by +1."""
        self._check_open()
        if not logs:
            return
        expected = self._counter + 1
        refs: set[str] = set()
        for log in logs:
            if log.tse_id != self._tse_id:
                raise StorageError("log belongs to another TSE", code="E_TSE_MISMATCH")
            if log.signature_counter != expected:
                raise StorageError(
                    f"signature counter {log.signature_counter} does not follow {expected - 1}",
                    code="E_COUNTER_GAP",
                )
            expected += 1
            if log.ref is not None:
                if log.ref in refs:
                    raise ConflictError(f"duplicate ref {log.ref!r}", code="E_DUPLICATE_REF")
                refs.add(log.ref)
        params = [log_params(log) for log in logs]  # StorageError before writing anything
        try:
            with self._conn.transaction(), self._conn.cursor() as cursor:  # a savepoint
                if len(params) == 1:
                    cursor.execute(_INSERT_LOG, params[0])
                else:
                    cursor.executemany(_INSERT_LOG, params)
        except psycopg.Error as exc:
            raise _append_error(exc) from exc
        self._counter = expected - 1

    def find_ref(self, ref: str) -> StoredLog | None:
        self._check_open()
        try:
            row = self._conn.execute(
                f"SELECT {LOG_COLUMNS} FROM logs WHERE tse_id = %s AND ref = %s",
                (self._tse_id, ref),
            ).fetchone()
        except psycopg.Error as exc:
            raise _storage_error("reading a log", exc) from exc
        return None if row is None else log_from_row(row)

    def finish(self) -> None:
        """After ``fn``: appended logs require the state saved with their counter."""
        if self._saved_counter != self._counter:
            raise StorageError(
                f"logs up to counter {self._counter} appended but the state was saved "
                f"with {self._saved_counter}",
                code="E_COUNTER_GAP",
            )


def _append_error(exc: psycopg.Error) -> OpenTSEError:
    constraint = exc.diag.constraint_name or ""
    if isinstance(exc, pg_errors.UniqueViolation) and "ref" in constraint:
        return ConflictError("a log with this ref exists", code="E_DUPLICATE_REF")
    if isinstance(exc, pg_errors.UniqueViolation | pg_errors.CheckViolation):
        return StorageError(f"signature counter rejected: {exc}", code="E_COUNTER_GAP")
    return _storage_error("appending logs", exc)
