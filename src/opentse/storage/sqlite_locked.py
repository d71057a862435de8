"""What ``fn`` sees inside ``SQLiteStore.run_locked``, and the writer's state caches.

Runs on the writer thread, on the write connection, inside the request's savepoint.
Enforces the counter rule (TR-03151: the signature counter is +1 for every
signature, never skipped or repeated) before SQL does it again in the schema's
trigger: appended logs continue the stored counter, the saved state carries it.

State rows are written once per group commit, not once per request
(``BatchStates``): serialising the state JSON cost more than the signature when
every request wrote it. ``save`` keeps a plain-dict snapshot instead (checked to be
JSON-safe, so a bad state still fails only its own request); the last snapshot of
each TSE is written just before COMMIT, in the same transaction as the logs, so
readers and other processes still never see logs without their state.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from _thread import LockType
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from queue import SimpleQueue
from typing import Any

import orjson

from opentse.engine.deferred import PendingLogs
from opentse.engine.ports import StoredLog
from opentse.engine.state import TSEState
from opentse.errors import ConflictError, OpenTSEError, StorageError
from opentse.storage.rows import (
    LOG_COLUMNS,
    dump_json,
    log_from_row,
    log_params,
    state_from_json,
)
from opentse.storage.sqlite_writer import storage_error

INSERT_LOG = f"INSERT INTO logs ({LOG_COLUMNS}) VALUES ({', '.join('?' * 11)})"
UPDATE_STATE = "UPDATE tse_states SET state = ?, version = ? WHERE tse_id = ?"
_SCALARS = (str, int, bool, type(None))
_PLAIN_OR_DICT = frozenset((*_SCALARS, dict))  # exact types json.dumps takes as they are
_KEYS = frozenset((str,))


class StateCache:
    """TSEState objects by TSE, valid for one ``version`` (LRU, writer thread only).

    ``load`` returns the cached object when the stored version still matches, so
    nothing is parsed when no one else wrote; another process writing the same
    file bumps the version and so invalidates the entry.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._entries: OrderedDict[str, tuple[int, TSEState]] = OrderedDict()

    def get(self, tse_id: str, version: int) -> TSEState | None:
        entry = self._entries.get(tse_id)
        if entry is None or entry[0] != version:
            return None
        self._entries.move_to_end(tse_id)
        return entry[1]

    def put(self, tse_id: str, version: int, state: TSEState) -> None:
        self._entries[tse_id] = (version, state)
        self._entries.move_to_end(tse_id)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def drop(self, tse_id: str) -> None:
        self._entries.pop(tse_id, None)

    def clear(self) -> None:
        self._entries.clear()


@dataclass(frozen=True, slots=True)
class Saved:
    """A state saved during the running transaction but not yet written: a snapshot
    (``data``), or for a ``frozen`` save the object itself (nobody changes it)."""

    version: int
    counter: int  # its signature_counter: the TSE's last stored counter after it
    data: dict[str, Any] | None  # TSEState.to_dict() at save time (never aliased by fn)
    state: TSEState | None = None  # the saved object, when saved with frozen=True

    def rebuild(self) -> TSEState:
        """The saved state: a fresh object from the snapshot (fn may have changed the
        saved one), or the frozen object itself."""
        if self.data is None:
            assert self.state is not None
            return self.state
        state = TSEState.from_dict(self.data)
        state.version = self.version
        return state

    def to_json(self) -> str:
        """The state row. A frozen engine state (plain str/int/bool/None/dict by
        construction) is written by orjson: equal JSON to what ``dump_json`` writes
        (sorted keys, no spaces; UTF-8 instead of \\u escapes), several times faster,
        and the row is rewritten every commit."""
        if self.data is not None:
            return dump_json(self.data, "TSE state")
        assert self.state is not None
        data = self.state.to_dict()
        try:
            return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:
            return dump_json(data, "TSE state")  # its error names what is wrong


