"""An in-process ``TSEStore`` (a lock and some dicts) for fast engine tests.

Same semantics as ``storage.sqlite.SQLiteStore``, checked by the same conformance
suite (``testing.store_conformance``): ``run_locked`` is all-or-nothing, appended
counters must continue the stored ones by +1, the saved state must carry the last
counter, refs are unique per TSE. State and ``extra`` go through JSON, so a test
notices values a real store could not keep, and no caller can change stored data
through an object it still holds. No durability: not for production use.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from opentse.engine.ports import LockedTSE, LogFilter, StoredLog, TSERecord
from opentse.engine.state import TSEState
from opentse.errors import ConflictError, NotFoundError, StorageError
from opentse.storage.rows import ref_deleted

T = TypeVar("T")


def _json_copy(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise StorageError(
            f"{what} is not JSON-serialisable: {exc}", code="E_STORAGE_DATA"
        ) from exc


def _out(log: StoredLog) -> StoredLog:
    """A log as handed out: its ``extra`` copied, so readers cannot change the store."""
    if log.extra is None:
        return log
    return replace(log, extra=_json_copy(log.extra, "log extra"))


def _maybe(log: StoredLog | None) -> StoredLog | None:
    return None if log is None else _out(log)


def matches(log: StoredLog, flt: LogFilter | None) -> bool:
    """Plain LogFilter semantics: every given bound applies (AND, inclusive)."""
    if flt is None:
        return True

    def within(value: int | None, low: int | None, high: int | None) -> bool:
        if low is None and high is None:
            return True
        if value is None:
            return False
        return (low is None or value >= low) and (high is None or value <= high)

    return (
        (flt.client_id is None or log.client_id == flt.client_id)
        and within(log.transaction_number, flt.start_transaction_number, flt.end_transaction_number)
        and within(log.log_time, flt.start_time, flt.end_time)
        and within(log.signature_counter, flt.start_signature_counter, flt.end_signature_counter)
        and (flt.log_types is None or log.log_type in flt.log_types)
    )


@dataclass
class _Entry:
    record: TSERecord
    state_json: str
    version: int
    logs: list[StoredLog] = field(default_factory=list)  # in counter order
    refs: dict[str, StoredLog] = field(default_factory=dict)
    deleted_refs: dict[str, int] = field(default_factory=dict)  # deleteStoredData
    base_counter: int = 0  # counter before the first stored log

    @property
    def last_counter(self) -> int:
        return self.logs[-1].signature_counter if self.logs else self.base_counter


class MemoryStore:
    """``engine.ports.TSEStore`` in memory; one lock serialises every write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._tses: dict[str, _Entry] = {}
        self._closed = False

    def _entry(self, tse_id: str) -> _Entry:
        if self._closed:
            raise StorageError("the store is closed", code="E_STORE_CLOSED")
        entry = self._tses.get(tse_id)
        if entry is None:
            raise NotFoundError(f"TSE {tse_id!r} does not exist", code="E_TSE_NOT_FOUND")
        return entry

    def _acquire(self) -> None:
        if self._owner == threading.get_ident():
            raise StorageError(
                "run_locked/create_tse called from inside run_locked", code="E_STORE_REENTRANT"
            )
        self._lock.acquire()
        self._owner = threading.get_ident()

    def _release(self) -> None:
        self._owner = None
        self._lock.release()

    def create_tse(self, record: TSERecord, state: TSEState) -> None:
        if state.tse_id != record.tse_id:
            raise StorageError("state.tse_id differs from record.tse_id", code="E_TSE_MISMATCH")
        state_json = json.dumps(_json_copy(state.to_dict(), "TSE state"))
        extra = _json_copy(record.extra, "TSE record extra")
        self._acquire()
        try:
            if self._closed:
                raise StorageError("the store is closed", code="E_STORE_CLOSED")
            for other in self._tses.values():
                if other.record.tse_id == record.tse_id or (
                    other.record.serial_number == record.serial_number
                ):
                    raise ConflictError(
                        f"a TSE with this id or serial number exists ({record.tse_id!r})",
                        code="E_TSE_CONFLICT",
                    )
            self._tses[record.tse_id] = _Entry(
                record=replace(record, extra=extra),
                state_json=state_json,
                version=state.version,
                base_counter=state.signature_counter,
            )
        finally:
            self._release()

    def get_record(self, tse_id: str) -> TSERecord:
        record = self._entry(tse_id).record
        return replace(record, extra=_json_copy(record.extra, "extra"))

    def get_state(self, tse_id: str) -> TSEState:
        entry = self._entry(tse_id)
        state = TSEState.from_dict(json.loads(entry.state_json))
        state.version = entry.version
        return state

    def list_tses(self, owner: str | None = None) -> list[TSERecord]:
        """Records ordered by (created_at, tse_id), optionally of one owner."""
        records = [e.record for e in list(self._tses.values())]
        chosen = [r for r in records if owner is None or r.owner == owner]
        chosen.sort(key=lambda r: (r.created_at, r.tse_id))
        return [replace(r, extra=_json_copy(r.extra, "extra")) for r in chosen]

    def run_locked(self, tse_id: str, fn: Callable[[LockedTSE], T], *, ref: str | None = None) -> T:
        self._acquire()
        try:
            entry = self._entry(tse_id)
            view = _MemoryView(entry)
            try:
                result = fn(view)
                view.finish()
            finally:
                view.closed = True
            view.commit()
            return result
        finally:
            self._release()

    def iter_logs(self, tse_id: str, flt: LogFilter | None = None) -> Iterator[StoredLog]:
        logs = self._entry(tse_id).logs
        end = len(logs)  # a snapshot: logs are only ever appended
        return (_out(logs[i]) for i in range(end) if matches(logs[i], flt))

    def count_logs(self, tse_id: str, flt: LogFilter | None = None) -> int:
        return sum(1 for _ in self.iter_logs(tse_id, flt))

    def get_log(self, tse_id: str, signature_counter: int) -> StoredLog | None:
        entry = self._tses.get(tse_id)
        if entry is None or not entry.logs:
            return None
        index = signature_counter - entry.logs[0].signature_counter
        if 0 <= index < len(entry.logs):
            return _out(entry.logs[index])
        return None

    def find_ref(self, tse_id: str, ref: str) -> StoredLog | None:
        entry = self._tses.get(tse_id)
        return None if entry is None else _maybe(entry.refs.get(ref))

    def close(self) -> None:
        self._closed = True


