"""An export that shrinks, grows or fails while the verifier reads it is an error with
a code (``E_EXPORT_READ``, CLI exit status 2), never SIGBUS.

The memory-mapped reader died with SIGBUS (exit status -7, no message) when the file
was truncated under it. Each case runs the verifier in a child process, so that a
SIGBUS shows as that process's exit status instead of killing the test run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from verify_data import unreaped_children

from opentse.verify.archive import UnreadableExportError, load_exports
from opentse.verify.logcheck import CHUNK
from opentse.verify.synthetic import build_export
from opentse.verify.tarscan import WINDOW

READ_FAILED = "E_EXPORT_READ"
NOT_TAR = "E_EXPORT_UNREADABLE"
LOGS = 6 * CHUNK

# load_exports on argv[1] with one worker (signatures checked inline, so the first
# progress call comes from the reading thread after the first batch, while the rest
# of the file is still unread); that call changes the file as argv[2] says
_DRIVER = r"""
import os, sys
from pathlib import Path
from opentse.verify.archive import UnreadableExportError, load_exports

path, how = Path(sys.argv[1]), sys.argv[2]
calls = []

def progress(count):
    calls.append(count)
    if len(calls) == 1:
        if how == "grow":
            with path.open("ab") as file:
                file.write(bytes(10240))
        elif how != "none":
            os.truncate(path, int(how))

try:
    export = load_exports([path], workers=1, progress=progress)
except UnreadableExportError as exc:
    print(exc.code)
    print(exc, file=sys.stderr)
    sys.exit(2)
