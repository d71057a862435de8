"""The conformance suite every ``engine.ports.TSEStore`` must pass.

Use it by subclassing with a ``store`` fixture (a fresh, empty store per test)::

    class TestSQLiteStore(StoreConformance):
        @pytest.fixture
        def store(self, tmp_path):
            s = SQLiteStore(tmp_path / "t.db"); yield s; s.close()

It checks the promises the engine relies on: writes in ``run_locked`` are
all-or-nothing, counters continue by exactly +1 (TR-03151: one per signature, never
skipped or repeated) even with concurrent callers, refs are unique per TSE, reads
stream in counter order with plain AND-ed filters. Logs here are synthetic: the
message bytes are arbitrary.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from opentse.engine.ports import LockedTSE, LogFilter, StoredLog, TSERecord, TSEStore
from opentse.engine.state import (
    ClientState,
    Lifecycle,
    OpenTransaction,
    Role,
    TSEState,
    UserState,
)
from opentse.errors import ConflictError, NotFoundError, StorageError
from opentse.tr03151.oids import LogType


def make_record(tse_id: str, *, owner: str = "", created_at: int = 1_700_000_000) -> TSERecord:
    """A record with a serial number derived from the id (unique per id)."""
    point = b"\x04" + hashlib.sha512(tse_id.encode()).digest()[:64]
    return TSERecord(
        tse_id=tse_id,
        serial_number=hashlib.sha256(point).digest(),
        curve="P-256",
        signature_algorithm="ecdsa-plain-SHA256",
        time_format="unixTime",
        public_key_point=point,
        encrypted_private_key=b"\x00encrypted\xff" + tse_id.encode(),
        certificate_chain=(b"\x30\x03cert-" + tse_id.encode(), b"\x30\x02ca"),
        created_at=created_at,
        owner=owner,
        extra={"note": "synthetic", "n": [1, 2]},
    )


def make_log(
    tse_id: str,
    counter: int,
    *,
    log_type: LogType = LogType.TRANSACTION,
    time: int | None = None,
    transaction_number: int | None = None,
    client_id: str | None = None,
    ref: str | None = None,
    extra: dict[str, Any] | None = None,
) -> StoredLog:
    """A synthetic log; the message is arbitrary bytes (includes 0x00 and 0xff)."""
    operation = "FinishTransaction" if log_type is LogType.TRANSACTION else ""
    if log_type is LogType.SYSTEM:
        operation = "UpdateTime"
    log_time = 1_700_000_000 + counter if time is None else time
    return StoredLog(
        tse_id=tse_id,
        signature_counter=counter,
        log_type=log_type,
        operation=operation,
        log_time=log_time,
        filename=f"Unixt_{log_time}_Sig-{counter}_Log-{log_type.value}.log",
        message=b"\x30\x00" + (counter % 2**32).to_bytes(4, "big") + b"\xff\x00" * 8,
        transaction_number=transaction_number,
        client_id=client_id,
        ref=ref,
        extra=extra,
    )


def append_and_save(store: TSEStore, tse_id: str, count: int = 1, **log_args: Any) -> list[int]:
    """One run_locked appending ``count`` logs after the state's counter."""

    def fn(locked: LockedTSE) -> list[int]:
        state = locked.load()
        first = state.signature_counter + 1
        counters = list(range(first, first + count))
        locked.append([make_log(tse_id, c, **log_args) for c in counters])
        state.signature_counter = counters[-1]
        locked.save(state)
        return counters

    return store.run_locked(tse_id, fn)


def _codes(exc_info: pytest.ExceptionInfo[Any]) -> str:
    return str(getattr(exc_info.value, "code", ""))


