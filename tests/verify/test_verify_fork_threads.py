"""``opentse verify`` with its progress bar forks its worker process while no other
thread runs: a fork in a multi-threaded process may deadlock the child (a lock
held by another thread at the fork stays held in the child forever; Python 3.12+
warns). Before: rich's refresh thread was running when the verifier forked. A
caller running threads of its own gets worker threads instead of a fork."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner
from verify_data import with_global_header

from opentse.cli.main import build_app
from opentse.verify import forked
from opentse.verify.logcheck import CHUNK
from opentse.verify.report import verify_exports
from opentse.verify.synthetic import build_export

pytestmark = pytest.mark.skipif(not forked.available(), reason="forks only on Linux")

# these tests need a process in which no other thread runs; a test worker that ran
# other tests before may hold their leftover daemon threads (a server's export
# worker, a test's socket thread), so each runs in a pytest process of its own
_CHILD = "OPENTSE_FORK_TEST_CHILD"


def _in_own_process(request: pytest.FixtureRequest) -> bool:
    """True in the child; in the worker: run this test in a new pytest process,
    assert it passed, and return False (the caller returns)."""
    if os.environ.get(_CHILD) == "1":
        return True
    node = f"{Path(__file__)}::{request.node.name}"
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:randomly",
         "-p", "no:cacheprovider", node],
        capture_output=True, text=True, timeout=600, env={**os.environ, _CHILD: "1"},
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "1 passed" in out.stdout, out.stdout[-2000:]
    return False


# threads alive at each fork while _RECORDING is set (a hook cannot be unregistered:
# it records nothing otherwise)
_FORKS: list[list[str]] = []
_RECORDING = threading.Event()


def _before_fork() -> None:
    if _RECORDING.is_set():
        _FORKS.append([thread.name for thread in threading.enumerate()])


if forked.available():
    os.register_at_fork(before=_before_fork)


def _cli_forks(path: Path) -> list[list[str]]:
    """``opentse verify --workers 2`` with its progress bar: the threads alive at
    each fork."""
    assert path.stat().st_size > 2 * 1024 * 1024  # the CLI shows its bar above 2 MB
    assert threading.active_count() == 1, threading.enumerate()
    _FORKS.clear()
    _RECORDING.set()
    try:
        result = CliRunner().invoke(build_app(), ["verify", "--workers", "2", str(path)])
    finally:
        _RECORDING.clear()
    assert result.exit_code == 0, result.output
    assert "verifying logs" in result.stderr  # the bar was shown
    assert "OK: no errors" in result.stdout
    assert threading.active_count() == 1, threading.enumerate()
    return list(_FORKS)


def test_no_other_thread_runs_at_the_fork(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if not _in_own_process(request):
        return
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: stderr is a terminal
    path = tmp_path / "e.tar"
    build_export(path, 2500)
    assert _cli_forks(path) == [["MainThread"]]  # one fork (two workers), no other thread
    # the scan refuses a member after handing out batches: the run starts over with
    # a second fork, the bar still on the screen
    odd = tmp_path / "odd.tar"
    odd.write_bytes(with_global_header(path, 3 * CHUNK))
    assert _cli_forks(odd) == [["MainThread"], ["MainThread"]]


def test_a_caller_with_threads_gets_worker_threads(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Called while a thread of the caller runs (a server, an application), the
    verifier does not fork: worker threads, the same report."""
    if not _in_own_process(request):
        return
    path = tmp_path / "e.tar"
    build_export(path, 2 * CHUNK + 10)
    expected = verify_exports([path], workers=1).to_json()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, name="the caller's")
    other.start()
    _FORKS.clear()
    _RECORDING.set()
    try:
        report = verify_exports([path], workers=2).to_json()
    finally:
        _RECORDING.clear()
        stop.set()
        other.join()
    assert _FORKS == []
    assert report == expected and report["valid_signatures"] == 2 * CHUNK + 10
    _RECORDING.set()
    try:  # alone again: forked
        assert verify_exports([path], workers=2).to_json() == expected
    finally:
        _RECORDING.clear()
    assert _FORKS == [["MainThread"]]
