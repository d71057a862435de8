"""What a group commit of the SQLite store holds before it is written.

``run_locked`` requests are sequenced by the writer thread against memory: their
saved states (``BatchStates``) and appended logs (``BatchLogs``) stay in a
``Batch`` until the committer thread writes the whole batch in one transaction
(sqlite_writer.py). While a batch is being committed the writer already
sequences the next one, so lookups (``BatchChain``) see the running batch first,
then the batches handed to the committer, newest first, then the database.

Logs arrive with deferred signatures (engine/deferred.py) and are handed to
``SignerThreads`` at once: ``cryptography`` signs without the GIL, beside the
writer's Python. The committer waits for them before the INSERT, and the caller
hears nothing before the COMMIT.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from _thread import LockType
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, field
from queue import SimpleQueue
from typing import Any

import orjson

from opentse.engine.deferred import PendingLogs
from opentse.engine.ports import StoredLog
from opentse.engine.state import TSEState
from opentse.errors import ConflictError, OpenTSEError, StorageError
from opentse.storage.rows import LOG_COLUMNS, dump_json
from opentse.storage.sqlite_writer import storage_error

_COLUMNS = 11
_ROWS_PER_INSERT = 256  # 2,816 parameters: far below SQLite's limit of 32,766


@functools.lru_cache(maxsize=_ROWS_PER_INSERT)
def _insert_rows(count: int) -> str:
    """One INSERT for ``count`` logs: one statement step, so the committer gives the
    GIL away and takes it back once per batch instead of once per log (taking it
    back can mean waiting for a busy thread's switch interval)."""
    row = f"({', '.join('?' * _COLUMNS)})"
    return f"INSERT INTO logs ({LOG_COLUMNS}) VALUES {', '.join([row] * count)}"
UPDATE_STATE = "UPDATE tse_states SET state = ?, version = ? WHERE tse_id = ? AND version = ?"


@dataclass(slots=True, eq=False)  # not frozen: one per request; frozen init costs ~7x
class Saved:
    """A state saved in a batch but not yet written: a snapshot (``data``), or for a
    ``frozen`` save the object itself (nobody changes it)."""

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
        (sorted keys, no spaces; UTF-8 instead of escapes), several times faster,
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
    """Unwritten saves of one batch, by TSE, with the version each TSE had before the
    batch (the UPDATE checks it: another process that wrote in between makes the
    batch fail instead of being overwritten)."""

    def __init__(self) -> None:
        self._saved: dict[str, Saved] = {}
        self._base: dict[str, int] = {}

    def get(self, tse_id: str) -> Saved | None:
        return self._saved.get(tse_id)

    def put(self, tse_id: str, saved: Saved | None, base: int) -> None:
        if saved is None:
            self._saved.pop(tse_id, None)
            self._base.pop(tse_id, None)
        else:
            self._saved[tse_id] = saved
            self._base.setdefault(tse_id, base)

    def items(self) -> list[tuple[str, Saved, int]]:
        """(tse_id, newest save, version before the batch) of every saved TSE."""
        return [(tse_id, saved, self._base[tse_id]) for tse_id, saved in self._saved.items()]

    def flush(self, conn: sqlite3.Connection) -> None:
        if not self._saved:
            return
        rows = [
            (saved.to_json(), saved.version, tse_id, self._base[tse_id])
            for tse_id, saved in self._saved.items()
        ]
        cursor = conn.executemany(UPDATE_STATE, rows)
        if cursor.rowcount != len(rows):
            raise StorageError(
                "a TSE state was changed by another process meanwhile; nothing was written",
                code="E_STORAGE_CONFLICT",
            )


class SignerThreads:
    """Threads that sign appended ``PendingLogs`` while the writer goes on.

    Round robin over one queue per thread; ``wait`` puts a released-when-reached
    lock into every queue, so it returns once everything queued before it is signed.
    Started on first use; a failed signature is kept on its ``PendingLogs``.
    """

    def __init__(self, count: int) -> None:
        self._count = max(1, count)
        self._queues: list[SimpleQueue[list[PendingLogs] | LockType | None]] = []
        self._threads: list[threading.Thread] = []
        self._next = 0
        self._lock = threading.Lock()

    def put(self, pendings: list[PendingLogs]) -> None:
        """Sign ``pendings`` (one hand-off per thread, not per request: every
        hand-off may wake a thread, and waking costs more than it saves)."""
        if not pendings:
            return
        if not self._queues:
            self._start()
        count = min(self._count, len(pendings))
        for index in range(count):
            self._queues[(self._next + index) % self._count].put(pendings[index::count])
        self._next = (self._next + count) % self._count

    def wait(self) -> None:
        """Until everything put before is signed (any thread may call it)."""
        barriers = []
        for queue in list(self._queues):
            barrier = threading.Lock()
            barrier.acquire()
            queue.put(barrier)
            barriers.append(barrier)
        for barrier in barriers:
            barrier.acquire()

    def close(self) -> None:
        with self._lock:
            queues, threads = self._queues, self._threads
            self._queues, self._threads = [], []
        for queue in queues:
            queue.put(None)
        for thread in threads:
            thread.join()

    def _start(self) -> None:
        with self._lock:
            if self._queues:
                return
            for index in range(self._count):
                queue: SimpleQueue[list[PendingLogs] | LockType | None] = SimpleQueue()
                thread = threading.Thread(
                    target=_sign_forever, args=(queue,), name=f"opentse-signer-{index}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
                self._queues.append(queue)


def _sign_forever(queue: SimpleQueue[list[PendingLogs] | LockType | None]) -> None:
    while True:
        item = queue.get()
        if item is None:
            return
        if isinstance(item, list):
            for pending in item:
                pending.try_resolve()
        else:
            item.release()


@dataclass(slots=True)
class _Entry:
    owner: object  # the LockedView that appended it (its undo drops it)
    pending: PendingLogs
    params: list[list[Any]]  # INSERT parameters, message (index 6) still a placeholder


class BatchLogs:
    """Appended logs of one batch, in append order (= counter order per TSE)."""

    def __init__(self, signers: SignerThreads) -> None:
        self._signers = signers
        self._entries: list[_Entry] = []
        self._refs: dict[tuple[str, str], tuple[PendingLogs, int]] = {}

    def add(self, owner: object, pending: PendingLogs, params: list[list[Any]]) -> None:
        """``params``: ``log_params`` of each log as lists (the message is set later)."""
        self._entries.append(_Entry(owner, pending, params))
        for index, log in enumerate(pending.logs):
            if log.ref is not None:
                self._refs[(log.tse_id, log.ref)] = (pending, index)
        if pending.signatures is None:  # signed while the writer goes on
            self._signers.put([pending])

    def find(self, tse_id: str, ref: str) -> tuple[PendingLogs, int] | None:
        return self._refs.get((tse_id, ref))

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

    def write(self, conn: sqlite3.Connection) -> None:
        """Insert every entry once signed (committer thread, inside the transaction)."""
        if not self._entries:
            return
        for entry in reversed(self._entries):  # sign beside the signer threads, from the end
            if entry.pending.signatures is None:
                entry.pending.try_resolve()
        self._signers.wait()
        values: list[Any] = []
        for entry in self._entries:
            pending = entry.pending
            if pending.signatures is None:
                raise StorageError(f"signing failed: {pending.error!r}", code="E_SIGNING_FAILED")
            for index, params in enumerate(entry.params):
                params[6] = pending.message(index)
                values += params
        try:
            for start in range(0, len(values), _ROWS_PER_INSERT * _COLUMNS):
                part = values[start : start + _ROWS_PER_INSERT * _COLUMNS]
                conn.execute(_insert_rows(len(part) // _COLUMNS), part)
        except sqlite3.Error as exc:
            raise append_error(exc) from exc


@dataclass(slots=True, eq=False)
class Batch:
    """One group commit: what its requests saved and appended, and the writer's
    epoch it was sequenced in (a failed commit ends the epoch, sqlite_writer.py)."""

    logs: BatchLogs
    states: BatchStates = field(default_factory=BatchStates)
    epoch: int = 0


def write_batches(conn: sqlite3.Connection, batches: list[Batch]) -> None:
    """Every batch's logs in order (the counter trigger checks them), then each TSE's
    newest state once, checked against its version before the first batch."""
    for batch in batches:
        batch.logs.write(conn)
    if len(batches) == 1:
        batches[0].states.flush(conn)
        return
    merged = BatchStates()
    for batch in batches:
        for tse_id, saved, base in batch.states.items():
            merged.put(tse_id, saved, base)
    merged.flush(conn)


class BatchChain:
    """The running batch and the ones handed to the committer (writer thread reads;
    the committer removes a batch only after its COMMIT or rollback)."""

    def __init__(self, signers: SignerThreads) -> None:
        self.signers = signers
        self.current = Batch(BatchLogs(signers))
        self.inflight: deque[Batch] = deque()

    def start(self, epoch: int) -> Batch:
        self.current = Batch(BatchLogs(self.signers), epoch=epoch)
        return self.current

    def hand_over(self) -> Batch:
        """The running batch goes to the committer; lookups keep seeing it."""
        batch = self.current
        self.inflight.append(batch)
        return batch

    def done(self, batch: Batch) -> None:
        """Committer thread: ``batch`` is committed or rolled back."""
        with suppress(ValueError):  # forgotten after a failed commit
            self.inflight.remove(batch)

    def forget(self) -> None:
        self.inflight.clear()

    def _newest_first(self) -> list[Batch]:
        batches = list(self.inflight)  # one C call: safe while the committer removes
        batches.reverse()
        return [self.current, *batches]

    def state(self, tse_id: str) -> Saved | None:
        saved = self.current.states.get(tse_id)
        if saved is not None or not self.inflight:
            return saved
        for batch in self._newest_first():
            saved = batch.states.get(tse_id)
            if saved is not None:
                return saved
        return None

    def ref(self, tse_id: str, ref: str) -> tuple[PendingLogs, int] | None:
        for batch in self._newest_first():
            found = batch.logs.find(tse_id, ref)
            if found is not None:
                return found
        return None

    def log_by_ref(self, tse_id: str, ref: str) -> StoredLog | None:
        """An appended, not yet committed log by ref, once its signature is made."""
        found = self.ref(tse_id, ref)
        if found is None:
            return None
        pending, index = found
        self.signers.wait()  # never sign one PendingLogs on two threads
        if pending.signatures is None:
            raise StorageError(f"signing failed: {pending.error!r}", code="E_SIGNING_FAILED")
        return pending.final_logs()[index]


def append_error(exc: sqlite3.Error) -> OpenTSEError:
    """The stable error for a rejected log INSERT (ref clash or counter trigger)."""
    text = str(exc)
    if "logs.ref" in text:
        return ConflictError("a log with this ref exists", code="E_DUPLICATE_REF")
    if "E_COUNTER_GAP" in text or "logs.signature_counter" in text:
        return StorageError(f"signature counter rejected: {text}", code="E_COUNTER_GAP")
    return storage_error("appending logs", exc)
