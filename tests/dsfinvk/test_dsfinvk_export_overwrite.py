"""`dsfinvk export` over an earlier export: it replaced an existing ZIP without a
word (maybe the only copy of a year an auditor was given) but refused a folder that
is not empty. Both are refused now (E_DSFINVK_TARGET, naming --force); --force
replaces a ZIP, or a folder holding only an export's files, never other files."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.formats.dsfinvk.check import check_export
from opentse.installation import Installation
from opentse.testing import ready_tse

APP = build_app()
COMPANY = ["--company", "C", "--street", "S", "--postal-code", "1", "--city", "X"]
COMPANY += ["--tax-number", "123"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("till")
    data, books = folder / "data", folder / "books.db"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "t", client_id="KASSE-1", logout=True)
    base = ["--data", str(data), "--tss", "t", "--client", "KASSE-1", "--journal", str(books)]
    code, out = run("pos", "sell", *base, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80")
    assert code == 0, out
    code, out = run("pos", "close", *base, "--counted-cash", "1.80", *COMPANY)
    assert code == 0, out
    return books


def test_an_existing_zip_is_refused_and_replaced_with_force(journal: Path, tmp_path: Path) -> None:
    out = tmp_path / "2026.zip"
    out.write_bytes(b"the only copy of another year")
    code, text = run("dsfinvk", "export", str(out), "--journal", str(journal))
    assert code != 0 and "E_DSFINVK_TARGET" in text and "--force" in text
    assert out.read_bytes() == b"the only copy of another year"
    code, text = run("dsfinvk", "export", str(out), "--journal", str(journal), "--force")
    assert code == 0, text
    assert zipfile.is_zipfile(out) and check_export(out) == []


def test_an_earlier_export_folder_is_refused_and_replaced_with_force(
    journal: Path, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    code, text = run("dsfinvk", "export", str(out), "--journal", str(journal))
    assert code == 0, text
    (out / "lines.csv").write_text("stale")
    code, text = run("dsfinvk", "export", str(out), "--journal", str(journal))
    assert code != 0 and "E_DSFINVK_TARGET" in text and "--force" in text
    assert (out / "lines.csv").read_text() == "stale"
    code, text = run("dsfinvk", "export", str(out), "--journal", str(journal), "--force")
    assert code == 0, text
    assert check_export(out) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no .part/.old left


def test_force_never_removes_other_files(journal: Path, tmp_path: Path) -> None:
    out = tmp_path / "documents"
    out.mkdir()
    (out / "letter.odt").write_text("mine")
    code, text = run("dsfinvk", "export", str(out), "--journal", str(journal), "--force")
    assert code != 0 and "E_DSFINVK_TARGET" in text and "letter.odt" in text
    assert sorted(p.name for p in out.iterdir()) == ["letter.odt"]


def test_force_with_a_refused_value_keeps_the_earlier_export(tmp_path: Path) -> None:
    """The new export is written whole beside the folder before it takes its place: a
    value refused while writing leaves the earlier export as it was, and no .part."""
    from dataclasses import replace
    from decimal import Decimal

    from dsfinvk_support import DayBuilder, FakeTSE, demo_day, line

    from opentse.errors import FormatError
    from opentse.formats.dsfinvk.export import write_export
    from opentse.formats.dsfinvk.model import Payment

    out = write_export([demo_day()], tmp_path / "export")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    day = DayBuilder(FakeTSE())
    receipt = day.add([line(1, "Tee", 1, "1.80")], [Payment("Bar", Decimal("1.80"))])
    day.receipts = [replace(receipt, lines=(replace(receipt.lines[0], text="A" * 300),))]
    with pytest.raises(FormatError) as refused:
        write_export([day.closing()], out, replace=True)
    assert refused.value.code == "E_DSFINVK_LENGTH"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
