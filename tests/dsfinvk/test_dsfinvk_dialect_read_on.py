"""An export whose CSV files went through another system (LF line ends, a byte order
mark): still E_CSV_DIALECT per file, but the rows are checked all the same; the
check read nothing of such a file and said 'no closing; 0 Bons', so an auditor got
no word on sums or signatures."""

from __future__ import annotations

from pathlib import Path

from dsfinvk_support import demo_day

from opentse.formats.dsfinvk.check import check_export_summary
from opentse.formats.dsfinvk.export import write_export


def test_lf_line_ends_and_a_bom_are_errors_but_the_rows_are_checked(tmp_path: Path) -> None:
    export = write_export([demo_day()], tmp_path / "export")
    files = sorted(export.glob("*.csv"))
    for number, path in enumerate(files):
        data = path.read_bytes().replace(b"\r\n", b"\n")
        path.write_bytes(b"\xef\xbb\xbf" + data if number % 2 else data)
    findings, summary = check_export_summary(export)
    assert {f.code for f in findings} == {"E_CSV_DIALECT"}
    assert len(findings) == len(files) == 20
    assert all("the rows are checked all the same" in f.message for f in findings)
    assert summary["bons"] == 9 and summary["signatures_verified"] == 8


def test_a_changed_amount_in_such_a_file_is_still_found(tmp_path: Path) -> None:
    export = write_export([demo_day()], tmp_path / "export")
    path = export / "transactions.csv"
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n").replace(b";17,25;", b";17,35;"))
    findings, _summary = check_export_summary(export)
    assert {"E_CSV_DIALECT", "E_SUM_LINES", "E_SUM_PAYMENTS"} <= {f.code for f in findings}


def test_the_cross_check_reads_such_files_too(tmp_path: Path) -> None:
    """--tse-export read nothing of them (E_XC_BON_TSE_UNREADABLE per file)."""
    from opentse.verify.crosscheck_read import read_dsfinvk

    export = write_export([demo_day()], tmp_path / "export")
    for path in export.glob("*.csv"):
        path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n"))
    side = read_dsfinvk(export)
    assert side.findings == [] and len(side.bons) == 8 and side.clients == {"KASSE-0001"}


def test_a_last_record_without_its_cr_lf_is_read_too(tmp_path: Path) -> None:
    """Every file's final CR LF left out (as many CSV writers do): one E_CSV_DIALECT
    per file, every row checked. The check dropped each such table and reported
    'has no lines', 'has no transactions_tse row' ... for every Bon. The cross-check
    reads them too."""
    from opentse.verify.crosscheck_read import read_dsfinvk

    export = write_export([demo_day()], tmp_path / "export")
    files = sorted(export.glob("*.csv"))
    for path in files:
        data = path.read_bytes()
        assert data.endswith(b"\r\n")
        path.write_bytes(data.removesuffix(b"\r\n"))
    findings, summary = check_export_summary(export)
    assert {f.code for f in findings} == {"E_CSV_DIALECT"}, findings
    assert len(findings) == len(files)
    assert all("last record not ended by CR LF" in f.message for f in findings)
    assert summary["bons"] == 9 and summary["signatures_verified"] == 8
    side = read_dsfinvk(export)
    assert side.findings == [] and len(side.bons) == 8


def test_a_file_cut_inside_its_last_record_is_found(tmp_path: Path) -> None:
    """Cut short inside the last record: that record's fields tell (too few fields,
    or a value that no longer verifies)."""
    export = write_export([demo_day()], tmp_path / "export")
    path = export / "lines.csv"
    data = path.read_bytes()
    path.write_bytes(data[: data.rstrip(b"\r\n").rfind(b";") - 1])  # last two fields gone
    codes = {f.code for f in check_export_summary(export)[0]}
    assert {"E_CSV_DIALECT", "E_CSV_FIELDS"} <= codes
