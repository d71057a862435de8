"""Two cleaners, or a cleaner and a live export, at the same moment (review of
361c331). A cleaner found a new part file in the instant between its creation and
its writer's lock and deleted it under the running export (whose rename then failed
with a raw FileNotFoundError); two cleans recorded one unrecorded export twice. Real
processes: a forked export stopped (SIGSTOP) exactly in that instant."""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from conftest import ready_tse
from opentse.ops import archive, archive_leftovers
from opentse.ops.store import OpsContext


def test_a_cleaner_leaves_a_part_file_alone_before_its_writer_locks_it(
    ops: OpsContext, tmp_path: Path
) -> None:
    ready_tse(ops, "t1", "K1")
    folder = archive.archive_dir(ops, "t1")
    result = tmp_path / "child.txt"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        said = "?"
        try:
            ctx = OpsContext.open(ops.data_dir, clock=ops.clock)

            def hook(frame: FrameType, event: str, arg: Any) -> None:
                # stop at the first lock taken once the part file exists: the instant
                # between its creation and its writer's lock
                if event == "c_call" and arg is fcntl.flock and archive.part_files(folder):
                    sys.setprofile(None)
                    os.kill(os.getpid(), signal.SIGSTOP)

            sys.setprofile(hook)
            try:
                archive.archive_export(ctx, "t1")
                said = "ok"
            except BaseException as exc:
                said = f"{type(exc).__name__}: {exc}"
        finally:
            sys.setprofile(None)
            result.write_text(said)
            os._exit(0)
    _, status = os.waitpid(pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status)
    assert len(archive.part_files(folder)) == 1
    cleaned: list[archive_leftovers.Cleaned] = []
    cleaner = threading.Thread(target=lambda: cleaned.append(archive_leftovers.clean(ops, "t1")))
    cleaner.start()
    cleaner.join(1.0)  # it waits for the writer's turn (or, before, deleted the part)
    assert len(archive.part_files(folder)) == 1, "the cleaner deleted a live export's part"
    os.kill(pid, signal.SIGCONT)
    os.waitpid(pid, 0)
    cleaner.join(60)
    assert result.read_text() == "ok"
    assert cleaned and cleaned[0].deleted == ()
    assert len(archive.exports(ops, "t1")) == 1
    assert archive.part_files(folder) == []


def test_two_cleans_record_an_unrecorded_export_once(ops: OpsContext) -> None:
    ready_tse(ops, "t1", "K1")
    written = archive.write_export_file(ops, "t1")
    archive.release(written.path)  # what a process killed while verifying leaves
    other = OpsContext.open(ops.data_dir, clock=ops.clock)
    try:
        seen_by_a = archive_leftovers.find(ops, "t1")  # admin A's clean lists it
        assert [item.path for item in seen_by_a] == [written.path]
        by_b = archive_leftovers.clean(other, "t1")  # admin B's clean records it
        assert len(by_b.recorded) == 1
        by_a = [archive_leftovers._record(ops, item, "a") for item in seen_by_a]  # A goes on
    finally:
        other.close()
    assert by_a == [None]  # nothing recorded, nothing kept as a problem
    assert len(archive.exports(ops, "t1")) == 1
