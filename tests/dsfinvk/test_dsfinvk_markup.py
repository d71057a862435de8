"""A register id (or any CSV text the report repeats) that looks like rich markup
is printed as it is: `dsfinvk check` ended with a MarkupError traceback on the
summary line, and the cross-check on its client list."""

from __future__ import annotations

from pathlib import Path

from dsfinvk_support import demo_day
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.formats.dsfinvk.export import write_export
from opentse.verify.synthetic import build_export


def test_a_register_id_with_markup(tmp_path: Path) -> None:
    export = write_export([demo_day()], tmp_path / "export")
    for path in export.glob("*.csv"):
        path.write_bytes(path.read_bytes().replace(b"KASSE-0001", b"KASSE[/b]1"))
    tar = tmp_path / "t.tar"
    build_export(tar, 5)
    result = CliRunner().invoke(
        build_app(), ["dsfinvk", "check", str(export), "--tse-export", str(tar)]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "register KASSE[/b]1: closing Z_NR 1" in result.output
    assert "clients KASSE[/b]1" in result.output
