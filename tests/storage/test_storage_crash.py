"""Crash test: SIGKILL writer processes at random moments, then check the promise.

"A signature is returned only after its log message is durably stored; counters
never skip or repeat, across crashes, restarts and concurrent clients." The child
(storage_crash_writer.py) prints a counter only after run_locked returned, so every
printed counter must be stored; the stored counters must be exactly 1..N; the state
must agree with the logs. Some rounds run two writer processes on the same file.
SIGKILL tests process crashes, not power loss (that is synchronous=FULL's job).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from opentse.storage.sqlite import SQLiteStore

CHILD = Path(__file__).with_name("storage_crash_writer.py")
TSE = "crash"


class _Writer:
    """One child process and a thread collecting what it printed."""

    def __init__(self, db: Path, threads: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(db), str(threads)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if raw.endswith(b"\n"):  # a line cut by the kill is not a claim
                line = raw.decode().strip()
                if line == "READY":
                    self.ready.set()
                else:
                    self.lines.append(line)

    def kill(self) -> tuple[list[int], bytes]:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        assert self.proc.stderr is not None
        errors = self.proc.stderr.read()
        self.proc.stdout.close()  # type: ignore[union-attr]
        self.proc.stderr.close()
        return [int(line) for line in self.lines], errors


@pytest.mark.timeout(60)
def test_sigkill_never_loses_skips_or_repeats_a_counter(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    printed: list[int] = []
    started = time.monotonic()
    rounds = 0
    while rounds < 5 or (rounds < 12 and time.monotonic() - started < 10):
        writers = [_Writer(db, threads=4) for _ in range(2 if rounds % 2 else 1)]
        if rounds == 0:
            time.sleep(rng.uniform(0.0, 0.3))  # maybe while opening / migrating
        else:
            for writer in writers:
                assert writer.ready.wait(15), writer.kill()[1].decode()
            time.sleep(rng.uniform(0.05, 0.6))
        for writer in writers:
            counters, errors = writer.kill()
            assert writer.proc.returncode == -signal.SIGKILL, errors.decode()
            assert b"Traceback" not in errors, errors.decode()  # no worker thread died
            printed.extend(counters)
            time.sleep(rng.uniform(0.0, 0.1))
        rounds += 1

    assert len(printed) > 0, "the writers never committed anything"
    assert len(printed) == len(set(printed)), "a counter was handed out twice"

    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    raw.close()
    with SQLiteStore(db) as store:
        logs = list(store.iter_logs(TSE))
        stored = [log.signature_counter for log in logs]
        assert stored == list(range(1, len(stored) + 1)), "gap or repeat in stored counters"
        missing = set(printed) - set(stored)
        assert not missing, f"returned but not stored: {sorted(missing)[:10]}"
        state = store.get_state(TSE)
        assert state.signature_counter == len(stored)
        calls = {log.ref.rsplit(":", 1)[0] for log in logs if log.ref}
        assert state.transaction_counter == len(calls)  # state and logs committed together
        assert state.version == len(calls)
        print(f"rounds={rounds} printed={len(printed)} stored={len(stored)} calls={len(calls)}")
