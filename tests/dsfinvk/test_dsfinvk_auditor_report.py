"""What an auditor reads from ``opentse dsfinvk check``: a verdict also when errors are
found, and findings that name the register, the closing and the Bon (its number, not
only its BON_ID) with amounts as money, not Python reprs."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from dsfinvk_support import DayBuilder, FakeTSE, demo_day, edit, line
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.formats.dsfinvk.check import check_export
from opentse.formats.dsfinvk.export import write_export
from opentse.formats.dsfinvk.model import Payment


@pytest.fixture
def export(tmp_path: Path) -> Path:
    return write_export([demo_day()], tmp_path / "export")


def test_cli_prints_a_verdict_when_errors_are_found(export: Path) -> None:
    code_ok = CliRunner().invoke(build_app(), ["dsfinvk", "check", str(export)])
    assert code_ok.exit_code == 0 and "ok (0 warnings)" in code_ok.stdout
    edit(export, "transactions.csv", lambda b: b.replace(b";17,25;", b";17,35;"))
    result = CliRunner().invoke(build_app(), ["dsfinvk", "check", str(export)])
    assert result.exit_code == 1
    assert f"{export}: NOT OK: 3 errors, 0 warnings" in result.stdout


def test_receipt_findings_name_bon_number_register_and_closing(export: Path) -> None:
    edit(export, "transactions.csv", lambda b: b.replace(b";17,25;", b";17,35;"))
    findings = check_export(export)
    assert {f.code for f in findings} == {"E_SUM_LINES", "E_SUM_VAT", "E_SUM_PAYMENTS"}
    for finding in findings:
        assert "Bon 1 (BON_ID B00001, register KASSE-0001, Z_NR 1)" in finding.message
        assert "17.35" in finding.message and "17.25" in finding.message
        assert "17.25000" not in finding.message  # money, not the CSV's five places


def test_closing_total_findings_are_words_not_python_reprs(export: Path) -> None:
    edit(export, "payment.csv", lambda b: b.replace(b";Bar;;70,57", b";Bar;;70,00"))
    edit(
        export,
        "businesscases.csv",
        lambda b: b.replace(b";Einzahlung;;;5;100,00000;", b";Einzahlung;;;5;10,00000;"),
    )
    findings = [f for f in check_export(export) if f.file != "cashpointclosing.csv"]
    assert {(f.code, f.file) for f in findings} == {
        ("E_SUM_CLOSING", "payment.csv"),
        ("E_SUM_CLOSING", "businesscases.csv"),
    }
    text = {f.file: f.message for f in findings}
    for message in text.values():
        assert "Decimal(" not in message and "[" not in message and "('" not in message
        assert message.startswith("register KASSE-0001, Z_NR 1, ")
    assert "ZAHLART_TYP Bar" in text["payment.csv"]
    assert "Z_ZAHLART_BETRAG 70.00" in text["payment.csv"]
    assert "the single records add up to 70.57" in text["payment.csv"]
    assert "GV_TYP Einzahlung, UST_SCHLUESSEL 5" in text["businesscases.csv"]
    assert "Z_UMS_BRUTTO 10.00" in text["businesscases.csv"]
    assert "add up to 100.00" in text["businesscases.csv"]
    assert "Z_UMS_NETTO" not in text["businesscases.csv"]  # only the columns that differ


def test_a_receipt_left_out_consistently_is_a_bon_nr_gap(tmp_path: Path) -> None:
    """A cheat's export without one cash sale, its totals written to match (the
    writer sums what it is given): every sum and signature checks out; only the
    register's receipt numbers show the hole."""
    day = DayBuilder(FakeTSE())
    for price in ("4.20", "12.00", "3.10", "2.50"):
        day.add([line(1, "Essen", 1, price)], [Payment("Bar", Decimal(price))])
    assert check_export(write_export([day.closing()], tmp_path / "all")) == []
    day.receipts.pop(1)  # Bon 2, 12.00 in cash
    findings = check_export(write_export([day.closing()], tmp_path / "cheat"))
    gap, tse_gap = findings
    assert (gap.code, gap.severity, gap.file) == ("W_BON_NR_GAP", "warning", "transactions.csv")
    assert (tse_gap.code, tse_gap.severity) == ("W_TSE_TANR_GAP", "warning")
    assert "register KASSE-0001" in gap.message and "(BON_NR) 2 missing" in gap.message
    assert "Bon 1 (BON_ID B00001, Z_NR 1)" in gap.message and "Bon 3 (BON_ID B00003" in gap.message


