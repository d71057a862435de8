"""Export of hand-computed closings, read back with independent tools (csv, zipfile,
cryptography) and with check_export."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import zipfile
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from dsfinvk_support import CLIENT_ID, DayBuilder, FakeTSE, demo_day, finish_signed_data, line

from opentse.errors import FormatError
from opentse.formats.dsfinvk import tables as T
from opentse.formats.dsfinvk.check import check_export
from opentse.formats.dsfinvk.export import gdpdu_dtd, write_export, write_zip
from opentse.formats.dsfinvk.model import Payment


def read_csv(folder: Path, name: str) -> list[dict[str, str]]:
    text = (folder / name).read_bytes().decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


def amount(text: str) -> Decimal:
    assert "." not in text
    return Decimal(text.replace(",", "."))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "export"
    write_export([demo_day()], out)
    return out


def test_demo_day_passes_the_checker(demo: Path) -> None:
    assert check_export(demo) == []


def test_all_files_with_headers_and_crlf(demo: Path) -> None:
    names = {p.name for p in demo.iterdir()}
    assert names == {t.file for t in T.TABLES} | {"index.xml", "gdpdu-01-09-2004.dtd"}
    assert (demo / "gdpdu-01-09-2004.dtd").read_bytes() == gdpdu_dtd()
    for table in T.TABLES:
        data = (demo / table.file).read_bytes()
        assert data.split(b"\r\n")[0].decode() == ";".join(table.column_names)
        assert b"\n" not in data.replace(b"\r\n", b"")
    assert (demo / "slaves.csv").read_bytes().count(b"\r\n") == 1  # header only


def test_hand_computed_closing_totals(demo: Path) -> None:
    pay = {r["ZAHLART_TYP"]: amount(r["Z_ZAHLART_BETRAG"]) for r in read_csv(demo, "payment.csv")}
    # cash: 17.25 - 0.25 + 100.00 - 50.00 + 3.57 (the training receipt does not count)
    assert pay == {"Bar": Decimal("70.57"), "ECKarte": Decimal("0"), "Kreditkarte": Decimal("12")}
    (closing,) = read_csv(demo, "cashpointclosing.csv")
    assert closing["Z_SE_ZAHLUNGEN"] == "82,57"
    assert closing["Z_SE_BARZAHLUNGEN"] == "70,57"
    assert (closing["Z_START_ID"], closing["Z_ENDE_ID"]) == ("B00001", "B00009")
    assert closing["TAXONOMIE_VERSION"] == "2.4"
    cases = {
        (r["GV_TYP"], r["UST_SCHLUESSEL"]): (r["Z_UMS_BRUTTO"], r["Z_UMS_NETTO"], r["Z_UST"])
        for r in read_csv(demo, "businesscases.csv")
    }
    assert cases[("Umsatz", "1")] == ("11,90000", "10,00000", "1,90000")
    assert cases[("Umsatz", "2")] == ("18,92000", "17,69000", "1,23000")
    assert cases[("TrinkgeldAN", "5")] == ("2,00000", "2,00000", "0,00000")
    assert cases[("PfandRueckzahlung", "1")] == ("-0,25000", "-0,21000", "-0,04000")
    assert cases[("Auszahlung", "5")][0] == "-50,00000"
    (cash,) = read_csv(demo, "cash_per_currency.csv")
    assert (cash["ZAHLART_WAEH"], cash["ZAHLART_BETRAG_WAEH"]) == ("EUR", "70,57")


def test_receipt_rows(demo: Path) -> None:
    tx = {r["BON_ID"]: r for r in read_csv(demo, "transactions.csv")}
    assert tx["B00003"]["BON_STORNO"] == "1" and tx["B00001"]["BON_STORNO"] == "0"
    assert tx["B00001"]["UMS_BRUTTO"] == "17,25"
    assert tx["B00004"]["BON_TYP"] == "AVTraining"
    assert tx["B00001"]["BON_START"] == "2026-11-20T09:00:00+01:00"
    (ref,) = read_csv(demo, "references.csv")
    assert (ref["BON_ID"], ref["REF_TYP"], ref["REF_BON_ID"]) == ("B00003", "Transaktion", "B00002")
    lines = read_csv(demo, "lines.csv")
    assert lines[1]["ARTIKELTEXT"] == "Kaffee; groß"
    assert lines[1]["MENGE"] == "1,000" and lines[1]["STK_BR"] == "5,35000"
    tse = {r["BON_ID"]: r for r in read_csv(demo, "transactions_tse.csv")}
    assert tse["B00009"]["TSE_TA_FEHLER"] == "TSE ausgefallen"
    assert tse["B00009"]["TSE_TA_SIG"] == "" and tse["B00009"]["TSE_TANR"] == ""
    assert tse["B00001"]["TSE_VORGANGSDATEN"] == "Beleg^11.90_5.35_0.00_0.00_0.00^17.25:Bar"


def test_signatures_verify_from_the_csv_files_alone(demo: Path) -> None:
    """Rebuild the Finish log from tse.csv, cashregister.csv and transactions_tse.csv
    with an independent encoder and verify with cryptography."""
    (tse,) = read_csv(demo, "tse.csv")
    point = base64.b64decode(tse["TSE_PUBLIC_KEY"])
    assert tse["TSE_SERIAL"] == hashlib.sha256(point).hexdigest()
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    (register,) = read_csv(demo, "cashregister.csv")
    verified = 0
    for row in read_csv(demo, "transactions_tse.csv"):
        if not row["TSE_TA_SIG"]:
            continue
        signature = base64.b64decode(row["TSE_TA_SIG"])
        data = finish_signed_data(
            register["KASSE_SERIENNR"],
            row["TSE_VORGANGSDATEN"].encode(),
            row["TSE_TA_VORGANGSART"],
            int(row["TSE_TANR"]),
            bytes.fromhex(tse["TSE_SERIAL"]),
            int(row["TSE_TA_SIGZ"]),
            int(datetime.fromisoformat(row["TSE_TA_ENDE"]).timestamp()),
        )
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        verified += 1
    assert verified == 8


def test_certificate_pieces(demo: Path) -> None:
    (tse,) = read_csv(demo, "tse.csv")
    text = tse["TSE_ZERTIFIKAT_I"] + tse["TSE_ZERTIFIKAT_II"]
    assert len(tse["TSE_ZERTIFIKAT_I"]) == min(len(text), 1000)
    assert base64.b64decode(text) == demo_certificate(demo)


def demo_certificate(folder: Path) -> bytes:
    (tse,) = read_csv(folder, "tse.csv")
    return base64.b64decode(tse["TSE_ZERTIFIKAT_I"] + tse["TSE_ZERTIFIKAT_II"])


def test_long_certificate_gets_more_columns(tmp_path: Path) -> None:
    closing = demo_day()
    info = closing.tses[0]
    long_cert = info.certificate + b"\0" * 1600  # base64 longer than 2000 characters
    closing = replace(closing, tses=(replace(info, certificate=long_cert),))
    write_export([closing], tmp_path / "e")
    (tse,) = read_csv(tmp_path / "e", "tse.csv")
    pieces = [tse[T.certificate_column(n)] for n in (1, 2, 3)]
    assert [len(p) for p in pieces[:2]] == [1000, 1000]
    assert base64.b64decode("".join(pieces)) == long_cert
    assert b"<Name>TSE_ZERTIFIKAT_III</Name>" in (tmp_path / "e" / "index.xml").read_bytes()
    codes = {f.code for f in check_export(tmp_path / "e")}
    assert codes == {"E_TSE_CERTIFICATE"}  # columns accepted; the padded DER is not a cert


def test_zip_export_and_several_closings(tmp_path: Path) -> None:
    tse = FakeTSE()
    first = demo_day(tse)
    second = replace(demo_day(tse), z_nr=2, created=first.created.replace(day=21))
    out = write_export([first, second], tmp_path / "two.zip")
    with zipfile.ZipFile(out) as archive:
        assert set(archive.namelist()) >= {"index.xml", "gdpdu-01-09-2004.dtd", "lines.csv"}
        closings = archive.read("cashpointclosing.csv").decode().split("\r\n")
    assert len(closings) == 4 and closings[2].split(";")[2] == "2"
    assert check_export(out) == []
    assert not (tmp_path / "two.zip.part").exists()


def test_inconsistent_input_is_refused(tmp_path: Path) -> None:
    closing = demo_day()
    bad = replace(closing.receipts[0], payments=(Payment("Bar", Decimal("1.00")),))
    with pytest.raises(FormatError) as exc:
        write_export([replace(closing, receipts=(bad,))], tmp_path / "a")
    assert exc.value.code == "E_DSFINVK_MODEL"
    with pytest.raises(FormatError) as exc:
        write_export([], tmp_path / "b")
    assert exc.value.code == "E_DSFINVK_EMPTY"
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x").write_text("x")
    with pytest.raises(FormatError) as exc:
        write_export([closing], tmp_path / "c")
    assert exc.value.code == "E_DSFINVK_TARGET"


def test_too_long_value_fails_with_table_and_column(tmp_path: Path) -> None:
    closing = demo_day()
    closing = replace(closing, register=replace(closing.register, serial_number="S" * 71))
    with pytest.raises(FormatError) as exc:
        write_export([closing], tmp_path / "x.zip")
    assert exc.value.code == "E_DSFINVK_LENGTH"
    assert "cashregister.csv KASSE_SERIENNR" in exc.value.message
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "x.zip.part").exists()


def test_client_id_is_the_register_serial(demo: Path) -> None:
    (register,) = read_csv(demo, "cashregister.csv")
    assert register["KASSE_SERIENNR"] == CLIENT_ID


def test_zip_into_a_stream_and_published_index_layout(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    write_zip([demo_day()], buffer, keys=False)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        index = archive.read("index.xml")
        assert len(archive.namelist()) == 22
    assert b"VariablePrimaryKey" not in index and b"ForeignKey" not in index
    (tmp_path / "s.zip").write_bytes(buffer.getvalue())
    assert check_export(tmp_path / "s.zip") == []


def test_written_headers_are_the_official_column_lists(demo: Path) -> None:
    from test_dsfinvk_tables import OFFICIAL

    for file, columns in OFFICIAL.items():
        header = (demo / file).read_bytes().split(b"\r\n", 1)[0].decode()
        assert header.split(";") == columns, file


def test_long_order_is_verified_from_the_lines(tmp_path: Path) -> None:
    """Bestellung-V1 longer than TSE_VORGANGSDATEN's 1000 characters: the column stays
    empty and the checker rebuilds the signed order from lines.csv."""
    tse = FakeTSE()
    day = DayBuilder(tse)
    lines = [line(i, f"Gericht Nr. {i} mit Beilage", 1, "12.50") for i in range(1, 41)]
    order = "\r".join(f'1;"{ln.text}";12.50' for ln in lines)
    assert len(order) > 1000
    receipt = day.add(lines, [], "AVBestellung")
    start, end = receipt.start, receipt.end
    signed = tse.sign("Bestellung-V1", order, start, end)
    day.receipts[-1] = replace(receipt, tse=signed)
    out = write_export([day.closing()], tmp_path / "e")
    (row,) = read_csv(out, "transactions_tse.csv")
    assert row["TSE_TA_VORGANGSART"] == "Bestellung-V1" and row["TSE_VORGANGSDATEN"] == ""
    assert check_export(out) == []
