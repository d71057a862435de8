"""What a killed archive export leaves is found, listed and cleaned.

Before: a process killed while writing left ``.<name>.tar.part`` (deleted only by
its own ``except``, which SIGKILL never runs), and one killed after the rename
(while the verifier read the file) left a whole ``.tar`` that was never recorded.
``archive list`` showed neither, nothing cleaned them, and whoever copied the
archive folder for its ten years kept them beside the archived exports. The kills
are real: forked processes SIGKILLed inside the export; a writer that is alive
(SIGSTOPped inside the export) must be left alone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

from conftest import START, ready_tse, sell
from opentse.formats.tar import TarWriter
from opentse.ops import archive, archive_leftovers, protocol
from opentse.ops.store import OpsContext
from opentse.testing.clock import FrozenClock

OPENTSE = str(Path(sys.executable).parent / "opentse")


def _on(code: CodeType, event: str, nth: int, sig: int) -> Callable[[FrameType, str, Any], None]:
    seen = 0

    def hook(frame: FrameType, ev: str, arg: Any) -> None:
        nonlocal seen
        if ev == event and frame.f_code is code:
            seen += 1
            if seen == nth:
                os.kill(os.getpid(), sig)

    return hook


def _fork_export(data_dir: Path, hook: Callable[[FrameType, str, Any], None], at: int) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 3
        try:
            ctx = OpsContext.open(data_dir, clock=FrozenClock(at))
            sys.setprofile(hook)
            archive.archive_export(ctx, "t")
            sys.setprofile(None)
            code = 0
        finally:
            os._exit(code)
    return pid


def _killed(data_dir: Path, hook: Callable[[FrameType, str, Any], None], at: int) -> None:
    _, status = os.waitpid(_fork_export(data_dir, hook, at), 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [OPENTSE, "archive", *args, "--data", str(data)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def _leftovers(ops: OpsContext) -> tuple[Path, Path, archive.ArchivedExport]:
    """A recorded export, then a part file and an unrecorded TAR, each left by a kill."""
    ready_tse(ops, "t", "K1")
    sell(ops, "t", "K1", 3)
    kept = archive.archive_export(ops, "t")
    verify = archive.verification_summary.__code__
    _killed(ops.data_dir, _on(verify, "call", 1, signal.SIGKILL), START + 60)
    # last: the next export deletes the part files of killed ones
    _killed(ops.data_dir, _on(TarWriter.add.__code__, "return", 2, signal.SIGKILL), START + 120)
    folder = Path(kept.path).parent
    parts = list(folder.glob(".*.tar.part"))
    tars = [p for p in folder.glob("*.tar") if p.name != Path(kept.path).name]
    assert len(parts) == 1 and len(tars) == 1, sorted(p.name for p in folder.iterdir())
    assert [e.id for e in archive.exports(ops, "t")] == [kept.id]
    return parts[0], tars[0], kept


def test_leftovers_are_listed_and_cleaned_never_a_recorded_export(ops: OpsContext) -> None:
    part, tar, kept = _leftovers(ops)
    before = Path(kept.path).read_bytes()
    found = {(x.kind, x.path) for x in archive_leftovers.find(ops)}
    assert found == {("part", part), ("unrecorded", tar)}

    listed = _cli(ops.data_dir, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [x["id"] for x in json.loads(listed.stdout)] == [kept.id]
    assert "2 file(s) in the archive folder are no archived export" in listed.stderr
    shown = _cli(ops.data_dir, "leftovers", "--json")
    assert shown.returncode == 1, shown.stderr
    assert {(x["kind"], x["file"]) for x in json.loads(shown.stdout)["leftovers"]} == {
        ("part", str(part)),
        ("unrecorded", str(tar)),
    }
    assert part.exists() and tar.exists()  # listing deletes nothing

    cleaned = _cli(ops.data_dir, "leftovers", "--clean")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert f"deleted {part}" in cleaned.stdout and f"recorded {tar}" in cleaned.stdout
    assert not part.exists() and tar.exists()
    items = {Path(i.path): i for i in archive.exports(ops, "t")}
    assert set(items) == {Path(kept.path), tar}
    assert items[tar].verified_ok and archive.check_integrity(items[tar])
    assert items[tar].records > 0 and items[tar].last_counter is not None
    assert Path(kept.path).read_bytes() == before and archive.check_integrity(kept)
    entry = protocol.entries(ops.db, tse_id="t", kinds=(protocol.EXPORT_ARCHIVED,))[-1]
    assert entry.details["recovered"] is True and entry.details["sha256"] == items[tar].sha256
    again = _cli(ops.data_dir, "leftovers")
    assert again.returncode == 0 and "no leftovers" in again.stdout
    assert "no archived export" not in _cli(ops.data_dir, "list").stderr


def test_a_cut_off_tar_is_kept_unrecorded_and_named(ops: OpsContext) -> None:
    """A TAR that does not verify (an older version wrote exports under the final
    name, so a kill left them cut off) is neither recorded nor deleted."""
    ready_tse(ops, "t", "K1")
    sell(ops, "t", "K1", 2)
    kept = archive.archive_export(ops, "t")
    cut = Path(kept.path).with_name("20251009T000000Z_0badc0de.tar")
    cut.write_bytes(Path(kept.path).read_bytes()[:1536])
    done = archive_leftovers.clean(ops)
    assert done.recorded == () and done.deleted == ()
    assert [(x.path, x.kind) for x, _ in done.kept] == [(cut, "unrecorded")]
    assert cut.exists() and [i.id for i in archive.exports(ops, "t")] == [kept.id]
    res = _cli(ops.data_dir, "leftovers", "t", "--clean")
    assert res.returncode == 1 and f"kept {cut}, not recorded" in res.stdout


def test_a_live_writer_is_left_alone_and_the_next_export_drops_stale_parts(
    ops: OpsContext,
) -> None:
    ready_tse(ops, "t", "K1")
    sell(ops, "t", "K1", 3)
    pid = _fork_export(
        ops.data_dir, _on(TarWriter.add.__code__, "return", 2, signal.SIGSTOP), START + 60
    )
    try:
        _, status = os.waitpid(pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), status
        folder = ops.data_dir / "archive" / "t"
        (live,) = folder.glob(".*.tar.part")
        assert archive_leftovers.find(ops) == []
        assert archive_leftovers.clean(ops).deleted == ()
        assert archive.remove_stale_parts(folder) == [] and live.exists()
    finally:
        os.kill(pid, signal.SIGCONT)
        _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    (done,) = archive.exports(ops, "t")
    assert done.verified_ok and not live.exists()

    stale = folder / ".20251009T000200Z_deadbeef.tar.part"  # as a killed writer left it
    shutil.copyfile(done.path, stale)
    assert [x.path for x in archive_leftovers.find(ops)] == [stale]
    archive.archive_export(ops, "t")
    assert not stale.exists() and archive_leftovers.find(ops) == []
