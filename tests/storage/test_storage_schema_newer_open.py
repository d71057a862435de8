"""The SQLite store refuses, at its open, a database a newer opentse migrated
(E_SCHEMA_NEWER naming both schema versions and the way out). Before, only
PostgreSQL's store and ``opentse migrate`` refused it: ``opentse serve`` started on it
and stopped writing at its first heartbeat, and every other command (the register's
embedded TSE, ``tse``, ``apikey``) worked on with its older rules. Run through the real
``opentse`` console script, as the shop's IT person would."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from opentse.errors import StorageError
from opentse.installation import Installation
from opentse.storage.nodes import schema_level
from opentse.storage.sqlite import SQLiteStore

OPENTSE = str(Path(sys.executable).parent / "opentse")


def _run(*args: str, allow: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENTSE_ALLOW_NEWER_SCHEMA"}
    env.pop("OPENTSE_DATABASE", None)
    env.pop("OPENTSE_DATABASE_URL", None)
    if allow:
        env["OPENTSE_ALLOW_NEWER_SCHEMA"] = "1"
    return subprocess.run(
        [OPENTSE, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def _migrated_by_a_newer_version(data: Path) -> int:
    """An installation whose database got a migration this code does not ship."""
    with Installation.open(data):
        pass
    future = schema_level() + 7
    with sqlite3.connect(data / "opentse.db", isolation_level=None) as lite:
        lite.execute(
            "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, 'later', 0)",
            (future,),
        )
    return future


def _assert_refused(result: subprocess.CompletedProcess[str], future: int) -> None:
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out, out
    assert "error E_SCHEMA_NEWER" in out, out
    flat = " ".join(out.split())  # rich may fold the line
    assert f"{future:04d}" in flat and f"{schema_level():04d}" in flat, flat
    assert "OPENTSE_ALLOW_NEWER_SCHEMA=1" in flat and "docs/upgrading.md" in flat, flat


def test_the_store_itself_refuses_a_newer_schema(tmp_path: Path) -> None:
    future = _migrated_by_a_newer_version(tmp_path / "data")
    with pytest.raises(StorageError) as caught:
        SQLiteStore(tmp_path / "data" / "opentse.db")
    assert caught.value.code == "E_SCHEMA_NEWER"
    assert f"{future:04d}" in caught.value.message
    assert f"knows up to {schema_level():04d}" in caught.value.message


def test_every_entry_point_names_the_newer_schema(tmp_path: Path) -> None:
    data = tmp_path / "data"
    future = _migrated_by_a_newer_version(data)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    # serve started on it before (and answered every write 503 from its first heartbeat)
    _assert_refused(_run("serve", "--data", str(data), "--port", port, timeout=40), future)
    _assert_refused(_run("tse", "list", "--data", str(data)), future)
    _assert_refused(_run("apikey", "list", "--data", str(data)), future)
    _assert_refused(_run("migrate", "--data", str(data)), future)
    # the register's embedded TSE: nothing booked on the old rules
    sale = _run("pos", "sell", "--data", str(data), "--tss", "t1", "--client", "K1",
                "--line", "Brot:1:2.50:1", "--pay", "bar:2.50")  # fmt: skip
    _assert_refused(sale, future)
    assert not (data / "pos").exists() or not any((data / "pos").iterdir())
    # a rollback on purpose opens it
    allowed = _run("tse", "list", "--data", str(data), "--json", allow=True)
    assert allowed.returncode == 0, allowed.stderr


def test_an_old_database_is_made_owner_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A database made before 0600 was the rule (or copied in with cp) stayed 0644,
    WAL and shared memory too, through every upgrade; the store tightens what it owns
    and says so once."""
    path = tmp_path / "opentse.db"
    SQLiteStore(path).close()
    lite = sqlite3.connect(path)  # a reader kept open: -wal and -shm stay
    lite.execute("SELECT 1 FROM schema_migrations").fetchall()
    for name in ("opentse.db", "opentse.db-wal", "opentse.db-shm"):
        os.chmod(tmp_path / name, 0o644)
    try:
        with caplog.at_level("WARNING", "opentse.storage"):
            SQLiteStore(path).close()
            modes = {
                n: oct((tmp_path / n).stat().st_mode & 0o777)
                for n in ("opentse.db", "opentse.db-wal", "opentse.db-shm")
            }
            SQLiteStore(path).close()  # nothing left to say
    finally:
        lite.close()
    assert set(modes.values()) == {oct(0o600)}, modes
    lines = [r.getMessage() for r in caplog.records if "owner only" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "opentse.db 0644" in lines[0] and "opentse.db-wal 0644" in lines[0], lines


def test_migrate_makes_a_new_database_owner_only(tmp_path: Path) -> None:
    """`opentse migrate` opened the file with plain sqlite3: a new database was 0644."""
    old = os.umask(0o022)
    try:
        result = _run("migrate", "--data", str(tmp_path / "data"))
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    mode = (tmp_path / "data" / "opentse.db").stat().st_mode & 0o777
    assert mode == 0o600, oct(mode)
