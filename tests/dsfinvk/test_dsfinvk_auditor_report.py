"""What an auditor reads from ``opentse dsfinvk check``: a verdict also when errors are
found, and findings that name the register, the closing and the Bon (its number, not
only its BON_ID) with amounts as money, not Python reprs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from dsfinvk_support import demo_day
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.formats.dsfinvk.export import write_export


@pytest.fixture
def export(tmp_path: Path) -> Path:
    return write_export([demo_day()], tmp_path / "export")


def edit(folder: Path, name: str, change: Callable[[bytes], bytes]) -> None:
    path = folder / name
    before = path.read_bytes()
    after = change(before)
    assert after != before, "the edit must change the file"
    path.write_bytes(after)


def test_cli_prints_a_verdict_when_errors_are_found(export: Path) -> None:
    code_ok = CliRunner().invoke(build_app(), ["dsfinvk", "check", str(export)])
    assert code_ok.exit_code == 0 and "ok (0 warnings)" in code_ok.stdout
    edit(export, "transactions.csv", lambda b: b.replace(b";17,25;", b";17,35;"))
    result = CliRunner().invoke(build_app(), ["dsfinvk", "check", str(export)])
    assert result.exit_code == 1
    assert f"{export}: NOT OK: 3 errors, 0 warnings" in result.stdout
