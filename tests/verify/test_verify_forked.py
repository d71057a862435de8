"""Signatures on forked processes (``verify.forked``) and on threads give the entries
of the one-process run, a child that dies loses no chunk, and no child outlives
the run."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from verify_data import collect_members, unreaped_children

from opentse.verify import forked
from opentse.verify.archive import LoadedExport, _sort_members, load_exports
from opentse.verify.logcheck import CHUNK, LogPipeline, Points
from opentse.verify.synthetic import build_export
from opentse.verify.tarscan import Member

pytestmark = pytest.mark.skipif(not forked.available(), reason="forks only on Linux")


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Member]]:
    path = tmp_path_factory.mktemp("forked") / "e.tar"
    build_export(path, 6 * CHUNK + 17)
    _, members = collect_members([path])
    return path, members


def _run(
    members: list[Member], workers: int, processes: bool | None
) -> list[tuple[str, bool | None, bool]]:
    points: Points = {}
    logs = _sort_members(LoadedExport([]), members, points)
    ticks: list[int] = []
    with LogPipeline(points, workers, ticks.append, processes=processes) as pipeline:
        for begin in range(0, len(logs), CHUNK):
            batch = list(logs[begin : begin + CHUNK])
            if begin == CHUNK:  # one bad signature, one undecodable log
                label, base, data = batch[3]
                batch[3] = (label, base, data[:-1] + bytes((data[-1] ^ 1,)))
                label, base, data = batch[4]
                batch[4] = (label, base, b"\x30\x03junk")
            pipeline.submit(batch)
        entries = pipeline.settle()
    assert sum(ticks) == len(logs)
    return [(e.file, e.signature_ok, e.problem is None) for e in entries]


@pytest.mark.parametrize(("workers", "processes"), [(2, True), (3, True), (2, False)])
def test_processes_and_threads_equal_one_process(
    logs: tuple[Path, list[Member]], workers: int, processes: bool
) -> None:
    _, members = logs
    others = unreaped_children()  # what earlier tests in this worker process left running
    expected = _run(members, 1, None)
    assert expected.count((expected[CHUNK + 3][0], False, True)) == 1
    assert sum(1 for _, ok, decoded in expected if ok is None and not decoded) == 1
    assert _run(members, workers, processes) == expected
    assert unreaped_children() == others


def test_no_child_outlives_a_run(logs: tuple[Path, list[Member]]) -> None:
    path, _ = logs
    others = unreaped_children()
    export = load_exports([path], workers=2, settle=False)
    export.settle()
    assert all(entry.signature_ok for entry in export.logs)
    assert unreaped_children() == others


def _work(payload: int) -> int:
    if payload == 1:
        os._exit(7)  # a child dying mid-run (OOM killer, a crash)
    return payload * 10


def _sent(pool: forked.ForkedPool[int]) -> None:
    """Wait until the feeder has sent what was added."""
    deadline = time.monotonic() + 10
    while pool._backlog and time.monotonic() < deadline:
        time.sleep(0.001)


def test_a_dead_child_loses_no_chunk() -> None:
    """The chunk a child dies on comes back to the backlog for the caller; answers
    are given once per token; the pool ends with no child left."""
    answers: list[tuple[int, int]] = []
    others = unreaped_children()
    pool: forked.ForkedPool[int] = forked.ForkedPool(
        1, _work, lambda token: token, lambda token, result: answers.append((token, result))
    )
    try:
        pool.add(0)
        _sent(pool)
        assert pool.wait()  # answered by the child
        assert answers == [(0, 0)]
        pool.add(1)
        _sent(pool)
        assert not pool.wait()  # back: the child died on it
        assert pool.take() == 1
        assert pool.take() is None
        assert pool.wait()
        pool.add(2)  # no child left: the caller takes everything
        assert pool.take() == 2
        assert pool.wait()
    finally:
        pool.close()
    assert answers == [(0, 0)]
    assert unreaped_children() == others


def test_pinned_while_running_and_given_back() -> None:
    """With a CPU for each, this thread runs on one CPU while the pool lives and on
    all it had afterwards; the child on another one."""
    before = os.sched_getaffinity(0)
    if len(before) < 2:
        pytest.skip("one CPU: nothing is pinned")
    others = unreaped_children()
    pool: forked.ForkedPool[int] = forked.ForkedPool(1, _work, lambda t: t, lambda t, r: None)
    try:
        mine = os.sched_getaffinity(0)
        (child,) = [pid for pid in unreaped_children() if pid not in others]
        deadline = time.monotonic() + 10
        while os.sched_getaffinity(child) == before and time.monotonic() < deadline:
            time.sleep(0.001)  # the child pins itself first thing
        theirs = os.sched_getaffinity(child)
    finally:
        pool.close()
    assert len(mine) == 1 and len(theirs) == 1 and mine != theirs
    assert mine | theirs <= before
    assert os.sched_getaffinity(0) == before