class BatchStates:
    """Unwritten saves of the running transaction, by TSE (writer thread only).

    ``flush`` writes the newest one of each TSE before COMMIT; ``clear`` forgets
    them when the transaction ends either way.
    """

    def __init__(self) -> None:
        self._saved: dict[str, Saved] = {}

    def get(self, tse_id: str) -> Saved | None:
        return self._saved.get(tse_id)

    def put(self, tse_id: str, saved: Saved | None) -> None:
        if saved is None:
            self._saved.pop(tse_id, None)
        else:
            self._saved[tse_id] = saved

    def flush(self, conn: sqlite3.Connection) -> None:
        if self._saved:
            conn.executemany(
                UPDATE_STATE,
                [(saved.to_json(), saved.version, tse_id) for tse_id, saved in self._saved.items()],
            )
        self._saved.clear()

    def clear(self) -> None:
        self._saved.clear()


@dataclass(slots=True)
class _Deferred:
    owner: object  # the LockedView that appended it (its undo drops it)
    pending: PendingLogs
    params: list[list[Any]]  # INSERT parameters, message (index 6) still a placeholder


class SignerThreads:
    """Threads that sign appended ``PendingLogs`` while the writer goes on.

    Round robin over one queue per thread; ``wait`` puts a released-when-reached
    lock into every queue, so it returns once everything queued before it is signed.
    Started on first use; a failed signature is kept on its ``PendingLogs``.
    """

    def __init__(self, count: int) -> None:
        self._count = max(1, count)
        self._queues: list[SimpleQueue[PendingLogs | LockType | None]] = []
        self._threads: list[threading.Thread] = []
        self._next = 0

    def put(self, pending: PendingLogs) -> None:
        if not self._queues:
            self._start()
        self._queues[self._next].put(pending)
        self._next = (self._next + 1) % self._count

    def wait(self) -> None:
        if not self._queues:
            return
        barriers = []
        for queue in self._queues:
            barrier = threading.Lock()
            barrier.acquire()
            queue.put(barrier)
            barriers.append(barrier)
        for barrier in barriers:
            barrier.acquire()

    def close(self) -> None:
        for queue in self._queues:
            queue.put(None)
        for thread in self._threads:
            thread.join()
        self._queues, self._threads = [], []

    def _start(self) -> None:
        for index in range(self._count):
            queue: SimpleQueue[PendingLogs | LockType | None] = SimpleQueue()
            thread = threading.Thread(
                target=_sign_forever, args=(queue,), name=f"opentse-signer-{index}", daemon=True
            )
            thread.start()
            self._queues.append(queue)
            self._threads.append(thread)


def _sign_forever(queue: SimpleQueue[PendingLogs | LockType | None]) -> None:
    while True:
        item = queue.get()
        if item is None:
            return
        if isinstance(item, PendingLogs):
            item.try_resolve()
        else:
            item.release()