def test_a_tar_of_another_tse_is_not_a_passed_cross_check(export: Path, tmp_path: Path) -> None:
    """The shop hands over the wrong TSE's export: no Bon and no transaction could be
    compared, so the verdict must not read 'cross-check: ok'."""
    from opentse.verify.synthetic import build_export

    tar = tmp_path / "other.tar"
    build_export(tar, 30)
    result = CliRunner().invoke(
        build_app(), ["dsfinvk", "check", str(export), "--tse-export", str(tar)]
    )
    assert result.exit_code == 0, result.output  # a warning, as documented
    assert "cross-check: ok" not in result.stdout
    assert "cross-check: NOTHING COMPARED" in result.stdout
    assert "none of the export's 8 Bons with TSE data" in result.stdout


def test_the_check_says_what_it_checked(export: Path) -> None:
    """'ok' alone does not tell an auditor which register, which closings and how
    many signatures: the summary does, in the text and the JSON."""
    from opentse.formats.dsfinvk.check import check_export_summary

    findings, summary = check_export_summary(export)
    assert findings == []
    assert summary == {
        "registers": ["KASSE-0001"],
        # demo_day's closing names no business day (Z_BUCHUNGSTAG is empty)
        "closings": [{"register": "KASSE-0001", "z_nr": "1", "business_day": ""}],
        "bons": 9,
        "bons_with_tse_data": 8,
        "signatures_verified": 8,
    }
    result = CliRunner().invoke(build_app(), ["dsfinvk", "check", str(export)])
    assert result.exit_code == 0
    assert (
        "register KASSE-0001: closing Z_NR 1; 9 Bons, 8 with TSE data, 8 TSE signatures verified"
    ) in result.stdout
    body = CliRunner().invoke(build_app(), ["dsfinvk", "check", str(export), "--json"])
    assert json.loads(body.stdout)["summary"] == summary


def test_an_unreadable_export_says_so(export: Path, tmp_path: Path) -> None:
    """A ZIP cut short is named as such, and the verdict is 'not readable', not a count
    of errors."""
    import shutil

    zipped = Path(shutil.make_archive(str(tmp_path / "export"), "zip", export))
    cut = tmp_path / "cut.zip"
    cut.write_bytes(zipped.read_bytes()[:3000])
    (finding,) = check_export(cut)
    assert finding.code == "E_EXPORT_ZIP" and "cut short" in finding.message
    result = CliRunner().invoke(build_app(), ["dsfinvk", "check", str(cut)])
    assert result.exit_code == 2
    assert f"{cut}: NOT READABLE as a DSFinV-K export" in result.stdout


def test_json_output_stays_json_when_the_tar_cannot_be_read(export: Path, tmp_path: Path) -> None:
    tar = tmp_path / "cut.tar"
    tar.write_bytes(b"\0" * 100 + b"not a tar")
    result = CliRunner().invoke(
        build_app(), ["dsfinvk", "check", str(export), "--tse-export", str(tar), "--json"]
    )
    assert result.exit_code == 2
    body = json.loads(result.stdout)
    assert body["ok"] is False and body["errors"] == 0  # the DSFinV-K side is fine
    assert body["crosscheck"]["unreadable"].startswith("E_EXPORT_UNREADABLE")


def test_a_receipt_left_out_and_the_rest_renumbered_is_a_tse_number_gap(tmp_path: Path) -> None:
    """BON_NR is not signed: a careful cheat renumbers the Bons after the one he left
    out. The TSE's transaction numbers are signed, and one of them has no Bon."""
    from dataclasses import replace

    day = DayBuilder(FakeTSE())
    for price in ("4.20", "12.00", "3.10", "2.50"):
        day.add([line(1, "Essen", 1, price)], [Payment("Bar", Decimal(price))])
    kept = [day.receipts[0], *day.receipts[2:]]
    day.receipts = [replace(r, bon_nr=n) for n, r in enumerate(kept, start=1)]
    (finding,) = check_export(write_export([day.closing()], tmp_path / "cheat"))
    assert (finding.code, finding.severity) == ("W_TSE_TANR_GAP", "warning")
    assert "1 transaction number(s) between 1 and 4 have no Bon in this export (2)" in (
        finding.message
    )


