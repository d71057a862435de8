"""An archive export is on the disk before the TSE records it as exported.

The exportData log of an unfiltered export sets ``exported_up_to``, after which
``tse delete-stored-data`` drops every log the export holds. It was signed while the
TAR was still a part file in the page cache: a kill there (or a Ctrl-C during the
fsync, whose handler removed the part file) left logs that are in no file and may be
deleted. Now the log is signed after the fsync, the rename and the folder's fsync."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from conftest import PIN, START, ready_tse, sell
from opentse.errors import OpenTSEError
from opentse.ops import archive
from opentse.ops.store import OpsContext
from opentse.testing.clock import FrozenClock


def _nothing_deletable(ctx: OpsContext, logs: int) -> None:
    assert ctx.service.get("t").state.exported_up_to == 0
    ctx.service.authenticate("t", PIN)
    with pytest.raises(OpenTSEError):
        ctx.service.delete_stored_data("t")
    assert ctx.store.count_logs("t") >= logs


def test_a_kill_before_the_file_is_synced_leaves_nothing_deletable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ctx = OpsContext.open(data, clock=FrozenClock(START))
    ready_tse(ctx, "t", "K1")
    sell(ctx, "t", "K1", 3)
    logs = ctx.store.count_logs("t")
    ctx.close()
    pid = os.fork()
    if pid == 0:  # the export, killed at its first fsync: the TAR is written, not synced
        try:
            child = OpsContext.open(data, clock=FrozenClock(START + 60))

            def killed(fd: int) -> None:
                os.kill(os.getpid(), signal.SIGKILL)

            os.fsync = killed  # type: ignore[assignment]
            archive.archive_export(child, "t")
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    ctx = OpsContext.open(data, clock=FrozenClock(START + 120))
    try:
        assert archive.exports(ctx, "t") == []
        _nothing_deletable(ctx, logs)
    finally:
        ctx.close()


def test_a_ctrl_c_during_the_fsync_leaves_nothing_deletable(
    ops: OpsContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready_tse(ops, "t", "K1")
    sell(ops, "t", "K1", 3)
    logs = ops.store.count_logs("t")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt  # the operator's Ctrl-C while a large TAR is synced

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        archive.archive_export(ops, "t")
    monkeypatch.undo()
    left = [p.name for p in (ops.data_dir / "archive" / "t").iterdir()]
    assert left in ([], [archive.FOLDER_LOCK]), left  # no TAR, no part file
    _nothing_deletable(ops, logs)


def test_a_finished_archive_export_still_records_the_export(ops: OpsContext) -> None:
    ready_tse(ops, "t", "K1")
    sell(ops, "t", "K1", 3)
    archive.archive_export(ops, "t")
    (item,) = archive.exports(ops, "t")
    state = ops.service.get("t").state
    assert state.exported_up_to == item.last_counter and item.last_counter
    last = ops.store.get_log("t", state.signature_counter)
    assert last is not None and last.operation == "exportData"
