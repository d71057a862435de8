"""W_BON_NR_GAP looks only inside what was exported: receipt numbers that belong to
closings the export does not hold (a chosen range, closings left out between two
exported ones) are no gap; a receipt missing inside a closing, or between two
exported closings that follow each other, is."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from dsfinvk_support import DayBuilder, FakeTSE, line
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.formats.dsfinvk.check import check_export
from opentse.formats.dsfinvk.model import Closing, Payment


def _closings(count: int, per_day: int = 3) -> list[Closing]:
    """``count`` closings of one register on consecutive days, receipts numbered
    on across the days (as the register's books number them)."""
    tse = FakeTSE()
    out = []
    number = 0
    for z in range(1, count + 1):
        day = DayBuilder(tse, date(2026, 11, 1) + timedelta(days=z))
        for _ in range(per_day):
            day.add([line(1, "Kaffee", 1, "2.50")], [Payment("Bar", Decimal("2.50"))])
        receipts = []
        for receipt in day.receipts:
            number += 1
            receipts.append(replace(receipt, bon_nr=number, bon_id=f"B{number:05d}"))
        day.receipts = receipts
        out.append(day.closing(z_nr=z))
    return out


def _gaps(findings: list[object]) -> list[str]:
    return [f.message for f in findings if getattr(f, "code", "") == "W_BON_NR_GAP"]


def test_closings_left_out_between_two_exported_ones_are_no_gap(tmp_path: Path) -> None:
    z1, _z2, z3 = _closings(3)
    from opentse.formats.dsfinvk.export import write_export

    export = write_export([z1, z3], tmp_path / "z1-z3")
    assert _gaps(check_export(export)) == []
    result = CliRunner().invoke(build_app(), ["dsfinvk", "check", str(export)])
    # the TSE numbers of Z_NR 2 are not checked, and the report says so (info)
    assert result.exit_code == 0 and "ok (0 warnings, 1 info)" in result.stdout
    assert "I_TSE_TANR_UNCHECKED" in result.stdout and "Z_NR 2 (not in the export)" in " ".join(
        result.stdout.split()
    )


def test_a_range_after_the_first_closing_is_no_gap(tmp_path: Path) -> None:
    from opentse.formats.dsfinvk.export import write_export

    _z1, z2, z3 = _closings(3)
    assert _gaps(check_export(write_export([z2, z3], tmp_path / "z2-z3"))) == []


def test_a_receipt_missing_between_two_consecutive_closings_is_a_gap(tmp_path: Path) -> None:
    from opentse.formats.dsfinvk.export import write_export

    z1, z2, _z3 = _closings(3)
    z2 = replace(z2, receipts=z2.receipts[1:])  # Bon 4, the first of Z_NR 2
    (gap,) = _gaps(check_export(write_export([z1, z2], tmp_path / "cheat")))
    assert "(BON_NR) 4 missing" in gap and "Z_NR 1" in gap and "Z_NR 2" in gap


def test_a_receipt_missing_inside_a_closing_is_a_gap_also_with_closings_skipped(
    tmp_path: Path,
) -> None:
    from opentse.formats.dsfinvk.export import write_export

    z1, _z2, z3 = _closings(3)
    z3 = replace(z3, receipts=(z3.receipts[0], z3.receipts[2]))  # Bon 8 of Z_NR 3
    (gap,) = _gaps(check_export(write_export([z1, z3], tmp_path / "cheat")))
    assert "(BON_NR) 8 missing" in gap and "Bon 7" in gap and "Bon 9" in gap


def test_the_gap_names_the_line_of_the_bon_after_it(tmp_path: Path) -> None:
    """An auditor opens transactions.csv at the finding's line: the Bon after the
    missing numbers (read back here with the stdlib csv reader)."""
    import csv

    from opentse.formats.dsfinvk.export import write_export

    z1, z2, _z3 = _closings(3)
    z2 = replace(z2, receipts=z2.receipts[1:])  # Bon 4 left out
    export = write_export([z1, z2], tmp_path / "cheat")
    (gap,) = [f for f in check_export(export) if f.code == "W_BON_NR_GAP"]
    with (export / "transactions.csv").open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file, delimiter=";"))
    # line 1 is the header: the record at index i is on line i + 2
    (after,) = [i + 2 for i, row in enumerate(rows) if row["BON_NR"] == "5"]
    assert (gap.file, gap.line, gap.column) == ("transactions.csv", after, "BON_NR")
    assert str(gap).startswith(f"warning W_BON_NR_GAP transactions.csv:{after} BON_NR: ")
