"""Text from the export or the receipt that looks like rich markup ('[/bold]') is
printed as it is: it ended `opentse verify` and `verify-receipt` with a
MarkupError traceback (an info.csv description, a member name, a log's client id or
processData reach the terminal report)."""

from __future__ import annotations

from pathlib import Path

from test_verify_tampering import FINISH_2, Members, _members, _write
from typer.testing import CliRunner
from verify_data import qr_vectors

from opentse.cli.main import build_app


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args), env={"COLUMNS": "200"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_info_csv_and_member_names_with_markup(tmp_path: Path) -> None:
    members: Members = _members()
    members["info.csv"] = (
        b'"description:","shop [/bold] [red]x","manufacturer:","m","version:","1"\n'
    )
    members["x[/bold]y.log"] = members.pop(FINISH_2)
    tar = _write(tmp_path / "e.tar", members)
    code, out = _run("verify", str(tar))
    assert code == 0, out
    assert "shop [/bold] [red]x · m · 1" in out and "x[/bold]y.log" in out


def test_a_receipt_whose_process_data_looks_like_markup(tmp_path: Path) -> None:
    vectors = qr_vectors()
    if not vectors:
        import pytest

        pytest.skip("spec digest absent")
    fields = vectors[0].split(";")
    fields[2], fields[3] = "SonstigerVorgang", "[/b] paid"
    code, out = _run("verify-receipt", ";".join(fields))
    assert code == 1 and "[/b] paid" in out and "NOT VERIFIED" in out
