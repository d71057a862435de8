"""Usage errors of the real ``opentse`` console script: one line ``error E_USAGE: ...``
on stderr and exit 2, like every other refusal's ``error E_...`` line, so a script
or a register's wrapper can read it; nothing on stdout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

OPENTSE = str(Path(sys.executable).parent / "opentse")


def opentse(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OPENTSE, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("args", "says", "command"),
    [
        (["tse", "list", "--bogus"], "No such option: --bogus", "opentse tse list"),
        (["tse", "list", "--bogus", "--json"], "No such option: --bogus", "opentse tse list"),
        (["tse", "show"], "Missing argument", "opentse tse show"),
        (
            ["demo", "--transactions", "many"],
            "Invalid value for '--transactions'",
            "opentse demo",
        ),
    ],
)
def test_usage_error_is_one_line_with_code_and_exit_2(
    args: list[str], says: str, command: str
) -> None:
    result = opentse(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error E_USAGE: ")
    assert says in lines[0]
    assert f"(see '{command} --help')" in lines[0]
    assert "╭" not in result.stderr and "Traceback" not in result.stderr


def test_no_arguments_print_the_help_once_and_exit_2() -> None:
    result = opentse("tse")
    assert result.returncode == 2
    assert result.stdout.count("Usage: opentse tse") == 1
    assert "create" in result.stdout


def test_help_refusals_and_success_keep_their_exit_codes(tmp_path: Path) -> None:
    assert opentse("--help").returncode == 0
    refused = opentse("tse", "show", "nope", "--data", str(tmp_path / "d"))
    assert refused.returncode == 1
    assert refused.stderr.startswith("error E_TSE_NOT_FOUND")
    listed = opentse("tse", "list", "--data", str(tmp_path / "d"), "--json")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "[]"
