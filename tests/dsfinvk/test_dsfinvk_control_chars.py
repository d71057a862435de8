"""A control character inside a text field (a NUL byte above all): DSFinV-K text
fields are plain text, and an auditor's import (IDEA and other C-based readers) ends
a text at NUL or rejects the file. The check said nothing: the field is well-formed
CSV. Now ``E_CSV_CONTROL`` names the file, the CSV line, the column and the
characters; the CSV's own CR, LF (inside a quoted field) and TAB stay allowed."""

from __future__ import annotations

import zipfile
from pathlib import Path

from dsfinvk_support import demo_day, edit

from opentse.formats.dsfinvk.check import check_export, check_export_summary
from opentse.formats.dsfinvk.csvwriter import read_records
from opentse.formats.dsfinvk.export import write_export


def _line_of(folder: Path, name: str, text: str) -> int:
    """The CSV line of the record holding ``text`` in any field."""
    data = (folder / name).read_bytes()
    lines = [line for line, fields in read_records(data, name) if any(text in f for f in fields)]
    assert len(lines) == 1, lines
    return lines[0]


def test_a_nul_byte_in_a_text_field_is_named_with_file_line_and_column(tmp_path: Path) -> None:
    export = write_export([demo_day()], tmp_path / "export")
    edit(export, "lines.csv", lambda b: b.replace(b"Kuchen", b"Ku\x00chen", 1))
    line = _line_of(export, "lines.csv", "Ku\x00chen")
    findings, summary = check_export_summary(export)
    assert [(f.code, f.file, f.line, f.column, f.severity) for f in findings] == [
        ("E_CSV_CONTROL", "lines.csv", line, "ARTIKELTEXT", "error")
    ], findings
    assert "NUL (U+0000)" in findings[0].message
    assert "character 3" in findings[0].message
    # the rest of the export is checked as before: every signature still verifies
    assert summary["signatures_verified"] == 8


def test_other_c0_characters_are_found_too_and_each_field_once(tmp_path: Path) -> None:
    export = write_export([demo_day()], tmp_path / "export")
    edit(
        export,
        "location.csv",
        lambda b: b.replace(b"Filiale Mitte", b"Filiale\x1b\x07Mit\x1bte", 1),
    )
    edit(export, "cashregister.csv", lambda b: b.replace(b"opentse", b"open\x7ftse", 1))
    findings = check_export(export)
    by_file = {f.file: f for f in findings}
    assert sorted(by_file) == ["cashregister.csv", "location.csv"], findings
    assert len(findings) == 2
    location = by_file["location.csv"]
    assert (location.code, location.column) == ("E_CSV_CONTROL", "LOC_NAME")
    assert "U+001B" in location.message and "U+0007" in location.message
    assert "U+007F" in by_file["cashregister.csv"].message


def test_tab_and_line_breaks_inside_a_quoted_field_are_no_finding(tmp_path: Path) -> None:
    export = write_export([demo_day()], tmp_path / "export")
    edit(
        export, "location.csv", lambda b: b.replace(b"Filiale Mitte", b'"Filiale\tMitte\r\nHof"', 1)
    )
    assert check_export(export) == []


def test_a_nul_in_a_zip_export_is_found(tmp_path: Path) -> None:
    export = write_export([demo_day()], tmp_path / "export")
    edit(export, "lines.csv", lambda b: b.replace(b"Kuchen", b"Kuchen\x00", 1))
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(export.iterdir()):
            out.write(path, path.name)
    codes = [(f.code, f.file, f.column) for f in check_export(archive)]
    assert codes == [("E_CSV_CONTROL", "lines.csv", "ARTIKELTEXT")]