class StoreConformance:
    """Test methods for a ``store`` fixture; subclasses named ``Test...`` run them."""

    # -- TSEs ---------------------------------------------------------------------

    def test_create_and_get_record(self, store: TSEStore) -> None:
        record = make_record("tse-a", owner="org1")
        store.create_tse(record, TSEState(tse_id="tse-a", description="first"))
        assert store.get_record("tse-a") == record
        state = store.get_state("tse-a")
        assert state.tse_id == "tse-a"
        assert state.description == "first"
        assert state.signature_counter == 0
        assert store.count_logs("tse-a") == 0
        assert list(store.iter_logs("tse-a")) == []

    def test_list_tses_by_owner_in_creation_order(self, store: TSEStore) -> None:
        store.create_tse(make_record("b", owner="o1", created_at=20), TSEState("b"))
        store.create_tse(make_record("a", owner="o2", created_at=30), TSEState("a"))
        store.create_tse(make_record("c", owner="o1", created_at=10), TSEState("c"))
        assert [r.tse_id for r in store.list_tses()] == ["c", "b", "a"]
        assert [r.tse_id for r in store.list_tses("o1")] == ["c", "b"]
        assert [r.tse_id for r in store.list_tses("o2")] == ["a"]
        assert store.list_tses("nobody") == []

    def test_duplicate_id_is_a_conflict(self, store: TSEStore) -> None:
        store.create_tse(make_record("dup"), TSEState("dup", description="one"))
        with pytest.raises(ConflictError) as exc_info:
            store.create_tse(make_record("dup"), TSEState("dup", description="two"))
        assert _codes(exc_info) == "E_TSE_CONFLICT"
        assert store.get_state("dup").description == "one"
        assert len(store.list_tses()) == 1

    def test_duplicate_serial_number_is_a_conflict(self, store: TSEStore) -> None:
        store.create_tse(make_record("one"), TSEState("one"))
        clash = make_record("two")
        clash = TSERecord(**{**_fields(clash), "serial_number": make_record("one").serial_number})
        with pytest.raises(ConflictError) as exc_info:
            store.create_tse(clash, TSEState("two"))
        assert _codes(exc_info) == "E_TSE_CONFLICT"
        assert [r.tse_id for r in store.list_tses()] == ["one"]

    def test_unknown_tse(self, store: TSEStore) -> None:
        calls: list[Callable[[], object]] = [
            lambda: store.get_record("nope"),
            lambda: store.get_state("nope"),
            lambda: store.run_locked("nope", lambda locked: locked.load()),
            lambda: store.iter_logs("nope"),
            lambda: store.count_logs("nope"),
        ]
        for call in calls:
            with pytest.raises(NotFoundError) as exc_info:
                call()
            assert _codes(exc_info) == "E_TSE_NOT_FOUND"
        assert store.get_log("nope", 1) is None
        assert store.find_ref("nope", "x") is None

    # -- run_locked ---------------------------------------------------------------

    def test_run_locked_commits_logs_and_state_together(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))
        before = store.get_state("t").version
        assert append_and_save(store, "t", 3) == [1, 2, 3]
        state = store.get_state("t")
        assert state.signature_counter == 3
        assert state.version == before + 1
        assert [log.signature_counter for log in store.iter_logs("t")] == [1, 2, 3]
        assert append_and_save(store, "t", 2) == [4, 5]
        assert store.get_state("t").version == before + 2

    def test_run_locked_rolls_back_when_fn_raises(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))
        append_and_save(store, "t", 2, ref=None)
        before = store.get_state("t")

        class Boom(Exception):
            pass

        def fn(locked: LockedTSE) -> None:
            state = locked.load()
            locked.append([make_log("t", 3, ref="r3"), make_log("t", 4)])
            state.signature_counter = 4
            state.description = "changed"
            locked.save(state)
            raise Boom("after writing")

        with pytest.raises(Boom):
            store.run_locked("t", fn)
        after = store.get_state("t")
        assert after.to_dict() == before.to_dict()
        assert store.count_logs("t") == 2
        assert store.get_log("t", 3) is None
        assert store.find_ref("t", "r3") is None
        # the cached or stored state must not carry the rolled-back change
        assert store.run_locked("t", lambda locked: locked.load().description) == ""
        assert append_and_save(store, "t", 1, ref="r3") == [3]

    def test_result_of_fn_is_returned_and_read_only_fn_keeps_version(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t", description="d"))
        version = store.get_state("t").version
        assert store.run_locked("t", lambda locked: locked.load().description) == "d"
        assert store.get_state("t").version == version

    def test_load_after_save_in_same_fn_sees_saved_state(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))

        def fn(locked: LockedTSE) -> str:
            state = locked.load()
            state.description = "new"
            locked.save(state)
            return locked.load().description

        assert store.run_locked("t", fn) == "new"
        assert store.get_state("t").description == "new"

    def test_mutating_loaded_state_without_saving_changes_nothing(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t", description="kept"))

        def fn(locked: LockedTSE) -> None:
            locked.load().description = "mutated but not saved"

        store.run_locked("t", fn)
        assert store.get_state("t").description == "kept"
        assert store.run_locked("t", lambda locked: locked.load().description) == "kept"

    def test_counter_gaps_and_repeats_are_rejected(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))
        append_and_save(store, "t", 2)
        bad_batches = [[3, 5], [4], [2], [1], [3, 3], [0], [-1]]
        for counters in bad_batches:

            def fn(locked: LockedTSE, counters: list[int] = counters) -> None:
                locked.append([make_log("t", c) for c in counters])

            with pytest.raises(StorageError) as exc_info:
                store.run_locked("t", fn)
            assert _codes(exc_info) == "E_COUNTER_GAP", counters
        assert [log.signature_counter for log in store.iter_logs("t")] == [1, 2]
        assert store.get_state("t").signature_counter == 2

    def test_rejected_append_writes_nothing_and_fn_may_continue(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))

        def fn(locked: LockedTSE) -> str:
            with pytest.raises(StorageError) as gap:
                locked.append([make_log("t", 1), make_log("t", 2), make_log("t", 4)])
            with pytest.raises(ConflictError) as dup:
                locked.append([make_log("t", 1, ref="x"), make_log("t", 2, ref="x")])
            locked.append([make_log("t", 1, ref="x")])
            state = locked.load()
            state.signature_counter = 1
            locked.save(state)
            return _codes(gap) + " " + _codes(dup)

        assert store.run_locked("t", fn) == "E_COUNTER_GAP E_DUPLICATE_REF"
        assert [log.signature_counter for log in store.iter_logs("t")] == [1]

    def test_state_must_carry_the_last_counter(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))

        def save_wrong(locked: LockedTSE) -> None:
            state = locked.load()
            locked.append([make_log("t", 1)])
            state.signature_counter = 2
            locked.save(state)

        def save_without_append(locked: LockedTSE) -> None:
            state = locked.load()
            state.signature_counter = 1
            locked.save(state)

        def append_without_save(locked: LockedTSE) -> None:
            locked.append([make_log("t", 1)])

        def save_before_append(locked: LockedTSE) -> None:
            locked.save(locked.load())
            locked.append([make_log("t", 1)])

        for fn in (save_wrong, save_without_append, append_without_save, save_before_append):
            with pytest.raises(StorageError) as exc_info:
                store.run_locked("t", fn)
            assert _codes(exc_info) == "E_COUNTER_GAP", fn.__name__
        assert store.count_logs("t") == 0
        assert store.get_state("t").signature_counter == 0

    def test_first_counter_follows_the_created_state(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t", signature_counter=41))
        with pytest.raises(StorageError):
            store.run_locked("t", lambda locked: locked.append([make_log("t", 1)]))
        assert append_and_save(store, "t", 2) == [42, 43]
        assert store.get_log("t", 42) is not None

    def test_logs_of_another_tse_are_rejected(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))
        store.create_tse(make_record("u"), TSEState("u"))
        with pytest.raises(StorageError):
            store.run_locked("t", lambda locked: locked.append([make_log("u", 1)]))
        with pytest.raises(StorageError):
            store.run_locked("t", lambda locked: locked.save(TSEState("u")))
        assert store.count_logs("t") == 0
        assert store.count_logs("u") == 0

    def test_not_json_safe_extra_is_rejected_before_writing(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))

        def fn(locked: LockedTSE) -> None:
            locked.append([make_log("t", 1, extra={"bad": object()})])

        with pytest.raises(StorageError):
            store.run_locked("t", fn)
        assert store.count_logs("t") == 0

    def test_reentrant_call_is_refused(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))
        with pytest.raises(StorageError) as exc_info:
            store.run_locked("t", lambda locked: store.run_locked("t", lambda inner: None))
        assert _codes(exc_info) == "E_STORE_REENTRANT"
        assert append_and_save(store, "t") == [1]

    def test_delete_logs_drops_only_up_to_and_counters_go_on(self, store: TSEStore) -> None:
        """deleteStoredData: logs up to the mark go with the request's own append, in
        one commit; later logs, refs beyond the mark and the counter stay."""
        store.create_tse(make_record("t"), TSEState("t"))
        append_and_save(store, "t", 1, ref="r1")
        append_and_save(store, "t", 2, ref=None)
        append_and_save(store, "t", 1, ref="r4")

        def fn(locked: LockedTSE) -> None:
            state = locked.load()
            locked.delete_logs(3)
            locked.append([make_log("t", 5)])
            state.signature_counter = 5
            locked.save(state)

        store.run_locked("t", fn)
        assert [log.signature_counter for log in store.iter_logs("t")] == [4, 5]
        assert store.get_log("t", 2) is None and store.get_log("t", 4) is not None
        assert store.find_ref("t", "r4") is not None
        assert store.run_locked("t", lambda locked: locked.find_ref("r4")) is not None
        with pytest.raises(ConflictError) as exc_info:  # signed once: never "not found"
            store.run_locked("t", lambda locked: locked.find_ref("r1"))
        assert _codes(exc_info) == "E_REF_DELETED"
        assert append_and_save(store, "t", 1) == [6]

        def fails(locked: LockedTSE) -> None:
            locked.delete_logs(5)
            raise RuntimeError("after deleting")

        with pytest.raises(RuntimeError):
            store.run_locked("t", fails)
        assert [log.signature_counter for log in store.iter_logs("t")] == [4, 5, 6]

    # -- refs ---------------------------------------------------------------------

    def test_refs_are_unique_per_tse(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))
        store.create_tse(make_record("u"), TSEState("u"))
        append_and_save(store, "t", 1, ref="tx:1:0")
        with pytest.raises(ConflictError) as exc_info:
            append_and_save(store, "t", 1, ref="tx:1:0")
        assert _codes(exc_info) == "E_DUPLICATE_REF"
        assert store.count_logs("t") == 1
        assert append_and_save(store, "u", 1, ref="tx:1:0") == [1]
        found = store.find_ref("t", "tx:1:0")
        assert found is not None
        assert found.signature_counter == 1
        assert found.tse_id == "t"
        assert store.find_ref("t", "tx:2:0") is None

    def test_find_ref_inside_run_locked_sees_own_appends(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))
        append_and_save(store, "t", 1, ref="old")

        def fn(locked: LockedTSE) -> tuple[int | None, int | None, bool]:
            state = locked.load()
            locked.append([make_log("t", 2, ref="new")])
            state.signature_counter = 2
            locked.save(state)
            old, new = locked.find_ref("old"), locked.find_ref("new")
            return (
                old.signature_counter if old else None,
                new.signature_counter if new else None,
                locked.find_ref("other") is None,
            )

        assert store.run_locked("t", fn) == (1, 2, True)

    def test_clashing_ref_inside_a_batch_writes_nothing(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))
        append_and_save(store, "t", 1, ref="old")

        def fn(locked: LockedTSE) -> str:
            with pytest.raises(ConflictError) as clash:
                locked.append([make_log("t", 2, ref="fresh"), make_log("t", 3, ref="old")])
            assert locked.find_ref("fresh") is None
            state = locked.load()
            locked.append([make_log("t", 2, ref="fresh")])
            state.signature_counter = 2
            locked.save(state)
            return _codes(clash)

        assert store.run_locked("t", fn) == "E_DUPLICATE_REF"
        assert [log.ref for log in store.iter_logs("t")] == ["old", "fresh"]

    # -- reading logs -------------------------------------------------------------

    def test_log_round_trip(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))
        log = make_log(
            "t",
            1,
            transaction_number=7,
            client_id="ERS 1",
            ref="tx:7:1",
            extra={"schema": {"raw": "Beleg^1.00"}, "list": [1, "ä", None]},
        )

        def fn(locked: LockedTSE) -> None:
            state = locked.load()
            locked.append([log])
            state.signature_counter = 1
            locked.save(state)

        store.run_locked("t", fn)
        assert store.get_log("t", 1) == log
        assert list(store.iter_logs("t")) == [log]
        assert store.get_log("t", 2) is None
        stored = store.get_log("t", 1)
        assert stored is not None
        assert isinstance(stored.log_type, LogType)
        assert isinstance(stored.message, bytes)

    def test_iter_logs_filters(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))
        store.create_tse(make_record("u"), TSEState("u"))
        logs = _filter_dataset("t")
        _store_logs(store, "t", logs)
        append_and_save(store, "u", 5, client_id="c1", transaction_number=1)
        rng = random.Random(151)
        filters = [
            LogFilter(),
            LogFilter(client_id="c1"),
            LogFilter(client_id="c3"),
            LogFilter(start_transaction_number=2, end_transaction_number=3),
            LogFilter(start_transaction_number=3),
            LogFilter(end_transaction_number=1),
            LogFilter(start_time=1005, end_time=1010),
            LogFilter(start_time=1010, end_time=1010),
            LogFilter(start_signature_counter=4, end_signature_counter=9),
            LogFilter(log_types=(LogType.SYSTEM, LogType.AUDIT)),
            LogFilter(log_types=()),
            LogFilter(client_id="c2", start_time=1003, log_types=(LogType.TRANSACTION,)),
        ]
        for _ in range(40):
            filters.append(_random_filter(rng))
        for flt in filters:
            expected = [log for log in logs if _oracle(log, flt)]
            assert list(store.iter_logs("t", flt)) == expected, flt
            assert store.count_logs("t", flt) == len(expected), flt
        assert list(store.iter_logs("t", None)) == logs
        assert store.count_logs("t") == len(logs)

    def test_streaming_many_logs(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))
        for _ in range(10):
            append_and_save(store, "t", 500)
        counters = [log.signature_counter for log in store.iter_logs("t")]
        assert counters == list(range(1, 5001))
        # abandoned iterators must not block writers
        partial = store.iter_logs("t")
        assert next(partial).signature_counter == 1
        assert append_and_save(store, "t", 1) == [5001]
        assert next(partial).signature_counter == 2
        del partial
        window = LogFilter(start_signature_counter=2500, end_signature_counter=2600)
        assert store.count_logs("t", window) == 101

    def test_reading_while_writing(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))
        append_and_save(store, "t", 100)
        seen: list[int] = []
        for log in store.iter_logs("t"):
            if log.signature_counter % 25 == 0:
                append_and_save(store, "t", 1)
            seen.append(log.signature_counter)
        assert seen[:100] == list(range(1, 101))
        assert seen == list(range(1, len(seen) + 1))
        assert store.get_state("t").signature_counter == 104

    # -- concurrency --------------------------------------------------------------

    def test_concurrent_run_locked_never_skips_or_repeats(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))
        store.create_tse(make_record("u"), TSEState("u"))
        threads, rounds = 8, 40
        results: list[list[int]] = [[] for _ in range(threads)]

        def worker(index: int) -> None:
            for n in range(rounds):
                tse = "t" if (index + n) % 3 else "u"
                got = append_and_save(store, tse, 1 + n % 2, ref=None)
                results[index].extend(got if tse == "t" else [])

        _run_threads(threads, worker)
        returned = sorted(c for r in results for c in r)
        stored = [log.signature_counter for log in store.iter_logs("t")]
        assert stored == list(range(1, len(stored) + 1))
        assert returned == stored
        assert store.get_state("t").signature_counter == len(stored)
        stored_u = [log.signature_counter for log in store.iter_logs("u")]
        assert stored_u == list(range(1, len(stored_u) + 1))
        assert store.get_state("u").signature_counter == len(stored_u)

    def test_concurrent_failures_roll_back_only_their_own_work(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))
        threads, rounds = 8, 25
        kept: list[str] = []
        lock = threading.Lock()

        def worker(index: int) -> None:
            for n in range(rounds):
                ref = f"{index}:{n}"
                fail = (index + n) % 3 == 0

                def fn(locked: LockedTSE, ref: str = ref, fail: bool = fail) -> None:
                    state = locked.load()
                    counter = state.signature_counter + 1
                    locked.append([make_log("t", counter, ref=ref)])
                    state.signature_counter = counter
                    state.description = ref
                    locked.save(state)
                    if fail:
                        raise ValueError(ref)

                try:
                    store.run_locked("t", fn)
                except ValueError as exc:
                    assert str(exc) == ref
                else:
                    with lock:
                        kept.append(ref)

        _run_threads(threads, worker)
        logs = list(store.iter_logs("t"))
        assert [log.signature_counter for log in logs] == list(range(1, len(logs) + 1))
        assert sorted(log.ref or "" for log in logs) == sorted(kept)
        state = store.get_state("t")
        assert state.signature_counter == len(logs)
        assert state.description == logs[-1].ref

    def test_readers_see_only_whole_commits_while_writers_run(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))
        stop = threading.Event()
        failures: list[BaseException] = []

        def writer(index: int) -> None:
            for _ in range(30):
                append_and_save(store, "t", 1 + index % 2)

        def reader() -> None:
            last = 0
            try:
                while not stop.is_set():
                    state = store.get_state("t")
                    assert state.signature_counter >= last  # never goes back
                    last = state.signature_counter
                    first = max(last - 3, 1)
                    window = LogFilter(start_signature_counter=first)
                    counters = [log.signature_counter for log in store.iter_logs("t", window)]
                    # state and logs commit together: every log up to `last` is there
                    assert counters[: last - first + 1] == list(range(first, last + 1))
                    assert store.count_logs("t") >= last
            except BaseException as exc:
                failures.append(exc)

        readers = [threading.Thread(target=reader) for _ in range(3)]
        for thread in readers:
            thread.start()
        try:
            _run_threads(4, writer)
        finally:
            stop.set()
            for thread in readers:
                thread.join(timeout=60)
        assert failures == []
        assert store.get_state("t").signature_counter == 4 * 30 + 2 * 30

    # -- state --------------------------------------------------------------------

    def test_state_round_trip(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), TSEState("t"))
        full = _full_state("t")

        def fn(locked: LockedTSE) -> None:
            locked.save(full)

        store.run_locked("t", fn)
        got = store.get_state("t")
        assert got.to_dict() == full.to_dict()
        assert got == full
        assert isinstance(got.users["admin"].role, Role)
        assert isinstance(next(iter(got.open_transactions)), int)
        loaded = store.run_locked("t", lambda locked: locked.load().to_dict())
        assert loaded == full.to_dict()

    def test_returned_objects_do_not_alias_stored_data(self, store: TSEStore) -> None:
        store.create_tse(make_record("t"), _full_state("t"))
        append_and_save(store, "t", 1, extra={"k": [1]})
        state = store.get_state("t")
        state.description = "changed by a reader"
        state.users["admin"].retries_left = 0
        record = store.get_record("t")
        record.extra["note"] = "changed"
        log = store.get_log("t", 1)
        assert log is not None and log.extra is not None
        log.extra["k"].append(2)
        again = store.get_state("t")
        assert again.description == "Kasse 1"
        assert again.users["admin"].retries_left == 3
        assert store.get_record("t").extra["note"] == "synthetic"
        stored = store.get_log("t", 1)
        assert stored is not None and stored.extra == {"k": [1]}

    def test_state_given_at_creation_is_kept(self, store: TSEStore) -> None:
        full = _full_state("t")
        store.create_tse(make_record("t"), full)
        assert store.get_state("t").to_dict() == full.to_dict()


