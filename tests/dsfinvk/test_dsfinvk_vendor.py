"""Real signatures of certified TSEs (fiskaly, shared/testdata/tse-exports) put into a
DSFinV-K export: check_export must verify them from the CSV files alone, i.e. its
Finish-log reconstruction matches what a real TSE signed (unixTime and utcTime)."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from opentse.formats import processdata as pd
from opentse.formats.dsfinvk.check import check_export
from opentse.formats.dsfinvk.export import export_tables, gdpdu_dtd, write_export, write_table
from opentse.formats.dsfinvk.indexxml import build_index_xml
from opentse.formats.dsfinvk.model import (
    CashRegister,
    Closing,
    Company,
    Line,
    Location,
    Payment,
    Receipt,
    Terminal,
    TseInfo,
    TseTransaction,
    VatAmount,
    VatRate,
)
from opentse.formats.tar import iter_members
from opentse.tr03151.codec import decode_log_message
from opentse.tr03151.logmessage import FINISH, START, TransactionLogData
from opentse.tr03151.logtime import TimeFormat
from opentse.tr03151.oids import algorithm_name

TESTDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata" / "tse-exports"
RATES = {
    1: Decimal("19.00"),
    2: Decimal("7.00"),
    3: Decimal("10.70"),
    4: Decimal("5.50"),
    5: Decimal("0.00"),
}
ARCHIVES = [
    "fiskaly/TSE_Export_12f97c6a-2c23-4dfe-a04d-2d94342789d2_202109171415.tar",
    "fiskaly/TSSProtokoll_GF_2021-09-28_11_07_59.tar",
    "fiskaly/TSSProtokoll_WB_2021-09-27_12_09_56.tar",
]


def _vat(key: int, gross: Decimal) -> VatAmount:
    rate = RATES[key]
    net = (gross * 100 / (100 + rate)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return VatAmount(key, gross, net, gross - net)


def _closing_from_archive(path: Path) -> tuple[Closing, int]:
    logs = []
    certificates: dict[str, bytes] = {}
    for member in iter_members(path):
        if member.name.endswith(".log"):
            logs.append(decode_log_message(member.data))
        elif "_X509." in member.name:
            data = member.data
            cert = (
                x509.load_pem_x509_certificate(data)
                if data.startswith(b"-----")
                else x509.load_der_x509_certificate(data)
            )
            point = cert.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
            certificates[hashlib.sha256(point).hexdigest()] = cert.public_bytes(
                serialization.Encoding.DER
            )
    finishes = [
        m
        for m in logs
        if isinstance(m.certified, TransactionLogData) and m.certified.operation_type == FINISH
    ]
    client = Counter(
        m.certified.client_id
        for m in finishes  # type: ignore[union-attr]
    ).most_common(1)[0][0]
    starts = {
        m.certified.transaction_number: m.log_time.as_datetime()
        for m in logs
        if isinstance(m.certified, TransactionLogData) and m.certified.operation_type == START
    }
    first = finishes[0]
    serial = first.serial_number.hex()
    cert_der = certificates[serial]
    point = (
        x509.load_der_x509_certificate(cert_der)
        .public_key()
        .public_bytes(  # type: ignore[union-attr]
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )
    time_format = {
        TimeFormat.UNIX: "unixTime",
        TimeFormat.UTC: "utcTimeWithSeconds",
        TimeFormat.GENERALIZED: "generalizedTime",
    }[first.log_time.format]
    tse = TseInfo(1, point, cert_der, algorithm_name(first.signature_algorithm), time_format)
    receipts: list[Receipt] = []
    terminals: dict[str, Terminal] = {}
    for msg in finishes:
        data = msg.certified
        assert isinstance(data, TransactionLogData)
        terminal = ""
        if data.client_id != client:
            terminal = f"T{len(terminals) + 1}"
            terminal = terminals.setdefault(
                data.client_id, Terminal(terminal, data.client_id)
            ).terminal_id
        text = data.process_data.decode("utf-8")
        end = msg.log_time.as_datetime()
        start = starts.get(data.transaction_number, end)
        if data.process_type == pd.PROCESS_TYPE_KASSENBELEG:
            beleg = pd.parse_kassenbeleg(text)
            lines = tuple(
                Line(str(i), f"Umsatz {i}", "Umsatz", (_vat(i, gross),), Decimal(1), gross)
                for i, gross in enumerate(beleg.gross, start=1)
                if gross
            ) or (Line("1", "Null", "Umsatz", (_vat(5, Decimal("0.00")),)),)
            payments = tuple(Payment(p.kind, p.amount) for p in beleg.payments)
            bon_typ = beleg.bon_typ
        elif data.process_type == pd.PROCESS_TYPE_BESTELLUNG:
            lines = tuple(
                Line(
                    str(i),
                    o.text,
                    "Umsatz",
                    (_vat(1, Decimal(o.quantity) * o.price_per_unit),),
                    Decimal(o.quantity),
                    o.price_per_unit,
                )
                for i, o in enumerate(pd.parse_bestellung(text), start=1)
            )
            payments, bon_typ = (), "AVBestellung"
        else:
            continue
        transaction = TseTransaction(
            1,
            data.transaction_number,
            start,
            end,
            data.process_type,
            msg.signature_counter,
            msg.signature_value,
            text,
        )
        n = len(receipts) + 1
        receipts.append(
            Receipt(
                f"R{n}",
                n,
                bon_typ,
                start,
                end,
                "1",
                lines,
                payments,
                transaction,
                terminal_id=terminal,
            )
        )
    day = receipts[-1].end
    closing = Closing(
        client,
        datetime(day.year, day.month, day.day, 23, 59, tzinfo=UTC),
        1,
        Company("Test GmbH", "Weg 1", "10115", "Berlin", tax_number="1"),
        Location("Laden", "Weg 1", "10115", "Berlin"),
        CashRegister(client),
        (tse,),
        tuple(VatRate(k, r) for k, r in RATES.items()),
        tuple(receipts),
        terminals=tuple(terminals.values()),
    )
    return closing, len(receipts)


@pytest.mark.parametrize("archive", ARCHIVES)
def test_real_tse_signatures_verify_from_the_csv_files(archive: str, tmp_path: Path) -> None:
    path = TESTDATA / archive
    if not path.is_file():
        pytest.skip(f"vendor test data not found at {path} (shared/testdata beside the repo)")
    closing, n = _closing_from_archive(path)
    assert n >= 3
    out = write_export([closing], tmp_path / "e")
    assert check_export(out) == []
    # a changed Finish counter no longer matches the real signature
    lines = (out / "transactions_tse.csv").read_bytes().split(b"\r\n")
    fields = lines[1].split(b";")
    fields[9] = str(int(fields[9]) + 1).encode()  # the Finish counter
    lines[1] = b";".join(fields)
    (out / "transactions_tse.csv").write_bytes(b"\r\n".join(lines))
    found = [(f.code, f.line) for f in check_export(out)]
    assert found == [("E_SIGNATURE_INVALID", 2)]


def test_dtrust_signatures_with_ber_process_data(tmp_path: Path) -> None:
    """D-Trust signs processData BER-encoded (indefinite length) and P-384/SHA-384; its
    receipts also pay more than the gross total (tips outside the VAT slots), so the
    export is written without the model check and must show only that difference."""
    path = TESTDATA / "dtrust/54312d72-d3ed-413c-9d32-7f457576e4c8.tar"
    if not path.is_file():
        pytest.skip(f"vendor test data not found at {path} (shared/testdata beside the repo)")
    closing, n = _closing_from_archive(path)
    assert n == 6 and len(closing.terminals) >= 3
    out = tmp_path / "e"
    out.mkdir()
    tables = export_tables([closing])
    (out / "index.xml").write_bytes(build_index_xml(tables))
    (out / "gdpdu-01-09-2004.dtd").write_bytes(gdpdu_dtd())
    for table in tables:
        with (out / table.file).open("wb") as stream:
            write_table(stream, table, [closing])
    assert {f.code for f in check_export(out)} == {"E_SUM_PAYMENTS"}
    # and the signatures really are checked: a changed counter is found
    lines = (out / "transactions_tse.csv").read_bytes().split(b"\r\n")
    fields = lines[1].split(b";")
    fields[9] = str(int(fields[9]) + 1).encode()
    lines[1] = b";".join(fields)
    (out / "transactions_tse.csv").write_bytes(b"\r\n".join(lines))
    assert "E_SIGNATURE_INVALID" in {f.code for f in check_export(out)}
