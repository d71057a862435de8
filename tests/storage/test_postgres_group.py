"""GroupQueue (group commit per TSE in one process), without a database.

``run_batch`` here plays the database transaction: it checks that batches of one
key never overlap, runs each fn and records the batches it saw.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

from opentse.storage.pg_group import GroupQueue, Request


class Boom(Exception):
    pass


def test_every_caller_gets_its_own_result_and_batches_never_overlap() -> None:
    running: Counter[str] = Counter()
    lock = threading.Lock()
    batches: list[tuple[str, int]] = []
    overlaps: list[str] = []

    def run_batch(key: str, batch: list[Request]) -> None:
        with lock:
            running[key] += 1
            if running[key] > 1:
                overlaps.append(key)
            batches.append((key, len(batch)))
        time.sleep(0.002)  # the "commit": others queue meanwhile
        for request in batch:
            try:
                request.result = request.fn(key)
            except Exception as exc:
                request.error = exc
        with lock:
            running[key] -= 1

    queue = GroupQueue(run_batch, max_batch=8)
    results: dict[int, object] = {}
    errors: dict[int, BaseException] = {}

    def caller(index: int) -> None:
        rng = random.Random(index)
        for n in range(30):
            ident = index * 1000 + n
            key = rng.choice(["a", "b", "c"])

            def fn(seen_key: str, ident: int = ident, key: str = key) -> object:
                assert seen_key == key
                if ident % 7 == 0:
                    raise Boom(str(ident))
                return ident

            try:
                got = queue.submit(key, fn)
            except Boom as exc:
                errors[ident] = exc
            else:
                results[ident] = got

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert overlaps == []
    assert all(ident == value for ident, value in results.items())
    assert all(ident % 7 == 0 and str(exc) == str(ident) for ident, exc in errors.items())
    assert len(results) + len(errors) == 8 * 30
    assert sum(size for _, size in batches) == 8 * 30
    assert max(size for _, size in batches) > 1  # callers did share batches
    assert max(size for _, size in batches) <= 8
    assert queue._queues == {}  # nobody left leading or waiting


def test_a_failing_run_batch_releases_every_waiter() -> None:
    sizes: list[int] = []

    def run_batch(key: str, batch: list[Request]) -> None:
        sizes.append(len(batch))
        if len(sizes) == 1:
            time.sleep(0.05)
            batch[0].result = "lost"  # set before the failure: must not be returned
            raise RuntimeError("bug in the batch runner")
        for request in batch:
            request.result = "ok"

    queue = GroupQueue(run_batch)
    outcomes: list[object] = []

    def caller() -> None:
        try:
            outcomes.append(queue.submit("k", lambda key: None))
        except RuntimeError as exc:
            outcomes.append(exc)

    first = threading.Thread(target=caller)
    first.start()
    time.sleep(0.01)
    others = [threading.Thread(target=caller) for _ in range(3)]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join(timeout=10)
    # the callers of the failed batch see the bug (raised from their own submit);
    # the ones queued meanwhile are served by the next leader
    assert len(outcomes) == 4 and sum(sizes) == 4
    assert sum(isinstance(o, RuntimeError) for o in outcomes) == sizes[0]
    assert outcomes.count("ok") == 4 - sizes[0]
    assert queue._queues == {}


def test_max_batch_one_runs_requests_alone() -> None:
    sizes: list[int] = []

    def run_batch(key: str, batch: list[Request]) -> None:
        sizes.append(len(batch))
        time.sleep(0.001)
        for request in batch:
            request.result = request.fn(key)

    queue = GroupQueue(run_batch, max_batch=1)
    threads = [
        threading.Thread(target=lambda: [queue.submit("k", lambda k: k) for _ in range(10)])
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sizes == [1] * 40


@pytest.mark.parametrize("max_batch", [0, -3])
def test_max_batch_below_one_means_one(max_batch: int) -> None:
    queue = GroupQueue(lambda key, batch: None, max_batch=max_batch)
    assert queue._max_batch == 1
