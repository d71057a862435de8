"""The embedded TSE store on stdlib sqlite3, with group commit.

Promise (ports.py, "Nothing lost"): a signature is returned only after its log
message is durably stored, and counters never skip or repeat, across crashes,
restarts and concurrent clients. How:

* WAL journal with ``synchronous=FULL``: a COMMIT is on disk when it returns.
* Pipelined group commit (``sqlite_writer``): a writer thread runs each
  ``run_locked`` against memory (``sqlite_batch``: the running batch, the batches
  being committed, then a read connection) and a committer thread writes a whole
  batch in ONE ``BEGIN IMMEDIATE`` .. ``COMMIT``, releasing the callers only after
  it. One fsync serves many callers, and the next batch is sequenced meanwhile.
* Other processes on the same file: ``BEGIN IMMEDIATE`` takes SQLite's write lock
  (they wait up to ``busy_timeout``); what they wrote between the writer's reads
  and the COMMIT is caught by the counter trigger and the state's version check,
  and those requests are sequenced again (nothing of them was written or returned).
* Counters (``sqlite_locked``): ``append`` checks that logs follow the stored
  counter consecutively, the schema's trigger checks it again, and the state must
  be saved with the last appended counter before ``fn`` returns (TR-03151: +1 for
  every signature). The state row of each TSE is written once per commit, after
  its logs (``BatchStates``), not once per request.
* Reads use a small pool of separate read connections (a WAL reader sees the last
  commit and never blocks the writer); ``iter_logs`` streams with ``fetchmany``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from opentse.engine.ports import LockedTSE, LogFilter, StoredLog, TSERecord
from opentse.engine.state import TSEState
from opentse.errors import ConflictError, NotFoundError, StorageError
from opentse.storage import migrations, nodes
from opentse.storage.rows import (
    LOG_COLUMNS,
    RECORD_COLUMNS,
    filter_sql,
    log_from_row,
    record_from_row,
    record_params,
    refs_present_sql,
    state_from_json,
    state_to_json,
)
from opentse.storage.sqlite_batch import BatchChain, write_batches
from opentse.storage.sqlite_locked import LockedView, StateCache
from opentse.storage.sqlite_requests import is_busy, storage_error
from opentse.storage.sqlite_writer import BatchHooks, GroupCommitWriter

T = TypeVar("T")

log = logging.getLogger("opentse.storage")

_FETCH = 256  # rows per fetchmany in iter_logs
_IDLE_READERS = 8

_HEAD = (  # what run_locked needs before fn: the state's version and the last counter
    "SELECT s.version, c.last_signature_counter FROM tse_states AS s"
    " JOIN tse_counters AS c ON c.tse_id = s.tse_id WHERE s.tse_id = ?"
)


def _not_found(tse_id: str) -> NotFoundError:
    return NotFoundError(f"TSE {tse_id!r} does not exist", code="E_TSE_NOT_FOUND")


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


def refuse_newer_schema(conn: sqlite3.Connection) -> None:
    """E_SCHEMA_NEWER when the file holds migrations this code does not ship: a newer
    opentse migrated it, and this one would write with its older rules (the counters
    and index rows a newer version reads differently). ``OPENTSE_ALLOW_NEWER_SCHEMA=1``
    lets it through for a rollback on purpose (storage/nodes.py, docs/upgrading.md).
    Checked before anything is migrated or written, at every open."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if row is None:  # a new file: nothing applied yet
        return
    known = {m.version for m in migrations.load("sqlite")}
    nodes.refuse_if_schema_newer(migrations.applied_versions(conn), known)


def tighten_mode(path: str | os.PathLike[str]) -> list[str]:
    """Make the database file and its ``-wal``/``-shm`` 0600 where this process owns
    them and they are open to others: the file holds hashed PINs, encrypted keys and
    every log; a database made before 0600 was the rule (or copied in by hand) kept
    0644 after every upgrade. Logs one line naming what changed; returns those names.
    A file of another owner is left alone (chmod would fail; its owner decides)."""
    changed: list[str] = []
    for name in (os.fspath(path), f"{os.fspath(path)}-wal", f"{os.fspath(path)}-shm"):
        try:
            info = os.stat(name)
            if info.st_uid != os.geteuid() or not stat.S_IMODE(info.st_mode) & 0o077:
                continue
            os.chmod(name, stat.S_IMODE(info.st_mode) & 0o600)
        except OSError:  # gone meanwhile (-wal at a checkpoint), or a read-only mount
            continue
        changed.append(f"{os.path.basename(name)} {stat.S_IMODE(info.st_mode):04o}")
    if changed:
        log.warning(
            "database files were open to other users, now owner only (0600): %s in %s",
            ", ".join(changed),
            os.path.dirname(os.path.abspath(path)),
        )
    return changed


_REFS_PER_QUERY = 200  # 2 x 200 + 2 parameters: far below SQLite's limit


