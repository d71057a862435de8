"""An archive export that is killed while it writes leaves no cut-off TAR among the
archived exports. The file was written under its final name
(``archive/<tse>/<time>_<id>.tar``) and recorded only afterwards, so a kill (or a
power cut, the file never synced) left a truncated TAR beside the genuine ones that
``archive list`` did not know: whoever copies the archive folder for its ten years
keeps it as an export. The kill is real: a forked process is SIGKILLed inside the
export, after the TAR writer has taken its second member."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from conftest import START, ready_tse, sell
from opentse.formats.tar import TarWriter
from opentse.ops import archive
from opentse.ops.store import OpsContext
from opentse.testing.clock import FrozenClock


def _kill_after_second_member() -> Callable[[FrameType, str, Any], None]:
    seen = 0

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal seen
        if event == "return" and frame.f_code is TarWriter.add.__code__:
            seen += 1
            if seen == 2:
                os.kill(os.getpid(), signal.SIGKILL)

    return hook


def _archive_killed(data_dir: Path) -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            ctx = OpsContext.open(data_dir, clock=FrozenClock(START + 60))
            sys.setprofile(_kill_after_second_member())
            archive.archive_export(ctx, "t")
        finally:
            os._exit(3)  # not killed: the export never took a second member
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


def test_killed_archive_export_leaves_no_tar_and_a_rerun_archives(ops: OpsContext) -> None:
    ready_tse(ops, "t", "K1")
    sell(ops, "t", "K1", 3)
    _archive_killed(ops.data_dir)
    folder = ops.data_dir / "archive" / "t"
    assert list(folder.glob("*.tar")) == [], sorted(p.name for p in folder.iterdir())
    assert archive.exports(ops, "t") == []
    done = archive.archive_export(ops, "t")
    assert done.verified_ok and archive.check_integrity(done)
    assert [p.name for p in folder.glob("*.tar")] == [Path(done.path).name]


def test_archived_export_is_synced_before_it_is_recorded(
    ops: OpsContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorded as archived, the stored logs may be released and deleted: the file
    must be on the disk by then (its data and its name in the folder), not only in
    the page cache a power cut loses."""
    ready_tse(ops, "t", "K1")
    sell(ops, "t", "K1")
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # a spy on the OS call: which file or folder was synced
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    file = archive.write_export_file(ops, "t")
    folder = str(file.path.parent.resolve())
    assert folder in synced, synced
    data = [s for s in synced if s.startswith(folder + "/")]
    assert data and data[0].endswith(f"{file.path.name}.part"), synced  # then renamed
    assert synced.index(folder) > synced.index(data[0])
    assert archive.exports(ops, "t") == []  # nothing recorded yet: synced first
