"""What a group commit of the SQLite store holds before it is written.

``run_locked`` requests are sequenced by the writer thread against memory: their
saved states (``BatchStates``) and appended logs (``BatchLogs``) stay in a
``Batch`` until the committer thread writes the whole batch in one transaction
(sqlite_writer.py). While a batch is being committed the writer already
sequences the next one, so lookups (``BatchChain``) see the running batch first,
then the batches handed to the committer, newest first, then the database.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import orjson

from opentse.engine.ports import StoredLog
from opentse.engine.state import TSEState
from opentse.errors import ConflictError, OpenTSEError, StorageError
from opentse.storage.rows import LOG_COLUMNS, delete_logs_sql, dump_json
from opentse.storage.sqlite_requests import storage_error

_DELETE_LOGS = delete_logs_sql()
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


@dataclass(slots=True)
class _Entry:
    owner: object  # the token of the LockedView that appended them (its undo drops them)
    logs: Sequence[StoredLog]
    params: list[Any]  # INSERT parameters of every log, flat


class BatchLogs:
    """Appended logs of one batch, in append order (= counter order per TSE)."""

    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self._refs: dict[tuple[str, str], StoredLog] = {}
        self._deletes: list[tuple[object, str, int]] = []  # (owner, tse_id, up_to)

    def delete(self, owner: object, tse_id: str, up_to: int) -> None:
        """deleteStoredData: drop the TSE's stored logs up to ``up_to`` first."""
        self._deletes.append((owner, tse_id, up_to))

    def add(self, owner: object, logs: Sequence[StoredLog], params: list[Any]) -> None:
        """``params``: ``log_params`` of every log, one flat list."""
        self._entries.append(_Entry(owner, logs, params))
        for log in logs:
            if log.ref is not None:
                self._refs[(log.tse_id, log.ref)] = log

    def find(self, tse_id: str, ref: str) -> StoredLog | None:
        return self._refs.get((tse_id, ref))

    def drop(self, owner: object) -> None:
        """Forget what ``owner`` appended (its request failed)."""
        self._deletes = [d for d in self._deletes if d[0] is not owner]
        kept = [entry for entry in self._entries if entry.owner is not owner]
        if len(kept) != len(self._entries):
            self._entries = kept
            self._refs = {
                (log.tse_id, log.ref): log
                for entry in kept
                for log in entry.logs
                if log.ref is not None
            }

    def write(self, conn: sqlite3.Connection) -> None:
        """Insert every entry (committer thread, inside the transaction), after the
        deletions of deleteStoredData (they cover only logs stored before)."""
        for _, tse_id, up_to in self._deletes:
            for statement in _DELETE_LOGS:
                conn.execute(statement, (tse_id, up_to))
        values: list[Any] = []
        for entry in self._entries:
            values += entry.params
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

    def __init__(self) -> None:
        self.current = Batch(BatchLogs())
        self.inflight: deque[Batch] = deque()

    def start(self, epoch: int) -> Batch:
        self.current = Batch(BatchLogs(), epoch=epoch)
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

    def _handed(self) -> list[Batch]:
        """The batches at the committer, newest first."""
        batches = list(self.inflight)  # one C call: safe while the committer removes
        batches.reverse()
        return batches

    def state(self, tse_id: str) -> Saved | None:
        saved = self.current.states.get(tse_id)
        if saved is not None or not self.inflight:
            return saved
        for batch in self._handed():
            saved = batch.states.get(tse_id)
            if saved is not None:
                return saved
        return None

    def log_by_ref(self, tse_id: str, ref: str) -> StoredLog | None:
        """An appended, not yet committed log by ref."""
        found = self.current.logs.find(tse_id, ref)
        if found is not None or not self.inflight:
            return found
        for batch in self._handed():
            found = batch.logs.find(tse_id, ref)
            if found is not None:
                return found
        return None


def append_error(exc: sqlite3.Error) -> OpenTSEError:
    """The stable error for a rejected log INSERT (ref clash or counter trigger)."""
    text = str(exc)
    if "logs.ref" in text:
        return ConflictError("a log with this ref exists", code="E_DUPLICATE_REF")
    if "E_COUNTER_GAP" in text or "logs.signature_counter" in text:
        return StorageError(f"signature counter rejected: {text}", code="E_COUNTER_GAP")
    return storage_error("appending logs", exc)
