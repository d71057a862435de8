"""``pos setup --out FILE`` wrote over any existing file: a second till set up with
the first till's file name lost that till's TSS, client and the ``Journal:`` line
pos repoint wrote (the first till then signed at another client with new books).
Now another till's file (or any other file) is refused before anything is set up,
naming --force; the till's own file is rewritten by a run again and keeps its
Journal line."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.register.till_file import parse, render
from opentse.testing.serving import serve_process

ENV = {k: v for k, v in os.environ.items() if not k.startswith("OPENTSE_")}


def _run(home: Path, *args: str) -> tuple[int, str]:
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("OPENTSE_")}
    result = CliRunner().invoke(build_app(), list(args), env={**unset, "HOME": str(home)})
    return result.exit_code, result.stdout + result.stderr


@pytest.fixture(autouse=True)
def _in_a_folder_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # pos setup keeps a PUK file in the current folder


def test_setup_keeps_another_tills_file(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    code, out = _run(home, "apikey", "create", "--data", str(data), "--json")
    key: dict[str, Any] = json.loads(out)
    till = tmp_path / "kasse.txt"
    with serve_process(data, env=ENV) as base:
        where = ["--url", base, "--api-key", key["api_key"], "--api-secret", key["api_secret"]]
        code, out = _run(home, "pos", "setup", *where, "--serial", "KASSE-1", "--out", str(till))
        assert code == 0, out
        first = parse(till.read_text())
        moved = render(replace(first, journal=str(tmp_path / "k1.db")))
        till.write_text(moved)  # as pos repoint leaves it
        till.chmod(0o600)

        code, out = _run(home, "pos", "setup", *where, "--serial", "KASSE-2", "--out", str(till))
        said = " ".join(out.split())
        assert code == 1 and "E_POS_OUTPUT_EXISTS" in said and "--force" in said, out
        assert "the till file of KASSE-1" in said and "Nothing was set up" in said
        assert till.read_text() == moved
        code, out = _run(home, "pos", "setup", *where, "--serial", "KASSE-2", "--json")
        assert code == 0 and json.loads(out)["status"] == "created", out  # not made before

        # the same till again: its own file, rewritten as it was (the Journal line kept)
        code, out = _run(home, "pos", "setup", *where, "--serial", "KASSE-1", "--out", str(till),
                         "--json")  # fmt: skip
        assert code == 0 and json.loads(out)["status"] == "exists", out
        assert parse(till.read_text()).journal == str(tmp_path / "k1.db")

        other = tmp_path / "notes.txt"
        other.write_text("Einkaufsliste\n")
        code, out = _run(home, "pos", "setup", *where, "--serial", "KASSE-2", "--out", str(other))
        assert code == 1 and "not a till file" in " ".join(out.split()), out
        assert other.read_text() == "Einkaufsliste\n"

        code, out = _run(home, "pos", "setup", *where, "--serial", "KASSE-2", "--out", str(till),
                         "--force", "--json")  # fmt: skip
        assert code == 0, out
        replaced = parse(till.read_text())
        assert replaced.serial_number == "KASSE-2" and replaced.journal is None
