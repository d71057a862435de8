"""check_export finds what an auditor would: tampered amounts, bad signatures, broken
dialect, wrong VAT rates, missing files and keys."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from dsfinvk_support import BERLIN, DayBuilder, FakeTSE, demo_day, edit
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.formats.dsfinvk.check import Finding, check_export
from opentse.formats.dsfinvk.export import write_export
from opentse.formats.dsfinvk.model import Line, Payment, VatAmount, VatRate

CLOSING = demo_day()


@pytest.fixture
def export(tmp_path: Path) -> Path:
    return write_export([demo_day()], tmp_path / "export")


def codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


def test_clean_export_has_no_findings(export: Path) -> None:
    assert check_export(export) == []


def test_tampered_receipt_total(export: Path) -> None:
    edit(export, "transactions.csv", lambda b: b.replace(b";17,25;", b";17,35;"))
    findings = check_export(export)
    assert codes(findings) == {"E_SUM_LINES", "E_SUM_VAT", "E_SUM_PAYMENTS"}
    assert all(f.file == "transactions.csv" and "B00001" in f.message for f in findings)


def test_tampered_vat_amount_breaks_the_signature(export: Path) -> None:
    edit(export, "transactions_vat.csv", lambda b: b.replace(b";1;11,90000;", b";1;12,90000;"))
    found = codes(check_export(export))
    assert {"E_SUM_LINES", "E_SUM_VAT", "E_PROCESSDATA_MISMATCH", "E_SIGNATURE_INVALID"} <= found


def test_consistent_tampering_is_caught_by_the_signature_alone(export: Path) -> None:
    """Raise the cash sale everywhere consistently and drop TSE_VORGANGSDATEN: only
    the signature over the rebuilt processData notices."""

    def bump(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
        return lambda b: b.replace(old, new, 1)

    edit(
        export,
        "lines.csv",
        bump(
            b";Kuchen;;Umsatz;;;;;;;;;1,000;;;11,90000", b";Kuchen;;Umsatz;;;;;;;;;1,000;;;12,90000"
        ),
    )
    edit(
        export,
        "lines_vat.csv",
        bump(b";B00001;1;1;11,90000;10,00000;1,90000", b";B00001;1;1;12,90000;11,00000;1,90000"),
    )
    edit(
        export,
        "transactions_vat.csv",
        bump(b";B00001;1;11,90000;10,00000;", b";B00001;1;12,90000;11,00000;"),
    )
    edit(export, "transactions.csv", bump(b";17,25;", b";18,25;"))
    edit(export, "datapayment.csv", bump(b";B00001;Bar;;EUR;;17,25", b";B00001;Bar;;EUR;;18,25"))
    edit(
        export,
        "businesscases.csv",
        bump(b";Umsatz;;;1;11,90000;10,00000;", b";Umsatz;;;1;12,90000;11,00000;"),
    )
    edit(export, "payment.csv", bump(b";Bar;;70,57", b";Bar;;71,57"))
    edit(export, "cash_per_currency.csv", bump(b";EUR;70,57", b";EUR;71,57"))
    edit(export, "cashpointclosing.csv", lambda b: b.replace(b";82,57;70,57", b";83,57;71,57"))
    edit(export, "transactions_tse.csv", bump(b";Beleg^11.90_5.35_0.00_0.00_0.00^17.25:Bar", b";"))
    findings = check_export(export)
    assert codes(findings) == {"E_SIGNATURE_INVALID", "E_VAT_AMOUNT"}
    (sig,) = [f for f in findings if f.code == "E_SIGNATURE_INVALID"]
    assert "B00001" in sig.message and sig.column == "TSE_TA_SIG"


def test_bad_signature(export: Path) -> None:
    def flip(data: bytes) -> bytes:
        lines = data.split(b"\r\n")
        fields = lines[1].split(b";")
        sig = bytearray(fields[10])
        sig[5] = ord("A") if sig[5] != ord("A") else ord("B")
        fields[10] = bytes(sig)
        lines[1] = b";".join(fields)
        return b"\r\n".join(lines)

    edit(export, "transactions_tse.csv", flip)
    findings = check_export(export)
    assert [(f.code, f.file, f.line) for f in findings] == [
        ("E_SIGNATURE_INVALID", "transactions_tse.csv", 2)
    ]


def test_wrong_client_serial_fails_every_signature(export: Path) -> None:
    edit(
        export,
        "cashregister.csv",
        lambda b: b.replace(b";KASSE-0001;opentse;", b";KASSE-0002;opentse;"),
    )
    findings = [f for f in check_export(export) if f.code == "E_SIGNATURE_INVALID"]
    assert len(findings) == 8


def test_thousands_separator_and_decimal_point_are_found(export: Path) -> None:
    edit(export, "datapayment.csv", lambda b: b.replace(b";100,00\r\n", b";1.100,00\r\n"))
    edit(export, "payment.csv", lambda b: b.replace(b";12,00\r\n", b";12.00\r\n"))
    grouping = [f for f in check_export(export) if f.code == "E_CSV_GROUPING"]
    assert {(f.file, f.column) for f in grouping} == {
        ("datapayment.csv", "BASISWAEH_BETRAG"),
        ("payment.csv", "Z_ZAHLART_BETRAG"),
    }


def test_dialect_violations(export: Path) -> None:
    edit(export, "payment.csv", lambda b: b.replace(b"\r\n", b"\n"))
    edit(export, "vat.csv", lambda b: b.replace(b";2;7,00;", b";2;7,001;"))
    found = {(f.code, f.file) for f in check_export(export)}
    assert ("E_CSV_DIALECT", "payment.csv") in found
    assert ("E_CSV_DECIMALS", "vat.csv") in found


def test_value_lists_booleans_lengths(export: Path) -> None:
    edit(export, "transactions.csv", lambda b: b.replace(b";AVTraining;", b";Training;"))
    edit(export, "transactions.csv", lambda b: b.replace(b";Beleg;;;1;", b";Beleg;;;2;", 1))
    edit(export, "location.csv", lambda b: b.replace(b";DEU;", b";DEUT;"))
    found = {(f.code, f.column) for f in check_export(export)}
    assert ("E_CSV_VALUE", "BON_TYP") in found
    assert ("E_CSV_BOOLEAN", "BON_STORNO") in found
    assert ("E_CSV_LENGTH", "LOC_LAND") in found


def test_keys(export: Path) -> None:
    def duplicate_first_row(data: bytes) -> bytes:
        lines = data.split(b"\r\n")
        return b"\r\n".join([lines[0], lines[1], *lines[1:]])

    edit(export, "lines.csv", duplicate_first_row)
    edit(export, "lines_vat.csv", lambda b: b.replace(b";B00002;1;1;", b";B00002;7;1;"))
    found = {(f.code, f.file) for f in check_export(export)}
    assert ("E_KEY_DUPLICATE", "lines.csv") in found
    assert ("E_KEY_MISSING", "lines_vat.csv") in found
    assert ("E_LINE_NO_VAT", "lines.csv") in found


def test_receipt_without_payment_and_lines(export: Path) -> None:
    edit(
        export,
        "datapayment.csv",
        lambda b: b"\r\n".join(line for line in b.split(b"\r\n") if b";B00005;" not in line),
    )
    edit(
        export,
        "lines.csv",
        lambda b: b"\r\n".join(line for line in b.split(b"\r\n") if b";B00007;" not in line),
    )
    found = {(f.code, f.file) for f in check_export(export)}
    assert ("E_RECEIPT_NO_PAYMENT", "transactions.csv") in found
    assert ("E_RECEIPT_NO_LINES", "transactions.csv") in found
    assert ("E_SUM_CLOSING", "payment.csv") in found


def test_files_and_index(export: Path) -> None:
    (export / "gdpdu-01-09-2004.dtd").unlink()
    (export / "subitems.csv").unlink()
    edit(
        export,
        "index.xml",
        lambda b: b.replace(b'SYSTEM "gdpdu-01-09-2004.dtd"', b'SYSTEM "gdpdu.dtd"'),
    )
    edit(export, "vat.csv", lambda b: b.replace(b"UST_SATZ;UST_BESCHR", b"UST_BESCHR;UST_SATZ"))
    found = {(f.code, f.file) for f in check_export(export)}
    assert found == {
        ("E_DTD_MISSING", "gdpdu-01-09-2004.dtd"),
        ("E_CSV_MISSING", "subitems.csv"),
        ("E_INDEX_DOCTYPE", "index.xml"),
        ("E_CSV_HEADER", "vat.csv"),
    }


def test_modified_dtd_and_missing_index(export: Path) -> None:
    edit(export, "gdpdu-01-09-2004.dtd", lambda b: b + b"<!-- x -->")
    (warning,) = check_export(export)
    assert (warning.code, warning.severity) == ("W_DTD_DIFFERS", "warning")
    (export / "index.xml").unlink()
    assert codes(check_export(export)) == {"E_INDEX_MISSING"}


def test_not_an_export(tmp_path: Path) -> None:
    assert codes(check_export(tmp_path / "nope")) == {"E_EXPORT_MISSING"}
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    assert codes(check_export(tmp_path / "x.zip")) == {"E_EXPORT_ZIP"}


def test_zip_with_a_folder_inside(tmp_path: Path) -> None:
    folder = write_export([demo_day()], tmp_path / "DSFinV-K_2026")
    with zipfile.ZipFile(tmp_path / "nested.zip", "w") as archive:
        for path in folder.iterdir():
            archive.write(path, f"DSFinV-K_2026/{path.name}")
    assert check_export(tmp_path / "nested.zip") == []


def _day_2020(tmp: Path, rate_key1: str) -> list[Finding]:
    day = DayBuilder(FakeTSE(), date(2020, 9, 1))
    vat16 = VatAmount(1, Decimal("11.60"), Decimal("10.00"), Decimal("1.60"))
    day.add([Line("1", "Kuchen", "Umsatz", (vat16,))], [Payment("Bar", Decimal("11.60"))])
    closing = day.closing(vat_rates=(VatRate(1, Decimal(rate_key1)),))
    return check_export(write_export([closing], tmp / f"e{rate_key1}"))


def test_reduced_rates_of_the_second_half_of_2020(tmp_path: Path) -> None:
    assert _day_2020(tmp_path, "16.00") == []
    found = {(f.code, f.file) for f in _day_2020(tmp_path, "19.00")}
    assert ("E_VAT_RATE", "transactions_vat.csv") in found
    assert ("E_VAT_AMOUNT", "lines_vat.csv") in found


def test_historic_key_before_it_exists(tmp_path: Path) -> None:
    day = DayBuilder(FakeTSE(), date(2020, 9, 1))
    vat = VatAmount(21, Decimal("11.60"), Decimal("10.00"), Decimal("1.60"))
    day.add([Line("1", "Kuchen", "Umsatz", (vat,))], [Payment("Bar", Decimal("11.60"))])
    closing = day.closing(vat_rates=(VatRate(21, Decimal("16.00")),))
    found = codes(check_export(write_export([closing], tmp_path / "e")))
    assert "E_VAT_KEY_DATE" in found


@pytest.mark.parametrize("time_format", ["unixTime", "utcTimeWithSeconds", "generalizedTime"])
def test_signatures_in_every_time_format(tmp_path: Path, time_format: str) -> None:
    closing = demo_day(FakeTSE(time_format=time_format))
    out = write_export([closing], tmp_path / "e")
    assert check_export(out) == []
    assert f";{time_format};".encode() in (out / "tse.csv").read_bytes()


def test_foreign_currency_cash(tmp_path: Path) -> None:
    day = DayBuilder(FakeTSE())
    pay = Payment("Bar", Decimal("10.00"), currency="CHF", foreign_amount=Decimal("9.50"))
    day.add(
        [
            Line(
                "1",
                "Kaffee",
                "Umsatz",
                (VatAmount(1, Decimal("10.00"), Decimal("8.40"), Decimal("1.60")),),
            )
        ],
        [pay],
    )
    closing = day.closing()
    out = write_export([closing], tmp_path / "e")
    assert check_export(out) == []
    data = (out / "cash_per_currency.csv").read_bytes()
    assert data.endswith(b";CHF;9,50\r\n")
    assert b"10.00:Bar:CHF" not in (out / "transactions_tse.csv").read_bytes()
    assert b"9.50:Bar:CHF" in (out / "transactions_tse.csv").read_bytes()


def test_export_created_in_another_offset(tmp_path: Path) -> None:
    closing = demo_day()
    summer = replace(closing, created=datetime(2026, 11, 20, 22, 0, tzinfo=BERLIN))
    assert check_export(write_export([summer], tmp_path / "e")) == []


def test_mandatory_fields(export: Path) -> None:
    edit(export, "cashpointclosing.csv", lambda b: b.replace(b";1234567890;", b";;"))
    edit(
        export,
        "transactions.csv",
        lambda b: b.replace(b";1;Erika;", b";;Erika;"),
    )
    edit(export, "transactions_tse.csv", lambda b: b.replace(b";TSE ausgefallen;", b";;"))
    found = {(f.code, f.file, f.column) for f in check_export(export)}
    assert ("E_CSV_MANDATORY", "cashpointclosing.csv", None) in found  # STNR or USTID
    assert ("E_CSV_MANDATORY", "transactions.csv", "BEDIENER_ID") in found
    # the outage receipt without its failure text now lacks every TSE field
    assert ("E_CSV_MANDATORY", "transactions_tse.csv", "TSE_TA_SIG") in found
    assert ("E_TSE_NO_SIGNATURE", "transactions_tse.csv", None) in found


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_export([CLOSING], tmp_path_factory.mktemp("pristine") / "e")


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_damaged_exports_give_findings_not_exceptions(pristine: Path, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(shutil.copytree(pristine, Path(tmp) / "e"))
        names = sorted(p.name for p in folder.iterdir())
        for _ in range(data.draw(st.integers(1, 3))):
            path = folder / data.draw(st.sampled_from(names))
            raw = path.read_bytes()
            start = data.draw(st.integers(0, len(raw)))
            length = data.draw(st.integers(0, 40))
            junk = data.draw(
                st.binary(max_size=20)
                | st.text(';",.\r\n0123456789ABZ-', max_size=20).map(str.encode)
            )
            path.write_bytes(raw[:start] + junk + raw[start + length :])
        findings = check_export(folder)
        assert all(isinstance(f, Finding) and f.code for f in findings)


def test_corrupted_zip_member_is_a_finding(tmp_path: Path) -> None:
    out = write_export([CLOSING], tmp_path / "e.zip")
    with zipfile.ZipFile(out) as archive:
        info = archive.getinfo("lines.csv")
    raw = bytearray(out.read_bytes())
    # flip bytes inside the compressed data of lines.csv (after its local header)
    at = info.header_offset + 30 + len(info.filename) + 5
    raw[at : at + 4] = bytes(b ^ 0xFF for b in raw[at : at + 4])
    out.write_bytes(bytes(raw))
    found = check_export(out)
    assert ("E_EXPORT_ZIP", str(out)) in {(f.code, f.file) for f in found}


def test_reference_date_as_date_or_time_stamp(export: Path) -> None:
    edit(
        export,
        "references.csv",
        lambda b: b.replace(
            b";;KASSE-0001;1;B00002", b";2026-11-20T23:00:00+01:00;KASSE-0001;1;B00002"
        ),
    )
    assert check_export(export) == []
    edit(
        export,
        "references.csv",
        lambda b: b.replace(
            b"Transaktion;;2026-11-20T23:00:00+01:00;", b"Transaktion;;2026-11-20;"
        ),
    )
    assert check_export(export) == []
    edit(export, "references.csv", lambda b: b.replace(b";2026-11-20;", b";20.11.2026;"))
    assert [f.code for f in check_export(export)] == ["E_CSV_DATE"]
