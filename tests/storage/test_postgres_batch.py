"""PostgresStore group commit: callers sequenced into one transaction see each
other's staged logs, and a failing caller takes back only its own work (its
staged logs, a deletion) without a savepoint per caller.

A batch is made the way it happens in a server: the first caller leads and holds
its transaction open (its fn waits), the others queue behind it and run together
as the next batch. Skips only when no PostgreSQL server is reachable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from opentse.engine.ports import LockedTSE
from opentse.engine.state import TSEState
from opentse.errors import ConflictError
from opentse.storage.pg_testing import temporary_schema
from opentse.storage.postgres import PostgresStore
from opentse.testing.store_conformance import append_and_save, make_log, make_record

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(pg_server: str) -> Iterator[PostgresStore]:
    """pg_server (tests/conftest.py) skips when no PostgreSQL answers, looked up when a
    test runs, not while the module is collected."""
    with temporary_schema(pg_server) as url, PostgresStore(url, pool_max=8) as opened:
        opened.create_tse(make_record("t"), TSEState("t"))
        yield opened


def _append(ref: str | None, *, fail: bool = False) -> Callable[[LockedTSE], int]:
    def fn(locked: LockedTSE) -> int:
        state = locked.load()
        counter = state.signature_counter + 1
        locked.append([make_log("t", counter, ref=ref)])
        state.signature_counter = counter
        locked.save(state)
        if fail:
            raise ValueError(ref)
        return counter

    return fn


def _wait_queued(store: PostgresStore, count: int) -> None:
    """Until ``count`` callers wait behind the leader of TSE "t" (the store's group
    queue: a sleep per thread start was a guess that a loaded machine can beat)."""
    deadline = time.monotonic() + 10
    while len(store._queue._queues.get("t", [])) < count:
        assert time.monotonic() < deadline, f"{count} callers did not queue"
        time.sleep(0.002)


def _one_batch(store: PostgresStore, fns: list[Callable[[LockedTSE], Any]]) -> list[Any]:
    """Run ``fns`` as ONE batch, in this order; each outcome is a result or the
    exception raised. Asserts that they shared one commit."""
    gate = threading.Event()
    entered = threading.Event()
    outcomes: list[Any] = [None] * len(fns)

    def hold(locked: LockedTSE) -> None:
        locked.load()
        entered.set()
        assert gate.wait(10)

    leader = threading.Thread(target=store.run_locked, args=("t", hold))
    leader.start()
    assert entered.wait(10)  # the leader's transaction is open: the next callers queue

    def call(index: int) -> None:
        try:
            outcomes[index] = store.run_locked("t", fns[index])
        except Exception as exc:
            outcomes[index] = exc

    threads = []
    try:
        for index in range(len(fns)):
            thread = threading.Thread(target=call, args=(index,))
            thread.start()
            threads.append(thread)
            _wait_queued(store, index + 1)  # queue order = this order
        commits = store.stats["commits"]
    finally:
        gate.set()
    leader.join(10)
    for thread in threads:
        thread.join(10)
    assert store.stats["commits"] == commits + 2  # the leader's, then one for all
    return outcomes


def test_a_ref_staged_by_an_earlier_caller_is_found_and_not_stored_twice(
    store: PostgresStore,
) -> None:
    append_and_save(store, "t", 1)
    seen: list[Any] = []

    def look(locked: LockedTSE) -> None:
        found = locked.find_ref("r1")
        seen.append(None if found is None else found.signature_counter)

    outcomes = _one_batch(store, [_append("r1"), look, _append("r1"), _append("r2")])
    assert outcomes[0] == 2
    assert seen == [2]  # staged by the first caller, not yet in the table
    assert isinstance(outcomes[2], ConflictError) and outcomes[2].code == "E_DUPLICATE_REF"
    assert outcomes[3] == 3  # the refused caller took nothing with it
    logs = list(store.iter_logs("t"))
    assert [(log.signature_counter, log.ref) for log in logs] == [(1, None), (2, "r1"), (3, "r2")]
    assert store.get_state("t").signature_counter == 3
    assert store.find_ref("t", "r1") is not None


def test_a_failing_caller_loses_its_logs_and_the_next_continues_from_the_state_before(
    store: PostgresStore,
) -> None:
    outcomes = _one_batch(
        store, [_append("a"), _append("b", fail=True), _append("c"), _append("d", fail=True)]
    )
    assert outcomes[0] == 1 and outcomes[2] == 2
    assert isinstance(outcomes[1], ValueError) and isinstance(outcomes[3], ValueError)
    logs = list(store.iter_logs("t"))
    assert [(log.signature_counter, log.ref) for log in logs] == [(1, "a"), (2, "c")]
    assert store.get_state("t").signature_counter == 2
    assert store.find_ref("t", "b") is None


def test_a_failing_deletion_is_rolled_back_and_the_batch_goes_on(store: PostgresStore) -> None:
    append_and_save(store, "t", 3)

    def delete_then_fail(locked: LockedTSE) -> None:
        locked.load()
        locked.delete_logs(2)
        raise ValueError("after deleting")

    def delete_and_log(locked: LockedTSE) -> int:
        locked.delete_logs(1)
        return _append("kept")(locked)

    outcomes = _one_batch(store, [_append("x"), delete_then_fail, delete_and_log])
    assert outcomes[0] == 4
    assert isinstance(outcomes[1], ValueError)
    assert outcomes[2] == 5
    counters = [log.signature_counter for log in store.iter_logs("t")]
    assert counters == [2, 3, 4, 5]  # only the succeeding deletion (counter 1) happened
    assert store.get_state("t").signature_counter == 5


def test_a_ref_appended_twice_by_one_caller_is_refused_for_that_caller(
    store: PostgresStore,
) -> None:
    def twice(locked: LockedTSE) -> None:
        state = locked.load()
        locked.append([make_log("t", state.signature_counter + 1, ref="same")])
        locked.append([make_log("t", state.signature_counter + 2, ref="same")])

    outcomes = _one_batch(store, [_append("a"), twice, _append("b")])
    assert isinstance(outcomes[1], ConflictError) and outcomes[1].code == "E_DUPLICATE_REF"
    assert (outcomes[0], outcomes[2]) == (1, 2)  # the others of its batch are stored
    assert [log.ref for log in store.iter_logs("t")] == ["a", "b"]
