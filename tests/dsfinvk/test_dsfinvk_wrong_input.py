"""The TSE's TAR export given where the DSFinV-K export belongs: the message names
the command for it (and --tse-export), not only 'neither a folder nor a ZIP file'."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.verify.synthetic import build_export


def test_a_tse_tar_given_as_the_export_names_opentse_verify(tmp_path: Path) -> None:
    tar = tmp_path / "tse.tar"
    build_export(tar, 5)
    result = CliRunner().invoke(build_app(), ["dsfinvk", "check", str(tar)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "E_EXPORT_ZIP" in text and "a TAR archive, not a DSFinV-K export" in text
    assert "`opentse verify`" in text and "--tse-export" in text


def test_other_files_still_say_neither_folder_nor_zip(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    result = CliRunner().invoke(build_app(), ["dsfinvk", "check", str(other)])
    assert result.exit_code == 2 and "neither a folder nor a ZIP file" in result.output


def test_export_targets_that_cannot_be_written(tmp_path: Path) -> None:
    """`dsfinvk export ... /no/such/folder/x.zip` ended with a FileNotFoundError
    traceback; the ZIP's folder is now created (as a folder export's is), and what
    cannot be written is E_DSFINVK_TARGET."""
    from dsfinvk_support import demo_day

    from opentse.errors import FormatError
    from opentse.formats.dsfinvk.check import check_export
    from opentse.formats.dsfinvk.export import write_export

    closing = demo_day()
    nested = write_export([closing], tmp_path / "new" / "folder" / "nov.zip")
    assert nested.is_file() and check_export(nested) == []
    (tmp_path / "taken.zip").mkdir()
    try:
        write_export([closing], tmp_path / "taken.zip")
    except FormatError as exc:
        assert exc.code == "E_DSFINVK_TARGET" and "a folder" in exc.message
    else:
        raise AssertionError("a folder named like the ZIP was written over")
    assert not (tmp_path / "taken.zip.part").exists()


def test_an_export_refused_while_written_leaves_no_half_folder(tmp_path: Path) -> None:
    """A line text over ARTIKELTEXT's 255 characters is refused while lines.csv is
    written: the folder held index.xml and the tables before it, which
    `dsfinvk check` then read as an export (errors, but a verdict on half an
    export)."""
    from dataclasses import replace
    from decimal import Decimal

    from dsfinvk_support import DayBuilder, FakeTSE, line

    from opentse.errors import FormatError
    from opentse.formats.dsfinvk.export import write_export
    from opentse.formats.dsfinvk.model import Payment

    day = DayBuilder(FakeTSE())
    receipt = day.add([line(1, "Tee", 1, "1.80")], [Payment("Bar", Decimal("1.80"))])
    long_line = replace(receipt.lines[0], text="A" * 300)
    day.receipts = [replace(receipt, lines=(long_line,))]
    out = tmp_path / "export"
    try:
        write_export([day.closing()], out)
    except FormatError as exc:
        assert exc.code == "E_DSFINVK_LENGTH" and "ARTIKELTEXT" in exc.message
    else:
        raise AssertionError("a 300-character ARTIKELTEXT was exported")
    assert not out.exists()
    (tmp_path / "kept").mkdir()  # a folder the user made stays, empty
    with pytest.raises(FormatError):
        write_export([day.closing()], tmp_path / "kept")
    assert (tmp_path / "kept").is_dir() and not any((tmp_path / "kept").iterdir())
