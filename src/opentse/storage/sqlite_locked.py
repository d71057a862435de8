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
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

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
    """A state saved during the running transaction but not yet written."""

    version: int
    counter: int  # its signature_counter: the TSE's last stored counter after it
    data: dict[str, Any]  # TSEState.to_dict() at save time (never aliased by fn)

    def rebuild(self) -> TSEState:
        """A fresh object from the snapshot (fn may have changed the saved one)."""
        state = TSEState.from_dict(self.data)
        state.version = self.version
        return state


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
                [
                    (dump_json(saved.data, "TSE state"), saved.version, tse_id)
                    for tse_id, saved in self._saved.items()
                ],
            )
        self._saved.clear()

    def clear(self) -> None:
        self._saved.clear()


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
    ) -> None:
        self._conn = conn
        self._cache = cache
        self._batch = batch
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

    def save(self, state: TSEState) -> None:
        """Persist ``state`` with this request (``version`` bumped, on the object too).

        The row is written at the end of the group commit (``BatchStates``); until
        then ``load`` serves this object or, after a failure, a rebuilt snapshot.

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
        data = state.to_dict()
        check_json_safe(data)
        version = self._version + 1
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
            self._forget_changes()  # fn may have changed the loaded object

    def undo(self) -> None:
        """After ``fn`` failed (its savepoint is rolled back): back to the state before."""
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
