"""An in-memory ``TSEStore`` for fast engine tests and examples (no durability).

It keeps the port's rules that matter to the engine: ``run_locked`` is all or
nothing, appended counters must continue the stored ones, the saved state's counter
must match the last log, refs are unique per TSE. Not for production use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from opentse.engine.ports import LogFilter, StoredLog, TSERecord
from opentse.engine.state import TSEState
from opentse.errors import ConflictError, NotFoundError, StorageError

T = TypeVar("T")


def matches(log: StoredLog, flt: LogFilter | None) -> bool:
    """``LogFilter`` as a plain AND of its bounds (the port's semantics)."""
    if flt is None:
        return True
    if flt.client_id is not None and log.client_id != flt.client_id:
        return False
    if flt.start_transaction_number is not None or flt.end_transaction_number is not None:
        n = log.transaction_number
        if n is None:
            return False
        if flt.start_transaction_number is not None and n < flt.start_transaction_number:
            return False
        if flt.end_transaction_number is not None and n > flt.end_transaction_number:
            return False
    if flt.start_time is not None and log.log_time < flt.start_time:
        return False
    if flt.end_time is not None and log.log_time > flt.end_time:
        return False
    c = log.signature_counter
    if flt.start_signature_counter is not None and c < flt.start_signature_counter:
        return False
    if flt.end_signature_counter is not None and c > flt.end_signature_counter:
        return False
    return flt.log_types is None or log.log_type in flt.log_types


class _Locked:
    def __init__(self, store: MemoryStore, tse_id: str) -> None:
        self.store = store
        self.tse_id = tse_id
        self.state = store._states[tse_id]
        self.logs: list[StoredLog] = []
        self.saved = False

    def load(self) -> TSEState:
        return self.state

    def save(self, state: TSEState) -> None:
        state.version = self.store._states[self.tse_id].version + 1
        self.state = state
        self.saved = True

    def append(self, logs: Sequence[StoredLog]) -> None:
        stored = self.store._logs[self.tse_id]
        expected = self.logs[-1] if self.logs else stored[-1] if stored else None
        nxt = 1 if expected is None else expected.signature_counter + 1
        refs = self.store._refs[self.tse_id]
        for log in logs:
            if log.signature_counter != nxt:
                raise StorageError(
                    f"counter {log.signature_counter} != {nxt}", code="E_COUNTER_GAP"
                )
            if log.ref is not None and (
                log.ref in refs or any(x.ref == log.ref for x in self.logs)
            ):
                raise ConflictError("a log with this ref exists", code="E_DUPLICATE_REF")
            self.logs.append(log)
            nxt += 1

    def find_ref(self, ref: str) -> StoredLog | None:
        return self.store._refs[self.tse_id].get(ref)


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._records: dict[str, TSERecord] = {}
        self._states: dict[str, TSEState] = {}
        self._logs: dict[str, list[StoredLog]] = {}
        self._refs: dict[str, dict[str, StoredLog]] = {}

    def create_tse(self, record: TSERecord, state: TSEState) -> None:
        with self._lock:
            if record.tse_id in self._records:
                raise ConflictError(f"TSE {record.tse_id!r} exists", code="E_TSE_CONFLICT")
            self._records[record.tse_id] = record
            self._states[record.tse_id] = state
            self._logs[record.tse_id] = []
            self._refs[record.tse_id] = {}

    def _require(self, tse_id: str) -> None:
        if tse_id not in self._records:
            raise NotFoundError(f"TSE {tse_id!r} not found", code="E_TSS_NOT_FOUND")

    def get_record(self, tse_id: str) -> TSERecord:
        with self._lock:
            self._require(tse_id)
            return self._records[tse_id]

    def get_state(self, tse_id: str) -> TSEState:
        with self._lock:
            self._require(tse_id)
            return self._states[tse_id]

    def list_tses(self, owner: str | None = None) -> list[TSERecord]:
        with self._lock:
            return [r for r in self._records.values() if owner is None or r.owner == owner]

    def run_locked(self, tse_id: str, fn: Callable[[_Locked], T]) -> T:  # type: ignore[override]
        with self._lock:
            self._require(tse_id)
            view = _Locked(self, tse_id)
            result = fn(view)
            last = view.logs[-1].signature_counter if view.logs else None
            if last is not None and (not view.saved or view.state.signature_counter != last):
                raise StorageError("logs appended without a matching state", code="E_COUNTER_GAP")
            self._logs[tse_id].extend(view.logs)
            for log in view.logs:
                if log.ref is not None:
                    self._refs[tse_id][log.ref] = log
            self._states[tse_id] = view.state
            return result

    def iter_logs(self, tse_id: str, flt: LogFilter | None = None) -> Iterator[StoredLog]:
        with self._lock:
            self._require(tse_id)
            logs = list(self._logs[tse_id])
        return (log for log in logs if matches(log, flt))

    def count_logs(self, tse_id: str, flt: LogFilter | None = None) -> int:
        return sum(1 for _ in self.iter_logs(tse_id, flt))

    def get_log(self, tse_id: str, signature_counter: int) -> StoredLog | None:
        with self._lock:
            self._require(tse_id)
            logs = self._logs[tse_id]
            if 1 <= signature_counter <= len(logs):
                log = logs[signature_counter - 1]
                if log.signature_counter == signature_counter:
                    return log
            return next((x for x in logs if x.signature_counter == signature_counter), None)

    def find_ref(self, tse_id: str, ref: str) -> StoredLog | None:
        with self._lock:
            self._require(tse_id)
            return self._refs[tse_id].get(ref)

    def close(self) -> None:
        pass