# -- helpers ----------------------------------------------------------------------


def _fields(record: TSERecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in TSERecord.__dataclass_fields__}


def _full_state(tse_id: str) -> TSEState:
    return TSEState(
        tse_id=tse_id,
        lifecycle=Lifecycle.INITIALIZED,
        description="Kasse 1",
        transaction_counter=12,
        time_set=True,
        last_log_time=1_700_000_100,
        users={
            "admin": UserState("admin", Role.ADMIN, "h$pin", "h$puk", 3, 5, False, 1_700_000_200),
            "timeadmin": UserState("timeadmin", Role.TIMEADMIN),
        },
        clients={
            "ERS 1": ClientState("ERS 1", True, 1_700_000_000),
            "ERS 2": ClientState("ERS 2", False, 1_700_000_001, 1_700_000_050),
        },
        open_transactions={
            11: OpenTransaction(11, "ERS 1", 1_700_000_010, 1_700_000_020, "Kassenbeleg-V1"),
            12: OpenTransaction(12, "ERS 1", 1_700_000_030, 1_700_000_030),
        },
        max_clients=10,
        max_open_transactions=50,
        created_at=1_699_999_999,
        uninitialized_at=1_700_000_000,
        initialized_at=1_700_000_001,
        exported_up_to=3,
    )


