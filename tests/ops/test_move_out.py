"""The data folder left on the old host after a move is retired with ``tse move-out``
and refused from then on, so it cannot sign as the same TSEs as its copy.

Before: nothing stopped the old folder (a service restarted at boot, a command run
there by habit) from signing as the moved TSEs, with counters diverging from the copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from opentse.cli.main import build_app

runner = CliRunner()
APP = build_app()
OPENTSE = str(Path(sys.executable).parent / "opentse")


def _run(data: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(APP, [*args, "--data", str(data)], catch_exceptions=False)
    return result.exit_code, " ".join(result.output.split())


def test_move_out_retires_the_old_folder_and_the_copy_signs_on(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    code, out = _run(old, "tse", "create", "t1", "--json")
    assert code == 0, out
    shutil.copytree(old, new)  # step 1: the copy for the new host

    code, out = _run(old, "tse", "move-out", "--to", "10.0.0.7", "--json")
    assert code == 0, out
    marker = Path(json.loads(out)["marker"])
    assert marker == (old / "MOVED-AWAY.txt").absolute()
    assert "10.0.0.7" in marker.read_text(encoding="utf-8")
    # migrate too (it ran on a retired folder and said 'up to date'; the docs say
    # every opentse command refuses it)
    for args in (("tse", "list"), ("tse", "create", "t2"), ("tse", "status"), ("migrate",)):
        code, out = _run(old, *args)
        assert code == 1 and "E_DATA_MOVED" in out and str(marker) in out, (args, out)
    # also with the database named by URL (it skipped the check then)
    url = f"sqlite:///{old.absolute() / 'opentse.db'}"
    named = subprocess.run(
        [OPENTSE, "migrate", "--data", str(old)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "OPENTSE_DATABASE_URL": url},
    )  # fmt: skip
    assert named.returncode == 1 and "E_DATA_MOVED" in named.stderr, named.stdout + named.stderr
    served = subprocess.run(
        [OPENTSE, "serve", "--data", str(old), "--port", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert served.returncode == 1 and "E_DATA_MOVED" in served.stderr, served.stderr

    code, out = _run(new, "tse", "list", "--json")  # the copy is not affected
    assert code == 0 and "t1" in out
    assert not (new / "MOVED-AWAY.txt").exists()

    marker.unlink()  # the move undone: the folder works again, its record of it stays
    code, out = _run(old, "tse", "protocol", "--json")
    assert code == 0, out
    [entry] = [e for e in json.loads(out) if e["kind"] == "move.moved_out"]
    assert entry["details"] == {"to": "10.0.0.7", "tses": ["t1"]}


def test_move_out_of_a_postgresql_node_says_why_not(tmp_path: Path) -> None:
    """It said the folder held no installation; on PostgreSQL the copies share one
    database, so there is nothing to retire (stop the node)."""
    data = tmp_path / "node"
    code, out = _run(data, "tse", "create", "t1")
    assert code == 0, out
    result = runner.invoke(
        APP, ["tse", "move-out", "--to", "10.0.0.7", "--data", str(data)],
        env={"OPENTSE_DATABASE": "postgresql://nobody@127.0.0.1:1/none"},
    )  # fmt: skip
    out = " ".join(result.output.split())
    assert result.exit_code == 1 and "E_DATA_DIR" in out and "PostgreSQL" in out, out
    assert not (data / "MOVED-AWAY.txt").exists()
