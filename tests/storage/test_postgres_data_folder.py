"""A data folder of a PostgreSQL installation used without ``--database``.

Its folder holds the secret and ``ca.json`` but no ``opentse.db``. A command run
without ``--database`` / ``OPENTSE_DATABASE`` (a cron job whose environment lacks
it) used to create an empty SQLite database there and answer from it: ``tse status
--announce`` printed no warning, ``archive remind`` said all was well, exit code 0.
Now it stops with E_DATABASE_MISSING and leaves the folder as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app

pytestmark = pytest.mark.postgres

runner = CliRunner()
APP = build_app()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(APP, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture(autouse=True)
def _no_database_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENTSE_DATABASE", "OPENTSE_DATABASE_URL", "OPENTSE_SECRET_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    "command",
    [
        ("tse", "status", "--announce"),
        ("archive", "remind"),
        ("site", "list", "--json"),
        ("apikey", "create", "--org", "shop-chain", "--json"),
        ("migrate",),
    ],
)
def test_a_postgresql_data_folder_without_database_is_refused(
    pg_url: str, tmp_path: Path, command: tuple[str, ...]
) -> None:
    data = tmp_path / "data"
    code, out = invoke("apikey", "create", "--org", "shop-chain", "--json",
                       "--data", str(data), "--database", pg_url)  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["api_key"]
    before = sorted(p.name for p in data.iterdir())

    code, out = invoke(*command, "--data", str(data))
    assert code != 0, out
    assert "E_DATABASE_MISSING" in out
    assert "OPENTSE_DATABASE" in out
    assert sorted(p.name for p in data.iterdir()) == before  # no empty opentse.db

    code, out = invoke("site", "list", "--json", "--data", str(data), "--database", pg_url)
    assert code == 0, out


def test_a_sqlite_folder_that_lost_its_database_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out = invoke("tse", "create", "t1", "--json", "--data", str(data))
    assert code == 0, out
    code, out = invoke("tse", "status", "--json", "--data", str(data))
    assert code == 0 and json.loads(out)["tses"][0]["tse_id"] == "t1", out
    for name in ("opentse.db", "opentse.db-wal", "opentse.db-shm"):
        (data / name).unlink(missing_ok=True)
    code, out = invoke("tse", "status", "--data", str(data))
    assert code != 0 and "E_DATABASE_MISSING" in out, out
    assert not (data / "opentse.db").exists()


def test_a_folder_without_ca_json_on_a_set_up_database_keeps_no_new_ca(
    pg_url: str, tmp_path: Path
) -> None:
    """Restoring a data folder with the secret but not ``ca.json``: refused, with a
    message that names ca.json, and no new CA left where the backup belongs."""
    first = tmp_path / "first"
    code, out = invoke("apikey", "create", "--org", "o", "--json",
                       "--data", str(first), "--database", pg_url)  # fmt: skip
    assert code == 0, out
    restored = tmp_path / "restored"
    restored.mkdir(mode=0o700)
    secret = (first / "installation.key").read_bytes()
    (restored / "installation.key").write_bytes(secret)
    (restored / "installation.key").chmod(0o600)
    code, out = invoke("site", "list", "--json", "--data", str(restored), "--database", pg_url)
    assert code != 0, out
    assert "E_INSTALLATION_MISMATCH" in out and "ca.json" in out
    assert not (restored / "ca.json").exists()
    (restored / "ca.json").write_bytes((first / "ca.json").read_bytes())
    code, out = invoke("site", "list", "--json", "--data", str(restored), "--database", pg_url)
    assert code == 0, out
