"""SQLiteStore and MemoryStore agree on random sequences of run_locked calls.

A hypothesis state machine drives both stores with the same functions: good
appends, counter gaps and repeats, duplicate refs, non-JSON extra data, functions
that raise after writing, read-only calls, and reopening the SQLite file. After
every step both must have returned the same result or raised the same error code,
and must hold the same state and logs (under random filters too).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from opentse.engine.ports import LockedTSE, LogFilter, TSEStore
from opentse.engine.state import OpenTransaction, TSEState
from opentse.storage.sqlite import SQLiteStore
from opentse.testing.memory_store import MemoryStore
from opentse.testing.store_conformance import make_log, make_record
from opentse.tr03151.oids import LogType

TSES = ("a", "b")
REFS = st.sampled_from([None, None, None, "r1", "r2", "r3", "r4", "r5", "r6", "r7"])
_rarely = st.sampled_from([False, False, False, False, True])


class _Raised(Exception):
    pass


def _outcome(store: TSEStore, tse_id: str, fn: Any) -> tuple[str, object]:
    try:
        return ("ok", store.run_locked(tse_id, fn))
    except _Raised as exc:
        return ("raised", str(exc))
    except Exception as exc:
        return (type(exc).__name__, getattr(exc, "code", None))


class StoresAgree(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="opentse-diff-"))
        self.sqlite = SQLiteStore(self.folder / "s.db")
        self.memory = MemoryStore()
        for tse_id in TSES:
            for store in (self.sqlite, self.memory):
                store.create_tse(make_record(tse_id), TSEState(tse_id))

    def both(self, tse_id: str, fn: Any) -> None:
        got_sqlite = _outcome(self.sqlite, tse_id, fn)
        got_memory = _outcome(self.memory, tse_id, fn)
        assert got_sqlite == got_memory

    @rule(
        tse_id=st.sampled_from(TSES),
        refs=st.lists(REFS, min_size=1, max_size=4),
        offset=st.sampled_from([0] * 8 + [1, -1, 2]),
        swap=_rarely,
        log_type=st.sampled_from(list(LogType)),
        bad_extra=_rarely,
        then_raise=_rarely,
        txn=st.integers(1, 4),
    )
    def append(
        self,
        tse_id: str,
        refs: list[str | None],
        offset: int,
        swap: bool,
        log_type: LogType,
        bad_extra: bool,
        then_raise: bool,
        txn: int,
    ) -> None:
        def fn(locked: LockedTSE) -> list[int]:
            state = locked.load()
            first = state.signature_counter + 1 + offset
            counters = list(range(first, first + len(refs)))
            if swap and len(counters) > 1:
                counters[0], counters[1] = counters[1], counters[0]
            extra: dict[str, Any] = {"bad": {1, 2}} if bad_extra else {"n": len(refs)}
            logs = [
                make_log(
                    tse_id,
                    c,
                    log_type=log_type,
                    time=1000 + c // 3,
                    transaction_number=txn if log_type is LogType.TRANSACTION else None,
                    client_id="c1" if txn % 2 else "c2",
                    ref=ref,
                    extra=extra,
                )
                for c, ref in zip(counters, refs, strict=True)
            ]
            locked.append(logs)
            state.signature_counter = counters[-1]
            state.transaction_counter += 1
            state.open_transactions[state.transaction_counter] = OpenTransaction(
                state.transaction_counter, "c1", 1000, 1001
            )
            locked.save(state)
            if then_raise:
                raise _Raised("after writing")
            return counters

        self.both(tse_id, fn)

    @rule(tse_id=st.sampled_from(TSES), description=st.text(max_size=5))
    def save_only(self, tse_id: str, description: str) -> None:
        def fn(locked: LockedTSE) -> int:
            state = locked.load()
            state.description = description
            locked.save(state)
            return state.version

        self.both(tse_id, fn)

    @rule(tse_id=st.sampled_from(TSES), ref=st.sampled_from(["r1", "r2", "r9"]))
    def read_only(self, tse_id: str, ref: str) -> None:
        def fn(locked: LockedTSE) -> tuple[int, int | None]:
            state = locked.load()
            state.description = "mutated, not saved"
            found = locked.find_ref(ref)
            return state.signature_counter, found.signature_counter if found else None

        self.both(tse_id, fn)

    @rule()
    def reopen(self) -> None:
        self.sqlite.close()
        self.sqlite = SQLiteStore(self.folder / "s.db")

    @rule(
        tse_id=st.sampled_from(TSES),
        low=st.one_of(st.none(), st.integers(0, 12)),
        high=st.one_of(st.none(), st.integers(0, 12)),
        time_low=st.one_of(st.none(), st.integers(999, 1005)),
        client=st.sampled_from([None, "c1", "c2"]),
        txn=st.one_of(st.none(), st.integers(1, 4)),
        types=st.one_of(st.none(), st.lists(st.sampled_from(list(LogType)), max_size=2)),
    )
    def filtered_reads_agree(
        self,
        tse_id: str,
        low: int | None,
        high: int | None,
        time_low: int | None,
        client: str | None,
        txn: int | None,
        types: list[LogType] | None,
    ) -> None:
        flt = LogFilter(
            client_id=client,
            start_transaction_number=txn,
            end_transaction_number=txn,
            start_time=time_low,
            start_signature_counter=low,
            end_signature_counter=high,
            log_types=None if types is None else tuple(types),
        )
        assert list(self.sqlite.iter_logs(tse_id, flt)) == list(self.memory.iter_logs(tse_id, flt))
        assert self.sqlite.count_logs(tse_id, flt) == self.memory.count_logs(tse_id, flt)

    @invariant()
    def same_state_and_logs(self) -> None:
        for tse_id in TSES:
            assert self.sqlite.get_state(tse_id) == self.memory.get_state(tse_id)
            logs = list(self.sqlite.iter_logs(tse_id))
            assert logs == list(self.memory.iter_logs(tse_id))
            assert [log.signature_counter for log in logs] == list(range(1, len(logs) + 1))
            for ref in ("r1", "r2"):
                assert self.sqlite.find_ref(tse_id, ref) == self.memory.find_ref(tse_id, ref)

    def teardown(self) -> None:
        self.sqlite.close()
        self.memory.close()
        shutil.rmtree(self.folder, ignore_errors=True)


StoresAgree.TestCase.settings = settings(max_examples=40, stateful_step_count=15, deadline=None)
TestStoresAgree = StoresAgree.TestCase
