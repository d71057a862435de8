"""A SQLite data folder restored without ``ca.json`` is refused, not given a new CA.

Before: the folder silently got a new local CA, and every TSE created afterwards had
a certificate chaining to another root than the TSEs (and exports) made before.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from opentse.cli.main import build_app

runner = CliRunner()
APP = build_app()


def _run(data: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(APP, [*args, "--data", str(data)], catch_exceptions=False)
    return result.exit_code, result.output


def test_restored_without_ca_json_is_refused_until_it_is_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out = _run(data, "tse", "create", "t1", "--json")
    assert code == 0, out
    before = json.loads(_run(data, "tse", "list", "--json")[1])
    backup = tmp_path / "backup"
    shutil.copytree(data, backup)

    (data / "ca.json").unlink()  # restored with the database and the secret only
    for args in (("tse", "list"), ("tse", "create", "t2"), ("tse", "status")):
        code, out = _run(data, *args)
        assert code == 1, (args, out)
        assert "E_CA_MISSING" in out and "restore ca.json from your backup" in " ".join(out.split())
        assert not (data / "ca.json").exists()  # no stand-in CA left where it belongs
    shutil.copy(backup / "ca.json", data / "ca.json")
    code, out = _run(data, "tse", "create", "t2", "--json")
    assert code == 0, out
    assert json.loads(_run(data, "tse", "list", "--json")[1])[0] == before[0]

    # the database alone: neither a new secret nor a new CA is left behind
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(backup / "opentse.db", alone / "opentse.db")
    code, out = _run(alone, "tse", "list")
    assert code == 1 and "E_CA_MISSING" in out
    assert "ca.json and installation.key" in " ".join(out.split())
    assert sorted(p.name for p in alone.iterdir()) == ["opentse.db"]


def test_a_new_empty_folder_still_gets_its_ca(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    code, out = _run(data, "tse", "list", "--json")
    assert code == 0, out
    assert (data / "ca.json").exists() and (data / "installation.key").exists()
