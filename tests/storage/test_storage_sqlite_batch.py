"""SQLiteStore group commit: requests sharing one transaction stay independent.

The state row is written once per transaction (``sqlite_batch.BatchStates``), so
these tests force several requests into one batch (the first one holds the writer
until the others are queued) and check that a failing or read-only request in the
middle neither loses nor leaks state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from opentse.engine.ports import LockedTSE
from opentse.engine.state import TSEState
from opentse.errors import StorageError
from opentse.storage.sqlite import SQLiteStore
from opentse.testing.store_conformance import make_log, make_record


class Boom(Exception):
    pass


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "batch.db")
    store.create_tse(make_record("t"), TSEState("t"))
    yield store
    store.close()


def _sign(description: str, fail: bool = False) -> Callable[[LockedTSE], int]:
    """Append one log, set the description in place, save; optionally fail after."""

    def fn(locked: LockedTSE) -> int:
        state = locked.load()
        counter = state.signature_counter + 1
        locked.append([make_log("t", counter)])
        state.signature_counter = counter
        state.description = description
        locked.save(state)
        if fail:
            raise Boom(description)
        return counter

    return fn


def _in_one_batch(store: SQLiteStore, fns: list[Callable[[LockedTSE], Any]]) -> list[Any]:
    """Run ``fns`` in one group commit: a gate request holds the writer until all of
    them are queued (in order), then they form the next batch together."""
    release = threading.Event()
    results: list[Any] = [None] * len(fns)

    def call(i: int, fn: Callable[[LockedTSE], Any]) -> None:
        try:
            results[i] = store.run_locked("t", fn)
        except Exception as exc:
            results[i] = exc

    commits = store.stats["commits"]
    gate = threading.Thread(target=store.run_locked, args=("t", lambda _: release.wait(10)))
    gate.start()
    threads = []
    for i, fn in enumerate(fns):
        while store._writer._queue.qsize() != i:  # the gate is running; queue in order
            time.sleep(0.001)
        threads.append(threading.Thread(target=call, args=(i, fn)))
        threads[-1].start()
    while store._writer._queue.qsize() != len(fns):
        time.sleep(0.001)
    release.set()
    for t in [gate, *threads]:
        t.join(10)
    # the gate's commit, then one for all of fns (the committer may merge the two)
    assert store.stats["commits"] in (commits + 1, commits + 2)
    return results


def test_a_failing_request_between_two_others_loses_only_its_own_effects(
    store: SQLiteStore,
) -> None:
    results = _in_one_batch(store, [_sign("a"), _sign("b", fail=True), _sign("c")])
    assert results[0] == 1
    assert isinstance(results[1], Boom)
    assert results[2] == 2
    state = store.get_state("t")
    assert (state.signature_counter, state.description) == (2, "c")
    assert [log.signature_counter for log in store.iter_logs("t")] == [1, 2]


def test_after_a_failure_the_next_request_sees_the_earlier_save(store: SQLiteStore) -> None:
    seen: list[str] = []

    def look(locked: LockedTSE) -> None:
        seen.append(locked.load().description)

    results = _in_one_batch(store, [_sign("a"), _sign("b", fail=True), look, _sign("d")])
    assert isinstance(results[1], Boom)
    assert seen == ["a"]  # not "b": the failed request changed the object in place
    assert store.get_state("t").description == "d"
    assert store.run_locked("t", lambda locked: locked.load().description) == "d"


def test_mutating_without_saving_in_a_batch_changes_nothing(store: SQLiteStore) -> None:
    def meddle(locked: LockedTSE) -> None:
        locked.load().description = "not saved"

    seen: list[str] = []
    results = _in_one_batch(
        store, [_sign("a"), meddle, lambda locked: seen.append(locked.load().description)]
    )
    assert results[0] == 1
    assert seen == ["a"]
    assert store.get_state("t").description == "a"


def test_a_state_that_is_not_json_fails_only_its_request(store: SQLiteStore) -> None:
    def bad(locked: LockedTSE) -> None:
        state = locked.load()
        state.description = b"bytes are not JSON"  # type: ignore[assignment]
        locked.save(state)

    results = _in_one_batch(store, [_sign("a"), bad, _sign("c")])
    assert isinstance(results[1], StorageError) and results[1].code == "E_STORAGE_DATA"
    assert results[0] == 1 and results[2] == 2
    state = store.get_state("t")
    assert (state.signature_counter, state.description) == (2, "c")


def test_state_and_logs_survive_reopening_after_a_batch(tmp_path: Path) -> None:
    path = tmp_path / "reopen.db"
    with SQLiteStore(path) as store:
        store.create_tse(make_record("t"), TSEState("t"))
        _in_one_batch(store, [_sign("a"), _sign("b"), _sign("c")])
        version = store.get_state("t").version
    with SQLiteStore(path) as again:
        state = again.get_state("t")
        assert (state.signature_counter, state.description, state.version) == (3, "c", version)
        assert again.count_logs("t") == 3