def test_a_broken_signature_says_what_may_have_been_changed(export: Path) -> None:
    edit(
        export,
        "transactions_tse.csv",
        lambda b: b.replace(b";Kassenbeleg-V1;", b";Kassenbeleg-V1;9", 1),
    )
    (finding,) = [f for f in check_export(export) if f.code == "E_SIGNATURE_INVALID"]
    assert finding.message.startswith("Bon 1 (BON_ID B00001, register KASSE-0001, Z_NR 1): ")
    assert "TSE_TA_SIG does not verify over the Finish log rebuilt from the rows" in (
        finding.message
    )
    assert "TSE_TA_SIGZ" in finding.message


def test_key_findings_name_the_columns_not_a_python_tuple(export: Path) -> None:
    """A closing row removed: the rows that point at it say which key is missing."""
    edit(export, "cashpointclosing.csv", lambda b: b"\r\n".join(b.split(b"\r\n")[:1]) + b"\r\n")
    missing = [f for f in check_export(export) if f.code == "E_KEY_MISSING"]
    assert missing
    message = next(f.message for f in missing if f.file == "transactions.csv")
    assert message.startswith("Z_KASSE_ID KASSE-0001, Z_ERSTELLUNG 2026-11-20T23:00:00+01:00, ")
    assert "Z_NR 1: no such row in cashpointclosing.csv" in message
    assert "('" not in message


def test_vat_findings_name_the_bon_and_line_in_money(export: Path) -> None:
    edit(
        export,
        "lines_vat.csv",
        lambda b: b.replace(
            b";1;1;11,90000;10,00000;1,90000", b";1;1;11,90000;10,00000;1,80000", 1
        ),
    )
    findings = [f for f in check_export(export) if f.file == "lines_vat.csv"]
    assert {f.code for f in findings} == {"E_VAT_SUM", "E_VAT_AMOUNT"}
    for finding in findings:
        assert finding.message.startswith(
            "Bon 1 (BON_ID B00001, register KASSE-0001, Z_NR 1) line 1: "
        )
        assert "1.80" in finding.message and "1.80000" not in finding.message


def test_a_wrong_vat_rate_names_the_bon(tmp_path: Path) -> None:
    """19 % on a day of the 2020 reduction (16 %): which receipt says so."""
    from datetime import date

    from opentse.formats.dsfinvk.model import Line, VatAmount, VatRate

    day = DayBuilder(FakeTSE(), date(2020, 9, 1))
    vat16 = VatAmount(1, Decimal("11.60"), Decimal("10.00"), Decimal("1.60"))
    day.add([Line("1", "Kuchen", "Umsatz", (vat16,))], [Payment("Bar", Decimal("11.60"))])
    closing = day.closing(vat_rates=(VatRate(1, Decimal("19.00")),))
    findings = check_export(write_export([closing], tmp_path / "e"))
    (rate,) = [f for f in findings if f.code == "E_VAT_RATE"]
    assert rate.message.startswith("Bon 1 (BON_ID B00001, register KASSE-0001, Z_NR 1): VAT key 1")


def test_the_findings_are_part_of_the_report_on_stdout(export: Path) -> None:
    """`dsfinvk check EXPORT > report.txt` must keep the findings, not only the verdict."""
    edit(export, "transactions.csv", lambda b: b.replace(b";17,25;", b";17,35;"))
    result = CliRunner().invoke(build_app(), ["dsfinvk", "check", str(export)])
    assert result.exit_code == 1
    assert "E_SUM_PAYMENTS" in result.stdout and "NOT OK" in result.stdout


def test_the_cross_check_summary_says_found_not_matched(tmp_path: Path) -> None:
    """A Bon whose counter differs from the TSE's was counted as 'matched'; it was
    found in the TAR, and the comparison found the difference."""
    from opentse.cli.common import console
    from opentse.cli.dsfinvk import _print_cross
    from opentse.verify.crosscheck import CrossCheckResult

    summary = {
        "window": ["a", "b"],
        "clients": ["K"],
        "tar_transactions_in_scope": 1,
        "tar_transactions": 1,
        "bons_matched": 1,
        "bons_with_tse_data": 1,
    }
    with console.capture() as captured:
        _print_cross(CrossCheckResult([], summary), tmp_path / "t.tar")
    text = captured.get()
    assert "1 of 1 Bons with TSE data found in the TAR" in text and "matched" not in text
    assert "opentse verify" in text