class BatchLogs:
    """Logs appended with deferred signatures in the running transaction, in append
    order (writer thread only).

    Each is handed to ``SignerThreads`` when appended (``cryptography`` signs
    without the GIL, so this runs beside the writer's Python); ``write`` (before
    COMMIT, or before a plain append so counters stay in order) waits for the
    signatures, then inserts them all with one ``executemany``.
    """

    def __init__(self, signers: int = 1) -> None:
        self._entries: list[_Deferred] = []
        self._refs: dict[tuple[str, str], tuple[PendingLogs, int]] = {}
        self._signers = SignerThreads(signers)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def add(self, owner: object, pending: PendingLogs) -> None:
        params = [list(log_params(log)) for log in pending.logs]  # checks extra is JSON-safe
        self._entries.append(_Deferred(owner, pending, params))
        for index, log in enumerate(pending.logs):
            if log.ref is not None:
                self._refs[(log.tse_id, log.ref)] = (pending, index)
        if pending.signatures is None:
            self._signers.put(pending)

    def has_ref(self, tse_id: str, ref: str) -> bool:
        return (tse_id, ref) in self._refs

    def find(self, tse_id: str, ref: str) -> StoredLog | None:
        """An appended log by ref, once its signature is made."""
        found = self._refs.get((tse_id, ref))
        if found is None:
            return None
        pending, index = found
        self._signers.wait()  # never sign one PendingLogs on two threads
        return pending.final_logs()[index]

    def drop(self, owner: object) -> None:
        """Forget what ``owner`` appended (its request failed)."""
        kept = [entry for entry in self._entries if entry.owner is not owner]
        if len(kept) != len(self._entries):
            self._entries = kept
            self._refs = {
                key: found
                for key, found in self._refs.items()
                if any(found[0] is entry.pending for entry in kept)
            }

    def restore(self, entries: list[_Deferred]) -> None:
        """Queue ``entries`` again, first (a savepoint that held their INSERTs was
        rolled back); they are signed already."""
        if entries:
            for entry in entries:
                self.add(entry.owner, entry.pending)
            self._entries = entries + self._entries[: -len(entries)]

    def write(self, conn: sqlite3.Connection) -> list[_Deferred]:
        """Insert every queued entry once signed; returns them (see ``restore``)."""
        entries = self._entries
        if not entries:
            return []
        self._signers.wait()
        rows = []
        for entry in entries:
            pending = entry.pending
            if pending.signatures is None:
                raise StorageError(f"signing failed: {pending.error!r}", code="E_SIGNING_FAILED")
            for index, params in enumerate(entry.params):
                params[6] = pending.message(index)
                rows.append(params)
        try:
            conn.executemany(INSERT_LOG, rows)
        except sqlite3.Error as exc:
            raise append_error(exc) from exc  # still queued; a rollback undoes any row
        self.clear()
        return entries

    def clear(self) -> None:
        self._entries = []
        self._refs = {}

    def close(self) -> None:
        self._signers.close()


def check_json_safe(data: dict[str, Any]) -> None:
    """Raise E_STORAGE_DATA unless ``data`` (a ``to_dict`` result: scalars and nested
    dicts of them) serialises as JSON: what ``json.dumps`` would refuse at write
    time, found at ``save`` so that only the request that saved it fails.

    Walks one nesting level at a time with C-level loops over exact types (a few
    microseconds for a state with many open transactions); only an unusual type
    (a float, a str subclass) is looked at one by one.
    """
    level: list[dict[Any, Any]] = [data]
    while level:
        if not set(map(type, chain.from_iterable(level))) <= _KEYS:
            bad = next(k for d in level for k in d if not isinstance(k, str))
            _refuse(bad, None)
        values = list(chain.from_iterable(map(dict.values, level)))
        types = set(map(type, values))
        if not types <= _PLAIN_OR_DICT:
            for value in values:
                if type(value) not in _PLAIN_OR_DICT and not _json_scalar(value):
                    _refuse(next(k for d in level for k, v in d.items() if v is value), value)
        level = [v for v in values if type(v) is dict] if dict in types else []


def _json_scalar(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)  # the stores write with allow_nan=False
    return isinstance(value, _SCALARS)


def _refuse(key: object, value: object) -> None:
    raise StorageError(
        f"TSE state is not JSON-serialisable: {key!r} holds {type(value).__name__}",
        code="E_STORAGE_DATA",
    )