print("OK", len(export.logs), len(calls))
"""

_CLI = "from opentse.cli.main import main; main()"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shrinking") / "e.tar"
    build_export(path, LOGS)
    return path


def _copy(export: Path, tmp_path: Path) -> Path:
    return Path(shutil.copyfile(export, tmp_path / "copy.tar"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("cut", ["half", "zero", "grow"])
def test_a_file_changed_while_read_is_an_error(export: Path, tmp_path: Path, cut: str) -> None:
    """Truncated mid-member or to nothing after the first batch, or grown: the API
    raises UnreadableExportError with E_EXPORT_READ. Before: SIGBUS for the cut to
    nothing; for the cut mid-page the mapped page's zeroed rest read as an
    end-of-archive block, and half the export verified as the whole; the growth
    went unnoticed."""
    path = _copy(export, tmp_path)
    size = path.stat().st_size
    assert size > 2 * WINDOW  # the first read window holds the first batch, not the rest
    how = {"half": str(size // 2 + 100), "zero": "0", "grow": "grow"}[cut]
    result = _run(_DRIVER, str(path), how)
    assert result.returncode != -signal.SIGBUS, "the verifier died of SIGBUS"
    assert (result.returncode, result.stdout.strip()) == (2, READ_FAILED), result
    assert "changed while it was read" in result.stderr


def test_the_driver_sees_an_unchanged_file_through(export: Path, tmp_path: Path) -> None:
    """The same driver with a file nobody changes: a full run, so the failures above
    come from the change, not from the driver."""
    path = _copy(export, tmp_path)
    result = _run(_DRIVER, str(path), "none")
    assert result.returncode == 0, result
    assert result.stdout.split()[:2] == ["OK", str(LOGS)]


def _opened_by(pid: int, path: Path) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_cli_with_forked_workers_on_a_file_truncated_by_another_process(
    export: Path, tmp_path: Path
) -> None:
    """``opentse verify --workers 2`` (a forked child verifies): this process truncates
    the archive mid-member as soon as the verifier has it open. Exit status 2 and
    the code on stderr (before: killed by SIGBUS, status -7, nothing said).

    The export's members eight times over (24,000 logs, 24 MB), so that
    reading and decoding take far longer than noticing the open file here; a late
    truncation would still be caught by the check after the scan."""
    with tarfile.open(export) as tar:
        last = tar.getmembers()[-1]
    data = export.read_bytes()
    members = data[: last.offset_data + -(-last.size // 512) * 512]
    path = tmp_path / "repeated.tar"
    path.write_bytes(members * 8 + data[len(members) :])
    size = path.stat().st_size
    child = subprocess.Popen(
        [sys.executable, "-c", _CLI, "verify", "--workers", "2", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _opened_by(child.pid, path):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the verifier never opened the archive"
            time.sleep(0.0002)
        os.truncate(path, size // 3 // 4096 * 4096)  # at a page: the old reader's SIGBUS
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode != -signal.SIGBUS, "the verifier died of SIGBUS"
    assert child.returncode == 2, (out, err)
    assert READ_FAILED in err
    assert "changed while it was read" in " ".join(err.split())


@pytest.mark.parametrize("workers", [1, 2])
def test_a_read_error_is_an_error_with_its_code(workers: int) -> None:
    """A device that fails reading (/proc/self/mem fails with EIO at offset 0):
    E_EXPORT_READ from the API, also with a forked worker (which is gone after), and
    from the CLI (before: E_EXPORT_UNREADABLE, "not a TAR archive", after reading
    the failing file a second time)."""
    mem = Path("/proc/self/mem")
    if not mem.exists():
        pytest.skip("needs /proc/self/mem (Linux)")
    others = unreaped_children()
    with pytest.raises(UnreadableExportError) as caught:
        load_exports([mem], workers=workers)
    assert caught.value.code == READ_FAILED
    assert "reading failed" in caught.value.message
    assert unreaped_children() == others
    result = _run(_CLI, "verify", "--workers", str(workers), str(mem))
    assert result.returncode == 2, result
    assert f"{READ_FAILED}:" in result.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_a_plain_truncated_archive_keeps_its_error(
    export: Path, tmp_path: Path, workers: int
) -> None:
    """A copy cut in the middle of a member's data before the verifier starts is no
    TAR archive (the file did not change while read): E_EXPORT_UNREADABLE as before
    (tarfile: the member is truncated), exit status 2."""
    with tarfile.open(export) as tar:
        middle = tar.getmembers()[LOGS // 2]
        cut = middle.offset_data + middle.size // 2
    path = tmp_path / "cut.tar"
    path.write_bytes(export.read_bytes()[:cut])
    with pytest.raises(UnreadableExportError) as caught:
        load_exports([path], workers=workers)
    assert caught.value.code == NOT_TAR
    assert "not a readable TAR archive" in caught.value.message
    assert "truncated inside a member's data: cut short" in caught.value.message
    result = _run(_CLI, "verify", "--workers", str(workers), str(path))
    assert result.returncode == 2, result
    assert f"{NOT_TAR}:" in result.stderr


@pytest.mark.parametrize("where", ["header", "inside header", "padding", "after last member"])
def test_an_archive_cut_between_members_is_not_verified_as_complete(
    export: Path, tmp_path: Path, where: str
) -> None:
    """A copy cut where a header starts or inside one (a copy stopped at a 512-octet
    boundary lands there half the time), in a member's padding, or after the last
    member: no end-of-archive blocks, so E_EXPORT_UNREADABLE, exit status 2 (before:
    tarfile took the end of the data for the end of the archive, and the export
    verified without the logs cut off)."""
    with tarfile.open(export) as tar:
        members = tar.getmembers()
    middle = members[LOGS // 2]
    assert middle.size % 512, "the member has padding"
    cut = {
        "header": middle.offset,
        "inside header": middle.offset + 100,
        "padding": middle.offset_data + middle.size + 1,
        "after last member": members[-1].offset_data + -(-members[-1].size // 512) * 512,
    }[where]
    path = tmp_path / "cut.tar"
    path.write_bytes(export.read_bytes()[:cut])
    with pytest.raises(UnreadableExportError) as caught:
        load_exports([path], workers=1)
    assert caught.value.code == NOT_TAR
    assert "end-of-archive" in caught.value.message
    result = _run(_CLI, "verify", str(path))
    assert result.returncode == 2, result
    assert f"{NOT_TAR}:" in result.stderr


def test_a_folder_or_a_missing_file_is_no_read_error(tmp_path: Path) -> None:
    """What cannot be opened as a file keeps E_EXPORT_UNREADABLE (a folder opens on
    POSIX, and reading it would fail: that is no failing device)."""
    for path in (tmp_path, tmp_path / "absent.tar"):
        with pytest.raises(UnreadableExportError) as caught:
            load_exports([path])
        assert caught.value.code == NOT_TAR


def test_a_large_archive_cut_mid_member_is_refused_without_reading_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan knows a member's header (checked) promises more data than the file
    holds: it says so at once instead of handing the archive to the full reader,
    which reads the whole file again, into memory (10^6 logs: 1 GB), to tell the
    same. Counted: the octets the verifier reads from the file."""
    from opentse.verify import reading

    path = tmp_path / "big.tar"
    build_export(path, 12_000)
    with tarfile.open(path) as tar:
        last = tar.getmembers()[-3]
        cut = last.offset_data + last.size // 2
    with open(path, "r+b") as fh:
        fh.truncate(cut)
    assert cut > 8 * WINDOW
    read = [0]
    pread = reading._pread

    def counted(fd: int, count: int, offset: int) -> bytes:
        data = pread(fd, count, offset)
        read[0] += len(data)
        return data

    monkeypatch.setattr(reading, "_pread", counted)
    with pytest.raises(UnreadableExportError) as caught:
        load_exports([path], workers=1)
    assert caught.value.code == NOT_TAR
    assert "truncated inside a member's data" in caught.value.message
    assert cut <= read[0] < 1.2 * cut, (read[0], cut)  # once (before: twice)
