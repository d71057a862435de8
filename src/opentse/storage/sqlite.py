"""The embedded TSE store on stdlib sqlite3, with group commit.

Promise (ports.py, "Nothing lost"): a signature is returned only after its log
message is durably stored, and counters never skip or repeat, across crashes,
restarts and concurrent clients. How:

* WAL journal with ``synchronous=FULL``: a COMMIT is on disk when it returns.
* One writer thread owns the write connection. ``run_locked`` queues ``fn`` and
  waits; the writer takes every queued request, runs them one after another inside
  ONE ``BEGIN IMMEDIATE`` .. ``COMMIT`` with a SAVEPOINT each (a failing ``fn`` loses
  only its own effects), commits once and only then releases the waiters. One fsync
  serves many callers: fsync, not signing, is what limits throughput. After a
  shared commit the writer waits up to 0.5 ms for those callers' next requests.
* ``BEGIN IMMEDIATE`` takes SQLite's write lock, so other processes on the same file
  are excluded too; they wait up to ``busy_timeout``.
* Counters: ``append`` checks that logs follow the stored counter consecutively,
  the schema's triggers check it again, and the state must be saved with the last
  appended counter before ``fn`` returns (TR-03151: +1 for every signature).
* Reads use a small pool of separate read connections (a WAL reader sees the last
  commit and never blocks the writer); ``iter_logs`` streams with ``fetchmany``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any, TypeVar, cast

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

_FETCH = 256  # rows per fetchmany in iter_logs
_IDLE_READERS = 8
_CACHE_SIZE = 1024  # TSEState objects kept by the writer
_GATHER_SECONDS = 0.0005  # see SQLiteStore._gather

_HEAD = (  # what run_locked needs before fn: the state's version and the last counter
    "SELECT s.version, c.last_signature_counter FROM tse_states AS s"
    " JOIN tse_counters AS c ON c.tse_id = s.tse_id WHERE s.tse_id = ?"
)
_INSERT_LOG = f"INSERT INTO logs ({LOG_COLUMNS}) VALUES ({', '.join('?' * 11)})"


def _not_found(tse_id: str) -> NotFoundError:
    return NotFoundError(f"TSE {tse_id!r} does not exist", code="E_TSE_NOT_FOUND")


def _storage_error(doing: str, exc: BaseException) -> StorageError:
    code = "E_STORAGE_BUSY" if _is_busy(exc) else "E_STORAGE"
    return StorageError(f"SQLite failed while {doing}: {exc}", code=code)


def _is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _configure(conn: sqlite3.Connection, writer: bool, timeout: float) -> None:
    """Per-connection settings; the writer's are what makes a COMMIT durable."""
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    if writer:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StorageError(f"WAL journal not available ({mode})", code="E_STORAGE")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA fullfsync = ON")  # macOS: flush the drive cache too
        conn.execute("PRAGMA journal_size_limit = 67108864")  # WAL shrinks back to 64 MiB
    else:
        conn.execute("PRAGMA query_only = ON")


def _rollback_quietly(conn: sqlite3.Connection) -> None:
    """End a failed transaction; the error that got us here is the one to report."""
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


class _Request:
    """One queued write: ``op`` runs on the writer connection inside a savepoint."""

    __slots__ = ("done", "error", "op", "result")

    def __init__(self, op: Callable[[sqlite3.Connection], object]) -> None:
        self.op = op
        self.done = threading.Event()
        self.result: object = None
        self.error: BaseException | None = None


