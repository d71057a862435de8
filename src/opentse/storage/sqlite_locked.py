"""What ``fn`` sees inside ``SQLiteStore.run_locked``, and the writer's state cache.

Runs on the writer thread and never writes SQL: saves and appends go to the
running batch (sqlite_batch.py), which the committer thread writes in one
transaction. Enforces the counter rule (TR-03151: the signature counter is +1 for
every signature, never skipped or repeated) before SQL does it again in the
schema's trigger: appended logs continue the stored counter, the saved state
carries it. A state is written once per batch, in the same transaction as its
logs, so readers and other processes never see logs without their state.
"""

from __future__ import annotations

import math
import sqlite3
from collections import OrderedDict
from collections.abc import Sequence
from itertools import chain
from typing import Any

from opentse.engine.ports import StoredLog
from opentse.engine.state import TSEState
from opentse.errors import ConflictError, StorageError
from opentse.storage.rows import (
    find_ref_sql,
    log_params,
    state_from_json,
    stored_or_deleted,
)
from opentse.storage.sqlite_batch import BatchChain, Saved

MOVED = "E_STORAGE_MOVED"  # the writer sequences such a request again (sqlite_writer.py)
_FIND_REF = find_ref_sql()
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
    """``engine.ports.LockedTSE`` for one TSE, on the writer thread.

    Reads go to ``chain`` (what earlier requests saved and appended but the
    committer has not written yet) and then to ``conn``, the writer's read
    connection; writes go to the running batch only. Every check (counters, refs,
    JSON) runs here, so a bad request fails alone and the batch's COMMIT does not.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        cache: StateCache,
        chain: BatchChain,
        tse_id: str,
        version: int,
        counter: int,
        absent: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self._conn = conn
        # what the batch files this request's logs under (its undo drops them): a
        # token, not the view itself, so no reference cycle (batch -> entry -> view
        # -> batch) is left for the cyclic GC to find, ~20 objects per transaction
        self._owner = object()
        self._absent = absent  # (tse_id, ref) known neither stored nor deleted
        self._cache = cache
        self._chain = chain
        self._batch = chain.current
        self._absent_refs: set[str] = set()  # refs find_ref did not find
        self._before = self._batch.states.get(tse_id)  # what a failure goes back to
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
        pending = self._chain.state(self._tse_id)
        if pending is not None:  # saved by an earlier request, not yet written
            state = pending.rebuild()
            self._cache.put(self._tse_id, state.version, state)
            return state
        row = self._conn.execute(
            "SELECT state, version FROM tse_states WHERE tse_id = ?", (self._tse_id,)
        ).fetchone()
        if int(row[1]) != self._version:  # another process committed since run_locked began
            raise StorageError("the TSE changed meanwhile; try again", code=MOVED)
        state = state_from_json(row[0], int(row[1]))
        self._cache.put(self._tse_id, state.version, state)
        return state

    def save(self, state: TSEState, *, frozen: bool = False) -> None:
        """Persist ``state`` with this request (``version`` bumped, on the object too).

        The row is written with the batch (``BatchStates``); until then ``load``
        serves this object or, after a failure, a rebuilt snapshot. A ``frozen``
        state is not copied but serialised when the batch is written (the engine's
        states never change once saved; a JSON error then fails the whole batch).

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
            saved = Saved(version, self._counter, None, state)
        else:
            data = state.to_dict()
            check_json_safe(data)
            state.version = version
            data["version"] = version
            saved = Saved(version, self._counter, data)
        self._batch.states.put(self._tse_id, saved, self._version)
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
        params: list[Any] = []
        for log in logs:
            params += log_params(log)  # checks extra is JSON-safe
        for ref in refs:
            if self._chain.log_by_ref(self._tse_id, ref) is not None or (
                ref not in self._absent_refs and self._stored_ref(ref) is not None
            ):
                raise ConflictError("a log with this ref exists", code="E_DUPLICATE_REF")
        self._batch.logs.add(self._owner, logs, params)
        self._counter = expected - 1

    def delete_logs(self, up_to: int) -> None:
        """deleteStoredData: written with the batch, before its logs."""
        self._check_open()
        self._batch.logs.delete(self._owner, self._tse_id, up_to)

    def find_ref(self, ref: str) -> StoredLog | None:
        self._check_open()
        found = self._chain.log_by_ref(self._tse_id, ref)
        if found is not None:
            return found
        if (self._tse_id, ref) in self._absent:  # looked up with its bunch (sqlite.py)
            self._absent_refs.add(ref)
            return None
        log = self._stored_ref(ref)
        if log is None:
            self._absent_refs.add(ref)
        return log

    def _stored_ref(self, ref: str) -> StoredLog | None:
        """The stored log of ``ref``; E_REF_DELETED if deleteStoredData dropped it (one
        statement for both: this runs for every request with a ref)."""
        row = self._conn.execute(_FIND_REF, (self._tse_id, ref, self._tse_id, ref)).fetchone()
        return stored_or_deleted(row, ref)

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
        """After ``fn`` failed: the batch and the cache back to before it."""
        self._batch.logs.drop(self._owner)
        self._batch.states.put(self._tse_id, self._before, self._version)
        self._forget_changes()

    def _forget_changes(self) -> None:
        before = self._before or self._chain.state(self._tse_id)
        if before is None:
            self._cache.drop(self._tse_id)  # the stored row is the state before
        else:
            self._cache.put(self._tse_id, before.version, before.rebuild())