def _filter_dataset(tse_id: str) -> list[StoredLog]:
    """30 logs: transactions 1..4 of clients c1/c2, system and audit logs between."""
    logs: list[StoredLog] = []
    for counter in range(1, 31):
        time = 1000 + counter // 2  # repeated times, to test inclusive bounds
        if counter % 7 == 0:
            logs.append(make_log(tse_id, counter, log_type=LogType.SYSTEM, time=time))
        elif counter % 11 == 0:
            logs.append(make_log(tse_id, counter, log_type=LogType.AUDIT, time=time))
        else:
            txn = 1 + counter // 8
            client = "c1" if txn % 2 else "c2"
            logs.append(
                make_log(tse_id, counter, time=time, transaction_number=txn, client_id=client)
            )
    return logs


def _store_logs(store: TSEStore, tse_id: str, logs: Sequence[StoredLog]) -> None:
    def fn(locked: LockedTSE) -> None:
        state = locked.load()
        locked.append(logs)
        state.signature_counter = logs[-1].signature_counter
        locked.save(state)

    store.run_locked(tse_id, fn)


def _random_filter(rng: random.Random) -> LogFilter:
    def maybe(low: int, high: int) -> int | None:
        return rng.randint(low, high) if rng.random() < 0.4 else None

    types = None
    if rng.random() < 0.3:
        types = tuple(t for t in LogType if rng.random() < 0.5)
    return LogFilter(
        client_id=rng.choice([None, None, "c1", "c2", "zz"]),
        start_transaction_number=maybe(0, 5),
        end_transaction_number=maybe(0, 5),
        start_time=maybe(999, 1016),
        end_time=maybe(999, 1016),
        start_signature_counter=maybe(0, 31),
        end_signature_counter=maybe(0, 31),
        log_types=types,
    )


def _oracle(log: StoredLog, flt: LogFilter) -> bool:
    """The plain semantics written out once more, independently of any store."""
    checks: list[bool] = []
    if flt.client_id is not None:
        checks.append(log.client_id == flt.client_id)
    txn = log.transaction_number
    if flt.start_transaction_number is not None:
        checks.append(txn is not None and txn >= flt.start_transaction_number)
    if flt.end_transaction_number is not None:
        checks.append(txn is not None and txn <= flt.end_transaction_number)
    if flt.start_time is not None:
        checks.append(log.log_time >= flt.start_time)
    if flt.end_time is not None:
        checks.append(log.log_time <= flt.end_time)
    if flt.start_signature_counter is not None:
        checks.append(log.signature_counter >= flt.start_signature_counter)
    if flt.end_signature_counter is not None:
        checks.append(log.signature_counter <= flt.end_signature_counter)
    if flt.log_types is not None:
        checks.append(log.log_type in flt.log_types)
    return all(checks)


def _run_threads(count: int, target: Callable[[int], None]) -> None:
    """Run ``target(i)`` on ``count`` threads; re-raise the first failure."""
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            target(index)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(worker.is_alive() for worker in workers)
    if errors:
        raise errors[0]