class _MemoryView:
    """Collects ``fn``'s appends and save; ``commit`` applies them together."""

    def __init__(self, entry: _Entry) -> None:
        self._entry = entry
        self._counter = entry.last_counter
        self._saved_counter = self._counter
        self._pending: list[StoredLog] = []
        self._pending_refs: dict[str, StoredLog] = {}
        self._state_json: str | None = None
        self._delete_up_to = 0
        self.closed = False

    def _check_open(self) -> None:
        if self.closed:
            raise StorageError("LockedTSE used after run_locked returned", code="E_STORE_CLOSED")

    def load(self) -> TSEState:
        self._check_open()
        text = self._state_json if self._state_json is not None else self._entry.state_json
        state = TSEState.from_dict(json.loads(text))
        state.version = self._entry.version + (1 if self._state_json is not None else 0)
        return state

    def save(self, state: TSEState, *, frozen: bool = False) -> None:
        self._check_open()
        if state.tse_id != self._entry.record.tse_id:
            raise StorageError("state belongs to another TSE", code="E_TSE_MISMATCH")
        if state.signature_counter != self._counter:
            raise StorageError(
                f"state.signature_counter {state.signature_counter} differs from the last "
                f"stored counter {self._counter}",
                code="E_COUNTER_GAP",
            )
        state.version = self._entry.version + 1
        self._state_json = json.dumps(_json_copy(state.to_dict(), "TSE state"))
        self._saved_counter = state.signature_counter

    def append(self, logs: Sequence[StoredLog]) -> None:
        """All or none: counters continue the stored ones by +1, refs are new."""
        self._check_open()
        expected = self._counter + 1
        for log in logs:  # checked in this order by every store: counters, refs, data
            if log.tse_id != self._entry.record.tse_id:
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
        copies = [
            replace(
                log,
                message=bytes(log.message),
                extra=None if log.extra is None else _json_copy(log.extra, "log extra"),
            )
            for log in logs
        ]
        if any(r in self._pending_refs or r in self._entry.refs for r in refs):
            raise ConflictError("a log with this ref exists", code="E_DUPLICATE_REF")
        self._pending.extend(copies)
        self._pending_refs.update((log.ref, log) for log in copies if log.ref is not None)
        self._counter = expected - 1

    def find_ref(self, ref: str) -> StoredLog | None:
        self._check_open()
        found = self._pending_refs.get(ref) or self._entry.refs.get(ref)
        if found is None and ref in self._entry.deleted_refs:
            raise ref_deleted(ref, self._entry.deleted_refs[ref])
        return _maybe(found)

    def delete_logs(self, up_to: int) -> None:
        self._check_open()
        self._delete_up_to = max(self._delete_up_to, up_to)

    def finish(self) -> None:
        """After ``fn``: appended logs require the state saved with their counter."""
        if self._saved_counter != self._counter:
            raise StorageError(
                f"logs up to counter {self._counter} appended but the state was saved "
                f"with {self._saved_counter}",
                code="E_COUNTER_GAP",
            )

    def commit(self) -> None:
        entry = self._entry
        if self._delete_up_to:
            up_to = self._delete_up_to
            entry.base_counter = max(entry.base_counter, min(up_to, entry.last_counter))
            entry.logs = [log for log in entry.logs if log.signature_counter > up_to]
            entry.deleted_refs.update(
                (r, log.signature_counter)
                for r, log in entry.refs.items()
                if log.signature_counter <= up_to
            )
            entry.refs = {r: log for r, log in entry.refs.items() if log.signature_counter > up_to}
        entry.logs.extend(self._pending)
        entry.refs.update(self._pending_refs)
        if self._state_json is not None:
            entry.state_json = self._state_json
            entry.version += 1
