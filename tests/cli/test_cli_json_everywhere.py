"""Every command takes --json (issue 2: "every command accepts --json"), so a script
can drive any of them; ``serve`` alone runs until stopped and prints no result.
``tse outage``, ``pos daily``, ``docs procedure``, ``archive release`` and
``lan test`` did not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.installation import Installation
from opentse.testing import ready_tse

NO_RESULT = {"serve"}


def commands(group: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf command of a (Typer's) click group, by its command line."""
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if hasattr(command, "commands"):  # a group
            found.update(commands(command, path + " "))
        else:
            found[path] = command
    return found


def test_every_command_has_a_json_option() -> None:
    every = commands(typer.main.get_command(build_app()))
    assert len(every) > 40  # the walk found the tree
    missing = sorted(
        path
        for path, command in every.items()
        if path not in NO_RESULT
        and not any("--json" in getattr(p, "opts", ()) for p in command.params)
    )
    assert missing == []


def run(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(build_app(), list(args))
    assert result.exit_code == 0, result.output
    body: dict[str, object] = json.loads(result.stdout)
    return body


def test_the_new_ones_print_json(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "tse-j", client_id="KASSE-J", logout=True)
    outage = run(
        "tse", "outage", "--start", "2026-11-20T10:00:00Z", "--end", "2026-11-20T10:30:00Z",
        "--reason", "power cut", "--tse", "tse-j", "--data", str(data), "--json",
    )  # fmt: skip
    assert outage["recorded"] is True and outage["tse_id"] == "tse-j"
    assert outage["started_at"] == "2026-11-20T10:00:00+00:00"
    daily = run(
        "pos", "daily", "--data", str(data), "--tss", "tse-j", "--client", "KASSE-J",
        "--journal", str(tmp_path / "till.db"), "--json",
    )  # fmt: skip
    assert daily["status"] == "green" and daily["unsigned_receipts"] == 0
    out = tmp_path / "procedure.md"
    written = run("docs", "procedure", str(out), "--data", str(data), "--json")
    assert written == {"written": str(out), "bytes": out.stat().st_size}
    assert "power cut" in out.read_text()