class SQLiteStore:
    """``engine.ports.TSEStore`` on one SQLite file (see the module docstring)."""

    def __init__(
        self, path: Path | str, *, busy_timeout: float = 30.0, max_batch: int = 256
    ) -> None:
        if str(path) == ":memory:" or str(path).startswith("file:"):
            raise StorageError("SQLiteStore needs a file path", code="E_STORAGE")
        self._path = str(path)
        self._timeout = busy_timeout
        self._max_batch = max_batch
        self._write = self._connect(writer=True)
        try:
            self._retry_busy(lambda: migrations.apply(self._write, "sqlite"))
        except BaseException:
            self._write.close()
            raise
        self._queue: SimpleQueue[_Request | None] = SimpleQueue()
        self._submit_lock = threading.Lock()
        self._closed = False
        self._readers_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._readers: set[sqlite3.Connection] = set()
        self._cache: OrderedDict[str, tuple[int, TSEState]] = OrderedDict()
        self._stats = {"requests": 0, "commits": 0}
        self._writer = threading.Thread(
            target=self._writer_loop, name="opentse-sqlite-writer", daemon=True
        )
        self._writer.start()

    # -- connections -------------------------------------------------------------

    def _connect(self, *, writer: bool) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise _storage_error(f"opening {self._path}", exc) from exc
        try:
            self._retry_busy(lambda: _configure(conn, writer, self._timeout))
        except sqlite3.Error as exc:
            conn.close()
            raise _storage_error(f"configuring {self._path}", exc) from exc
        except StorageError:
            conn.close()
            raise
        return conn

    def _retry_busy(self, action: Callable[[], T]) -> T:
        """Retry ``action`` while SQLite reports a lock that its busy handler does not
        wait for (WAL recovery after a crash, a journal-mode check during recovery)."""
        deadline = time.monotonic() + self._timeout
        delay = 0.002
        while True:
            try:
                return action()
            except (sqlite3.OperationalError, StorageError) as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _borrow(self) -> sqlite3.Connection:
        with self._readers_lock:
            if self._closed:
                raise StorageError("the store is closed", code="E_STORE_CLOSED")
            if self._idle:
                return self._idle.pop()
        conn = self._connect(writer=False)
        with self._readers_lock:
            self._readers.add(conn)
        return conn

    def _give_back(self, conn: sqlite3.Connection) -> None:
        with self._readers_lock:
            if not self._closed and len(self._idle) < _IDLE_READERS:
                self._idle.append(conn)
                return
            self._readers.discard(conn)
        conn.close()

    @contextmanager
    def _reading(self, doing: str) -> Iterator[sqlite3.Connection]:
        conn = self._borrow()
        try:
            yield conn
        except sqlite3.Error as exc:
            raise _storage_error(doing, exc) from exc
        finally:
            self._give_back(conn)

    # -- the writer --------------------------------------------------------------

    def _submit(self, op: Callable[[sqlite3.Connection], object]) -> object:
        if threading.current_thread() is self._writer:
            raise StorageError(
                "run_locked/create_tse called from inside run_locked", code="E_STORE_REENTRANT"
            )
        request = _Request(op)
        with self._submit_lock:
            if self._closed:
                raise StorageError("the store is closed", code="E_STORE_CLOSED")
            self._queue.put(request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def _writer_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                self._run_batch(batch)
            except BaseException as exc:  # a bug here must not leave callers waiting
                self._cache.clear()
                _rollback_quietly(self._write)
                for request in batch:
                    if not request.done.is_set():
                        request.error = StorageError(f"store writer failed: {exc!r}")
                        request.done.set()
            if stop:
                return
            if len(batch) > 1:
                self._gather(len(batch))

    def _gather(self, expected: int) -> None:
        """After a shared commit, give its callers a moment to queue their next call.

        Without this the writer starts the next transaction with whoever queued
        during the fsync, and concurrent callers split into two alternating halves
        (half the calls per fsync). A lone caller never waits: batches of one skip it.
        """
        deadline = time.monotonic() + _GATHER_SECONDS
        while self._queue.qsize() < expected and time.monotonic() < deadline:
            time.sleep(_GATHER_SECONDS / 10)

    def _run_batch(self, batch: list[_Request]) -> None:
        """Run ``batch`` in one transaction; release every waiter after COMMIT."""
        conn = self._write
        try:
            self._retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
        except sqlite3.Error as exc:
            for request in batch:
                request.error = _storage_error("locking the database", exc)
                request.done.set()
            return
        succeeded: list[_Request] = []
        for index, request in enumerate(batch):
            self._stats["requests"] += 1
            conn.execute("SAVEPOINT request")
            try:
                request.result = request.op(conn)
            except BaseException as exc:
                request.error = (
                    _storage_error("writing", exc) if isinstance(exc, sqlite3.Error) else exc
                )
                if not conn.in_transaction:
                    # SQLite rolled the whole transaction back (disk full, I/O error):
                    # the requests before this one are lost; the rest get a new one.
                    self._cache.clear()
                    for earlier in succeeded:
                        earlier.result = None
                        earlier.error = _storage_error("writing", exc)
                    request.done.set()
                    for earlier in succeeded:
                        earlier.done.set()
                    if index + 1 < len(batch):
                        self._run_batch(batch[index + 1 :])
                    return
                conn.execute("ROLLBACK TO request")
                conn.execute("RELEASE request")
            else:
                conn.execute("RELEASE request")
                succeeded.append(request)
        try:
            conn.execute("COMMIT")
            self._stats["commits"] += 1
        except sqlite3.Error as exc:
            self._cache.clear()
            _rollback_quietly(conn)
            for request in succeeded:
                request.result = None
                request.error = _storage_error("committing", exc)
        for request in batch:
            request.done.set()

    def _cached(self, tse_id: str, version: int) -> TSEState | None:
        entry = self._cache.get(tse_id)
        if entry is None or entry[0] != version:
            return None
        self._cache.move_to_end(tse_id)
        return entry[1]

    def _remember(self, tse_id: str, version: int, state: TSEState) -> None:
        self._cache[tse_id] = (version, state)
        self._cache.move_to_end(tse_id)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)

    def _forget(self, tse_id: str) -> None:
        self._cache.pop(tse_id, None)

    # -- TSEStore: writes --------------------------------------------------------

    def create_tse(self, record: TSERecord, state: TSEState) -> None:
        if state.tse_id != record.tse_id:
            raise StorageError("state.tse_id differs from record.tse_id", code="E_TSE_MISMATCH")
        params = record_params(record)
        state_json = state_to_json(state)

        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    f"INSERT INTO tses ({RECORD_COLUMNS}) VALUES ({', '.join('?' * 11)})", params
                )
            except sqlite3.IntegrityError as exc:
                what = "serial number" if "serial_number" in str(exc) else "id"
                raise ConflictError(
                    f"a TSE with this {what} exists ({record.tse_id!r})", code="E_TSE_CONFLICT"
                ) from exc
            conn.execute(
                "INSERT INTO tse_states (tse_id, version, state) VALUES (?, ?, ?)",
                (record.tse_id, state.version, state_json),
            )
            conn.execute(
                "INSERT INTO tse_counters (tse_id, last_signature_counter) VALUES (?, ?)",
                (record.tse_id, state.signature_counter),
            )
            self._forget(record.tse_id)

        self._submit(op)

    def run_locked(self, tse_id: str, fn: Callable[[LockedTSE], T]) -> T:
        def op(conn: sqlite3.Connection) -> object:
            row = conn.execute(_HEAD, (tse_id,)).fetchone()
            if row is None:
                raise _not_found(tse_id)
            view = _LockedView(self, conn, tse_id, int(row[0]), int(row[1]))
            try:
                result = fn(view)
                view.finish()
            except BaseException:
                self._forget(tse_id)
                raise
            finally:
                view.closed = True
            return result

        return cast(T, self._submit(op))

    # -- TSEStore: reads ---------------------------------------------------------

    def _fetch(self, doing: str, sql: str, params: Sequence[Any]) -> list[Any]:
        """All rows of a short query on a pooled read connection (retried while busy)."""

        def attempt() -> list[Any]:
            with self._reading(doing) as conn:
                return conn.execute(sql, params).fetchall()

        return self._retry_busy(attempt)

    def _fetch_one(self, doing: str, sql: str, params: Sequence[Any]) -> Any:
        rows = self._fetch(doing, sql, params)
        return rows[0] if rows else None

    def get_record(self, tse_id: str) -> TSERecord:
        row = self._fetch_one(
            "reading a TSE", f"SELECT {RECORD_COLUMNS} FROM tses WHERE tse_id = ?", (tse_id,)
        )
        if row is None:
            raise _not_found(tse_id)
        return record_from_row(row)

    def get_state(self, tse_id: str) -> TSEState:
        row = self._fetch_one(
            "reading a TSE state",
            "SELECT state, version FROM tse_states WHERE tse_id = ?",
            (tse_id,),
        )
        if row is None:
            raise _not_found(tse_id)
        return state_from_json(row[0], int(row[1]))

    def list_tses(self, owner: str | None = None) -> list[TSERecord]:
        """Records ordered by (created_at, tse_id), optionally of one owner."""
        sql = f"SELECT {RECORD_COLUMNS} FROM tses"
        params: tuple[str, ...] = ()
        if owner is not None:
            sql += " WHERE owner = ?"
            params = (owner,)
        rows = self._fetch("listing TSEs", sql + " ORDER BY created_at, tse_id", params)
        return [record_from_row(row) for row in rows]

    def _require_tse(self, tse_id: str) -> None:
        if self._fetch_one("reading a TSE", "SELECT 1 FROM tses WHERE tse_id = ?", (tse_id,)):
            return
        raise _not_found(tse_id)

    def iter_logs(self, tse_id: str, flt: LogFilter | None = None) -> Iterator[StoredLog]:
        """Logs in counter order from one read snapshot, ``_FETCH`` rows at a time.

        Raises NotFoundError at once (not at the first ``next``) for an unknown TSE.
        """
        self._require_tse(tse_id)
        where, params = filter_sql(flt)
        sql = f"SELECT {LOG_COLUMNS} FROM logs WHERE tse_id = ?{where} ORDER BY signature_counter"
        return self._stream(sql, [tse_id, *params])

    def _stream(self, sql: str, params: Sequence[Any]) -> Iterator[StoredLog]:
        with self._reading("reading logs") as conn:
            cursor = self._retry_busy(lambda: conn.execute(sql, params))
            try:
                while rows := cursor.fetchmany(_FETCH):
                    for row in rows:
                        yield log_from_row(row)
            finally:
                cursor.close()

    def count_logs(self, tse_id: str, flt: LogFilter | None = None) -> int:
        self._require_tse(tse_id)
        where, params = filter_sql(flt)
        sql = f"SELECT COUNT(*) FROM logs WHERE tse_id = ?{where}"
        return int(self._fetch_one("counting logs", sql, [tse_id, *params])[0])

    def get_log(self, tse_id: str, signature_counter: int) -> StoredLog | None:
        row = self._fetch_one(
            "reading a log",
            f"SELECT {LOG_COLUMNS} FROM logs WHERE tse_id = ? AND signature_counter = ?",
            (tse_id, signature_counter),
        )
        return None if row is None else log_from_row(row)

    def find_ref(self, tse_id: str, ref: str) -> StoredLog | None:
        row = self._fetch_one(
            "reading a log",
            f"SELECT {LOG_COLUMNS} FROM logs WHERE tse_id = ? AND ref = ?",
            (tse_id, ref),
        )
        return None if row is None else log_from_row(row)

    # -- lifecycle ---------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """Requests run and transactions committed by the writer (group-commit ratio)."""
        return dict(self._stats)

    def close(self) -> None:
        """Finish queued writes, stop the writer, close every connection. Idempotent."""
        with self._submit_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        if threading.current_thread() is not self._writer:
            self._writer.join()
        with self._readers_lock:
            readers = list(self._readers)
            self._readers.clear()
            self._idle.clear()
        for conn in readers:
            conn.close()
        self._write.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _LockedView:
    """What ``fn`` sees inside ``run_locked``: one TSE, on the writer connection."""

    def __init__(
        self, store: SQLiteStore, conn: sqlite3.Connection, tse_id: str, version: int, counter: int
    ) -> None:
        self._store = store
        self._conn = conn
        self._tse_id = tse_id
        self._version = version  # committed (or earlier in this batch) before fn
        self._counter = counter  # last stored signature counter, including appends
        self._saved_counter = counter  # signature_counter of the state as saved
        self._loaded = False
        self._saved = False
        self.closed = False

    def _check_open(self) -> None:
        if self.closed:
            raise StorageError("LockedTSE used after run_locked returned", code="E_STORE_CLOSED")

    def load(self) -> TSEState:
        """The current state; the writer's cached object when nobody wrote since."""
        self._check_open()
        if self._saved:
            cached = self._store._cached(self._tse_id, self._version + 1)
        else:
            cached = self._store._cached(self._tse_id, self._version)
        self._loaded = True
        if cached is not None:
            return cached
        row = self._conn.execute(
            "SELECT state, version FROM tse_states WHERE tse_id = ?", (self._tse_id,)
        ).fetchone()
        state = state_from_json(row[0], int(row[1]))
        self._store._remember(self._tse_id, state.version, state)
        return state

    def save(self, state: TSEState) -> None:
        """Persist ``state`` (with ``version`` bumped, set on the object too).

        Its signature_counter must be the last stored one (TR-03151: the counter
        counts every signature; state and logs never disagree). The writer keeps this
        very object as its cached state: change it after ``save`` only to save again.
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
        state.version = version
        text = state_to_json(state)
        self._conn.execute(
            "UPDATE tse_states SET state = ?, version = ? WHERE tse_id = ?",
            (text, version, self._tse_id),
        )
        self._saved = True
        self._saved_counter = state.signature_counter
        self._store._remember(self._tse_id, version, state)

    def append(self, logs: Sequence[StoredLog]) -> None:
        """Store ``logs`` (all or none): counters must continue the stored ones by +1."""
        self._check_open()
        if not logs:
            return
        expected = self._counter + 1
        for log in logs:  # checked in this order by every store: counters, refs, data
            if log.tse_id != self._tse_id:
                raise StorageError("log belongs to another TSE", code="E_TSE_MISMATCH")
            if log.signature_counter != expected:
                raise StorageError(
                    f"signature counter {log.signature_counter} does not follow {expected - 1}",
                    code="E_COUNTER_GAP",
                )
            expected += 1
        refs = [log.ref for log in logs if log.ref is not None]
        if len(set(refs)) != len(refs):
            raise ConflictError("the same ref twice in one append", code="E_DUPLICATE_REF")
        params = [log_params(log) for log in logs]
        conn = self._conn
        if len(params) == 1:  # one statement is atomic by itself
            try:
                conn.execute(_INSERT_LOG, params[0])
            except sqlite3.Error as exc:
                raise _append_error(exc) from exc
        else:
            conn.execute("SAVEPOINT append")
            try:
                conn.executemany(_INSERT_LOG, params)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK TO append")
                    conn.execute("RELEASE append")
                raise _append_error(exc) from exc
            conn.execute("RELEASE append")
        self._counter = expected - 1

    def find_ref(self, ref: str) -> StoredLog | None:
        self._check_open()
        row = self._conn.execute(
            f"SELECT {LOG_COLUMNS} FROM logs WHERE tse_id = ? AND ref = ?", (self._tse_id, ref)
        ).fetchone()
        return None if row is None else log_from_row(row)

    def finish(self) -> None:
        """After ``fn``: appended logs require the state saved with their counter."""
        if self._saved_counter != self._counter:
            raise StorageError(
                f"logs up to counter {self._counter} appended but the state was saved "
                f"with {self._saved_counter}",
                code="E_COUNTER_GAP",
            )
        if self._loaded and not self._saved:
            self._store._forget(self._tse_id)  # fn may have changed the loaded object


def _append_error(exc: sqlite3.Error) -> OpenTSEError:
    text = str(exc)
    if "logs.ref" in text:
        return ConflictError("a log with this ref exists", code="E_DUPLICATE_REF")
    if "E_COUNTER_GAP" in text or "logs.signature_counter" in text:
        return StorageError(f"signature counter rejected: {text}", code="E_COUNTER_GAP")
    return _storage_error("appending logs", exc)