def test_a_closing_row_under_another_key_names_both_sides_in_money(export: Path) -> None:
    """payment.csv's Bar row relabelled Unbar: the single records' Bar has no row,
    the Unbar row has no single records; both say their amounts as money."""
    edit(export, "payment.csv", lambda b: b.replace(b";Bar;;70,57", b";Unbar;;70,57"))
    findings = [f for f in check_export(export) if f.file == "payment.csv"]
    assert sorted(f.message for f in findings) == [
        "register KASSE-0001, Z_NR 1, ZAHLART_TYP Bar: no row, but the single records "
        "add up to Z_ZAHLART_BETRAG 70.57",
        "register KASSE-0001, Z_NR 1, ZAHLART_TYP Unbar: Z_ZAHLART_BETRAG 70.57, but no "
        "single record has this key",
    ]


def test_one_error_is_counted_as_one_error(export: Path) -> None:
    edit(export, "tse.csv", lambda b: b.replace(b";ecdsa-plain-SHA256;", b";ecdsa-plain-SHA257;"))
    result = CliRunner().invoke(build_app(), ["dsfinvk", "check", str(export)])
    errors = [f for f in check_export(export) if f.severity == "error"]
    assert len(errors) == 1, errors
    assert result.exit_code == 1 and f"{export}: NOT OK: 1 error, 0 warnings" in result.stdout


def test_the_text_report_says_the_cross_check_was_not_done(export: Path, tmp_path: Path) -> None:
    """`dsfinvk check EXPORT --tse-export TAR > report.txt`: the report must not end
    on the check's "ok" when the TAR could not be read (its message is on stderr)."""
    tar = tmp_path / "cut.tar"
    tar.write_bytes(b"\0" * 100 + b"not a tar")
    result = CliRunner().invoke(
        build_app(), ["dsfinvk", "check", str(export), "--tse-export", str(tar)]
    )
    assert result.exit_code == 2
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(f"cross-check with {tar}: NOT DONE"), result.stdout
    assert "E_EXPORT_UNREADABLE" in last and "no Bon was compared" in last


def test_a_signature_that_cannot_be_tried_is_not_called_invalid(export: Path) -> None:
    """A TSE_TA_SIGZ that is no number: the signature could not be verified at all,
    which is not "does not verify over the rows" (an amount or key changed)."""
    import csv
    import io

    text = (export / "transactions_tse.csv").read_text(encoding="utf-8")
    row = next(r for r in csv.DictReader(io.StringIO(text), delimiter=";") if r["TSE_TA_SIG"])
    was = f";{row['TSE_TA_SIGZ']};{row['TSE_TA_SIG']};".encode()
    edit(export, "transactions_tse.csv", lambda b: b.replace(was, b";x" + was[1:]))
    codes = {f.code: f for f in check_export(export)}
    assert "E_SIGNATURE_INVALID" not in codes, codes
    unchecked = codes["E_SIGNATURE_UNCHECKED"]
    assert (unchecked.severity, unchecked.column) == ("error", "TSE_TA_SIG")
    assert unchecked.message.endswith(
        f"TSE_TA_SIG cannot be verified: TSE_TA_SIGZ 'x{row['TSE_TA_SIGZ']}' is not a whole number"
    ), unchecked.message
    assert f"BON_ID {row['BON_ID']}" in unchecked.message


def test_tse_csv_findings_name_their_column(export: Path) -> None:
    edit(export, "tse.csv", lambda b: b.replace(b";ecdsa-plain-SHA256;", b";ecdsa-plain-SHA257;"))
    (finding,) = [f for f in check_export(export) if f.code == "E_TSE_ALGORITHM"]
    assert (finding.file, finding.line, finding.column) == ("tse.csv", 2, "TSE_SIG_ALGO")
    assert "'ecdsa-plain-SHA257'" in finding.message
    assert "the Bons of this TSE cannot be verified" in finding.message
