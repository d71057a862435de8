"""A file in the export that index.xml does not declare: the auditor's tool imports
only the declared tables, so such a file (a second lines.csv under another name, a
table of a newer DSFinV-K, notes) is never looked at in the audit. The check said
nothing. Now one warning ``W_FILE_UNDECLARED`` per file, naming it; index.xml and
the GDPdU DTD are the export's own."""

from __future__ import annotations

import zipfile
from pathlib import Path

from dsfinvk_support import demo_day

from opentse.formats.dsfinvk.check import Finding, check_export
from opentse.formats.dsfinvk.export import write_export


def _zip(folder: Path, archive: Path, extra: dict[str, bytes], prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as out:
        if prefix:
            out.writestr(prefix, b"")  # the folder's own entry, as zip -r writes it
        for path in sorted(folder.iterdir()):
            out.write(path, prefix + path.name)
        for name, data in extra.items():
            out.writestr(name, data)
    return archive


def _undeclared(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.file, f.severity) for f in findings if f.code == "W_FILE_UNDECLARED"]


def test_a_zip_member_index_xml_does_not_declare_is_a_warning(tmp_path: Path) -> None:
    export = write_export([demo_day()], tmp_path / "export")
    extra = {"lines_old.csv": b"Z_KASSE_ID\r\n", "notes/readme.txt": b"hello"}
    findings = check_export(_zip(export, tmp_path / "e.zip", extra))
    assert _undeclared(findings) == [
        ("lines_old.csv", "warning"),
        ("notes/readme.txt", "warning"),
    ], findings
    assert len(findings) == 2
    assert "index.xml does not declare" in findings[0].message


def test_an_export_folder_zipped_with_its_folder_name(tmp_path: Path) -> None:
    export = write_export([demo_day()], tmp_path / "export")
    extra = {"export/extra.csv": b"x", "outside.txt": b"y"}
    findings = check_export(_zip(export, tmp_path / "e.zip", extra, prefix="export/"))
    assert _undeclared(findings) == [
        ("export/extra.csv", "warning"),
        ("outside.txt", "warning"),
    ], findings


def test_a_folder_export_with_a_file_it_does_not_declare(tmp_path: Path) -> None:
    export = write_export([demo_day()], tmp_path / "export")
    (export / "transactions_2.csv").write_bytes(b"x")
    findings = check_export(export)
    assert _undeclared(findings) == [("transactions_2.csv", "warning")], findings


def test_our_own_exports_have_none(tmp_path: Path) -> None:
    folder = write_export([demo_day()], tmp_path / "export")
    archive = write_export([demo_day()], tmp_path / "export.zip")
    assert check_export(folder) == [] and check_export(archive) == []