class LockedView:
    """``engine.ports.LockedTSE`` for one TSE on the writer connection."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        cache: StateCache,
        batch: BatchStates,
        tse_id: str,
        version: int,
        counter: int,
        deferred: BatchLogs | None = None,
        begin_write: Callable[[], None] = lambda: None,
    ) -> None:
        self._conn = conn
        self._begin_write = begin_write  # opens the request's SAVEPOINT (writer, lazy)
        self._cache = cache
        self._batch = batch
        self._deferred = deferred
        self._absent_refs: set[str] = set()  # refs find_ref did not find
        self._flushed: list[_Deferred] = []  # earlier requests' logs written in our savepoint
        self._before = batch.get(tse_id)  # what a failure of this request goes back to
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
        version = self._version + 1 if self._saved else self._version
        cached = self._cache.get(self._tse_id, version)
        self._loaded = True
        if cached is not None:
            return cached
        pending = self._batch.get(self._tse_id)
        if pending is not None:  # saved earlier in this transaction, not yet written
            state = pending.rebuild()
            self._cache.put(self._tse_id, state.version, state)
            return state
        row = self._conn.execute(
            "SELECT state, version FROM tse_states WHERE tse_id = ?", (self._tse_id,)
        ).fetchone()
        state = state_from_json(row[0], int(row[1]))
        self._cache.put(self._tse_id, state.version, state)
        return state

    def save(self, state: TSEState, *, frozen: bool = False) -> None:
        """Persist ``state`` with this request (``version`` bumped, on the object too).

        The row is written at the end of the group commit (``BatchStates``); until
        then ``load`` serves this object or, after a failure, a rebuilt snapshot.
        A ``frozen`` state is not copied now but serialised at the end of the group
        commit (the engine's states never change once saved; JSON errors then fail
        the whole batch instead of this request only).

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
        if frozen:
            state.version = version
            self._batch.put(self._tse_id, Saved(version, self._counter, None, state))
        else:
            data = state.to_dict()
            check_json_safe(data)
            state.version = version
            data["version"] = version
            self._batch.put(self._tse_id, Saved(version, self._counter, data))
        self._saved = True
        self._saved_counter = state.signature_counter
        self._cache.put(self._tse_id, version, state)

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
        self._begin_write()
        if self._deferred:  # earlier requests' logs first: counters stay in order
            self._flushed.extend(self._deferred.write(conn))
        if len(params) == 1:  # one statement is atomic by itself
            try:
                conn.execute(INSERT_LOG, params[0])
            except sqlite3.Error as exc:
                raise append_error(exc) from exc
        else:
            conn.execute("SAVEPOINT append")
            try:
                conn.executemany(INSERT_LOG, params)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK TO append")
                    conn.execute("RELEASE append")
                raise append_error(exc) from exc
            conn.execute("RELEASE append")
        self._counter = expected - 1

    def append_deferred(self, pending: PendingLogs) -> None:
        """Like ``append``, for logs whose signatures are made just before the batch
        is written (engine/deferred.py); every check runs now, so a bad request still
        fails alone."""
        self._check_open()
        deferred = self._deferred
        if deferred is None:
            self.append(pending.final_logs())
            return
        logs = pending.logs
        expected = self._counter + 1
        for log in logs:
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
        for ref in refs:
            if deferred.has_ref(self._tse_id, ref) or (
                ref not in self._absent_refs and self._stored_ref(ref) is not None
            ):
                raise ConflictError("a log with this ref exists", code="E_DUPLICATE_REF")
        deferred.add(self, pending)
        self._counter = expected - 1

    def find_ref(self, ref: str) -> StoredLog | None:
        self._check_open()
        if self._deferred:
            found = self._deferred.find(self._tse_id, ref)
            if found is not None:
                return found
        log = self._stored_ref(ref)
        if log is None:
            self._absent_refs.add(ref)
        return log

    def _stored_ref(self, ref: str) -> StoredLog | None:
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
            self._forget_changes()  # fn may have changed the loaded object

    def undo(self) -> None:
        """After ``fn`` failed (its savepoint is rolled back): back to the state before."""
        if self._deferred is not None:
            self._deferred.drop(self)
            self._deferred.restore(self._flushed)  # our savepoint took their INSERTs along
        self._batch.put(self._tse_id, self._before)
        self._forget_changes()

    def _forget_changes(self) -> None:
        before = self._before
        if before is None:
            self._cache.drop(self._tse_id)  # the stored row is the state before
        else:
            self._cache.put(self._tse_id, before.version, before.rebuild())


def append_error(exc: sqlite3.Error) -> OpenTSEError:
    """The stable error for a rejected log INSERT (ref clash or counter trigger)."""
    text = str(exc)
    if "logs.ref" in text:
        return ConflictError("a log with this ref exists", code="E_DUPLICATE_REF")
    if "E_COUNTER_GAP" in text or "logs.signature_counter" in text:
        return StorageError(f"signature counter rejected: {text}", code="E_COUNTER_GAP")
    return storage_error("appending logs", exc)
