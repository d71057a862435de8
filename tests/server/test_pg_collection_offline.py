"""Collecting the PostgreSQL test modules never connects to a database.

Five modules looked the server up at import time (``_SERVER = server_url(...)``):
every ``pytest`` run, even ``-k`` of one SQLite test or ``--collect-only``, opened a
connection per module (3 s each where nothing answers). They take the session
fixture ``pg_server`` (tests/conftest.py) now, looked up when a PostgreSQL test runs.
Observed, not timed: a listener stands in for the database and must see no
connection while the modules are collected.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_collecting_the_postgresql_modules_opens_no_connection() -> None:
    # the folder the import-time lookups were in, collected as a run of it would
    storage = TESTS / "storage"
    assert any("pg_testing" in p.read_text(encoding="utf-8") for p in storage.glob("test_*.py"))
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        env = {
            **os.environ,
            "OPENTSE_TEST_DATABASE": f"postgresql://probe@127.0.0.1:{port}/probe",
        }
        collected = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
             "-p", "no:xdist", str(storage)],
            capture_output=True, text=True, env=env, cwd=TESTS.parent, timeout=300, check=False,
        )  # fmt: skip
        assert collected.returncode == 0, collected.stdout[-2000:] + collected.stderr[-2000:]
        listener.setblocking(False)
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return  # nobody came: collection stayed off the database
        conn.close()
        raise AssertionError("collecting the test modules connected to the database")