class SQLiteStore:
    """``engine.ports.TSEStore`` on one SQLite file (see the module docstring)."""

    def __init__(
        self, path: Path | str, *, busy_timeout: float = 30.0, max_batch: int = 256
    ) -> None:
        if str(path) == ":memory:" or str(path).startswith("file:"):
            raise StorageError("SQLiteStore needs a file path", code="E_STORAGE")
        # absolute: further connections are opened lazily, maybe after a chdir
        self._path = os.path.abspath(path)
        with contextlib.suppress(OSError):  # exists, or sqlite3 says why it cannot
            # a new database is 0600 (its WAL and shared memory take its mode): it
            # holds hashed PINs, encrypted keys and every log; sqlite3 made it 0644
            os.close(os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._timeout = busy_timeout
        self._write = self._connect(writer=True)
        try:
            self._retry_busy(lambda: refuse_newer_schema(self._write))
            self._retry_busy(lambda: migrations.apply(self._write, "sqlite"))
            tighten_mode(self._path)  # after the writer made its -wal and -shm
        except BaseException:
            self._write.close()
            raise
        self._closed = False
        self._readers_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._readers: set[sqlite3.Connection] = set()
        self._cache = StateCache()
        self._chain = BatchChain()
        self._prefetched_absent: set[tuple[str, str]] = set()  # writer thread: _prefetch_refs
        self._sequencer_reads = self._connect(writer=False)
        self._writer = GroupCommitWriter(
            self._write,
            self._sequencer_reads,
            retry=self._retry_busy,
            hooks=BatchHooks(
                start=self._chain.start,
                hand_over=self._chain.hand_over,
                write=write_batches,
                done=self._chain.done,  # type: ignore[arg-type]
                reset=self._forget_batch,
                prefetch=self._prefetch_refs,
            ),
            max_batch=max_batch,
        )

    def _forget_batch(self) -> None:
        """A commit was lost: cached and unwritten states may be ahead of the file."""
        self._chain.forget()
        self._cache.clear()

    # -- connections -------------------------------------------------------------

    def _connect(self, *, writer: bool) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise storage_error(f"opening {self._path}", exc) from exc
        try:
            self._retry_busy(lambda: _configure(conn, writer, self._timeout))
        except sqlite3.Error as exc:
            conn.close()
            raise storage_error(f"configuring {self._path}", exc) from exc
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
                if not is_busy(exc) or time.monotonic() >= deadline:
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
            raise storage_error(doing, exc) from exc
        finally:
            self._give_back(conn)

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
            self._cache.drop(record.tse_id)

        self._writer.submit(op)

    def run_locked(self, tse_id: str, fn: Callable[[LockedTSE], T], *, ref: str | None = None) -> T:
        op = self._locked_op(tse_id, fn)
        key = None if ref is None else (tse_id, ref)
        return cast(T, self._writer.submit(op, sequenced=True, key=key))

    def run_locked_async(
        self, tse_id: str, fn: Callable[[LockedTSE], T], *, ref: str | None = None
    ) -> Awaitable[T]:
        """``run_locked`` for a caller on the running event loop: the same op on the
        same writer, its outcome delivered to the loop (no thread waits for it)."""
        op = self._locked_op(tse_id, fn)
        key = None if ref is None else (tse_id, ref)
        return cast("Awaitable[T]", self._writer.submit_async(op, key=key))

    def _prefetch_refs(self, conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> None:
        """Writer thread, before it runs a bunch of requests: which of their refs are
        neither stored nor deleted, in one query per TSE instead of one per request
        (``LockedView.find_ref`` skips its query for those). Valid for that bunch
        only: another process may store one later (its COMMIT then fails and the
        requests are sequenced again, with a fresh look)."""
        absent = self._prefetched_absent
        absent.clear()
        by_tse: dict[str, list[str]] = {}
        for tse_id, ref in keys:
            by_tse.setdefault(tse_id, []).append(ref)
        for tse_id, refs in by_tse.items():
            for begin in range(0, len(refs), _REFS_PER_QUERY):
                part = refs[begin : begin + _REFS_PER_QUERY]
                sql = refs_present_sql(len(part))
                found = {row[0] for row in conn.execute(sql, (tse_id, *part, tse_id, *part))}
                absent.update((tse_id, ref) for ref in part if ref not in found)

    def _locked_op(
        self, tse_id: str, fn: Callable[[LockedTSE], T]
    ) -> Callable[[sqlite3.Connection], object]:
        def op(conn: sqlite3.Connection) -> object:
            saved = self._chain.state(tse_id)
            if saved is None:
                row = conn.execute(_HEAD, (tse_id,)).fetchone()
                if row is None:
                    raise _not_found(tse_id)
                version, counter = int(row[0]), int(row[1])
            else:  # an earlier request of this transaction saved it: no query needed
                version, counter = saved.version, saved.counter
            view = LockedView(
                conn, self._cache, self._chain, tse_id, version, counter, self._prefetched_absent
            )
            try:
                result = fn(view)
                view.finish()
            except BaseException:
                view.undo()
                raise
            finally:
                view.closed = True
            return result

        return op

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
        return dict(self._writer.stats)

    def close(self) -> None:
        """Finish queued writes, stop the writer, close every connection. Idempotent."""
        self._writer.close()
        self._sequencer_reads.close()
        with self._readers_lock:
            if self._closed:
                return
            self._closed = True
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
