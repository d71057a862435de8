"""``opentse migrate`` on both backends (PostgreSQL part skips without a server)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.storage import migrations
from opentse.storage.pg_testing import temporary_schema


def _migrate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["migrate", *args], env={"OPENTSE_DATABASE": ""})
    return result.exit_code, result.output


def test_migrate_sqlite_data_folder_then_up_to_date(tmp_path: Path) -> None:
    code, out = _migrate("--data", str(tmp_path / "d"), "--json")
    assert code == 0, out
    first = json.loads(out)
    expected = [m.version for m in migrations.load("sqlite")]
    assert first == {"dialect": "sqlite", "applied": expected, "current": expected[-1]}
    code, out = _migrate("--data", str(tmp_path / "d"))
    assert code == 0 and "up to date" in out
    with sqlite3.connect(tmp_path / "d" / "opentse.db") as conn:
        assert migrations.applied_versions(conn) == set(expected)


def test_migrate_sqlite_url_and_bad_url(tmp_path: Path) -> None:
    code, out = _migrate("--database", f"sqlite:///{tmp_path}/x.db")
    assert code == 0 and "applied" in out
    assert (tmp_path / "x.db").exists()
    code, out = _migrate("--database", "mysql://nope")
    assert code == 1 and "error E_DATABASE_URL: " in out


def test_migrate_postgresql(pg_server: str) -> None:
    expected = [m.version for m in migrations.load("postgresql")]
    with temporary_schema(pg_server) as url:
        code, out = _migrate("--database", url, "--json")
        assert code == 0, out
        # the schema version is the numbering both dialects share, not PostgreSQL's
        # own 09xx installation check (it said 0900 at every level)
        level = max(m.version for m in migrations.load("sqlite"))
        assert level < 900 and level in expected
        assert json.loads(out) == {
            "dialect": "postgresql",
            "applied": expected,
            "current": level,
        }
        code, out = _migrate("--database", url, "--json")
        assert json.loads(out)["applied"] == []
        code, out = _migrate("--database", url)
        assert code == 0 and f"schema version {level:04d}" in out, out


def test_migrate_unreachable_postgresql_fails_cleanly() -> None:
    code, out = _migrate("--database", "postgresql://nobody@127.0.0.1:1/none")
    assert code == 1 and "error E_STORAGE_UNAVAILABLE: " in out
