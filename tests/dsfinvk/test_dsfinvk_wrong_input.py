"""The TSE's TAR export given where the DSFinV-K export belongs: the message names
the command for it (and --tse-export), not only 'neither a folder nor a ZIP file'."""

from __future__ import annotations

from pathlib import Path

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
