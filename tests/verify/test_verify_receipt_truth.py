"""What verify-receipt and verify say is exactly what is true (an auditor's findings):
the start time is signed by the Start log (not by the receipt's own signature) and is
compared with it in the TAR; a difference names both values and where each came
from; a Bon's processData is said to come from the rows it really came from (an
order's from its lines); whole-number CSV columns say "whole number"; verify counts
its findings per severity. Against a real shop: embedded TSE, pos sell/order, the
TAR export and the DSFinV-K export, read back by the CLI."""

from __future__ import annotations

import json
import tarfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from receipt_support import Shop, finish_receipts, run
from typer.testing import CliRunner
from verify_data import qr_vectors, vendor_export

from opentse.cli.main import build_app
from opentse.errors import FormatError
from opentse.formats.dsfinvk.check import check_export_bons
from opentse.formats.dsfinvk.csvwriter import parse_number
from opentse.formats.qr import format_qr_time, parse_qr_payload
from opentse.installation import Installation
from opentse.testing import ready_tse
from opentse.tr03151.logmessage import FINISH, START, TransactionLogData
from opentse.verify.crosscheck_read import read_tar_transactions
from opentse.verify.receipt import verify_receipt
from opentse.verify.receipt_match import against_dsfinvk, against_tse_export
from opentse.verify.synthetic import LogSpec, SyntheticTSE

CLIENT = "KASSE-T"
VECTORS = qr_vectors()


class TruthShop(Shop):
    zip: Path


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> TruthShop:
    shop = TruthShop(tmp_path_factory.mktemp("truth"))
    with Installation.open(shop.data) as inst:
        ready_tse(inst.service, "t", client_id=CLIENT, logout=True)
    escpos = shop.root / "sale.bin"
    code, out = run("pos", "sell", *shop.base(CLIENT), "--line", "Kaffee:2:2.50:1", "--pay",
                    "bar:5.00", "--json", "--escpos", str(escpos))  # fmt: skip
    assert code == 0, out
    shop.text["sale"] = json.loads(out)["qr_code_data"]
    shop.pos("order", "order", CLIENT, "--line", "Suppe:1:4.50:1")
    shop.close(CLIENT, "5.00")
    shop.export_tar()
    shop.zip = shop.export_dsfinvk(CLIENT, "dk.zip")
    return shop


def _with_start(text: str, start: datetime) -> str:
    fields = text.split(";")
    fields[-6] = format_qr_time(start)  # startTime: the 7th of 12, counted from the end
    return ";".join(fields)


# --- 1. the start time ----------------------------------------------------------------


@pytest.mark.skipif(not VECTORS, reason="shared/spec/tr03151.md absent")
def test_the_ok_finding_says_who_signs_the_start_time() -> None:
    """The start time IS signed, by the Start log; the receipt's signature (the
    Finish log's) does not cover it. "not signed at all" was wrong."""
    (ok,) = verify_receipt(VECTORS[0]).findings
    assert "not signed at all" not in ok.message
    assert "Start log signs" in ok.message and "Finish log" in ok.message
    assert "--tse-export compares it" in ok.message
    fields = VECTORS[0].split(";")
    fields[4] = str(int(fields[4]) + 7)  # a transaction number no neighbour explains
    failed = verify_receipt(";".join(fields)).findings[-1]
    assert failed.code == "E_RECEIPT_SIGNATURE"
    assert "startTime is not signed" not in failed.message
    assert "the Start log signs it" in failed.message


def test_a_receipt_whose_start_is_not_the_start_logs_is_an_error(shop: TruthShop) -> None:
    """The receipt's own signature still verifies (it does not cover the start), but
    the TAR's Start log signed another start: an error naming both times."""
    sale = parse_qr_payload(shop.text["sale"])
    moved = sale.start_time - timedelta(minutes=47)
    code, out = run("verify-receipt", _with_start(shop.text["sale"], moved), "--tse-export",
                    str(shop.tar), "--json")  # fmt: skip
    assert code == 1, out
    findings = json.loads(out)["findings"]
    assert [f["code"] for f in findings] == [
        "I_RECEIPT_OK",
        "I_RECEIPT_IN_TSE_EXPORT",
        "E_RECEIPT_TSE_EXPORT_DIFFERS",
    ], out
    start = findings[2]
    assert start["fields"] == ["startTime"]
    signed = format_qr_time(sale.start_time.replace(microsecond=0))  # the TAR: whole seconds
    assert format_qr_time(moved) in start["message"] and signed in start["message"]
    assert "Start log" in start["message"]
    assert "not its start time" in findings[1]["message"]


def test_a_matching_start_is_said_to_be_compared(shop: TruthShop) -> None:
    code, out = run("verify-receipt", shop.text["sale"], "--tse-export", str(shop.tar), "--json")
    assert code == 0, out
    in_tar = json.loads(out)["findings"][1]
    assert in_tar["code"] == "I_RECEIPT_IN_TSE_EXPORT"
    assert "its Start log's logTime is the receipt's start time" in in_tar["message"]


def test_a_tar_without_the_start_log_says_the_start_was_not_compared(
    shop: TruthShop, tmp_path: Path
) -> None:
    number = parse_qr_payload(shop.text["sale"]).transaction_number
    cut = tmp_path / "no-start.tar"
    with tarfile.open(shop.tar) as source, tarfile.open(cut, "w") as target:
        for member in source.getmembers():
            if f"_No-{number}_Start" not in member.name:
                target.addfile(member, source.extractfile(member))
    moved = _with_start(shop.text["sale"], datetime(2020, 1, 1, tzinfo=UTC))
    code, out = run("verify-receipt", moved, "--tse-export", str(cut), "--json")
    assert code == 0, out  # nothing to compare the start with: not an error
    in_tar = json.loads(out)["findings"][1]["message"]
    assert "the start time is not compared" in in_tar and "Start log is not in" in in_tar


@pytest.mark.parametrize(
    "archive",
    [
        "fiskaly/TSSProtokoll_WB_2021-09-27_12_09_56.tar",  # unixTime
        "dtrust/54312d72-d3ed-413c-9d32-7f457576e4c8.tar",  # BER processData
    ],
)
def test_vendor_receipt_start_times_are_compared_with_their_start_logs(archive: str) -> None:
    """Real TSEs' Start logs: a receipt with its Start log's time is found equal, one
    a second earlier is an error naming both."""
    tar = vendor_export(archive)
    receipts = finish_receipts(tar)
    assert len(receipts) >= 5
    for text, start in [(r.text, r.start) for r in receipts[:2]]:
        code, out = run("verify-receipt", text, "--tse-export", str(tar), "--json")
        assert code == 0, out
        assert "Start log's logTime is the receipt's start time" in out
        earlier = start.replace(microsecond=0) - timedelta(seconds=1)
        code, out = run("verify-receipt", _with_start(text, earlier), "--tse-export", str(tar),
                        "--json")  # fmt: skip
        assert code == 1, out
        (differs,) = [f for f in json.loads(out)["findings"] if f["fields"] == ["startTime"]]
        assert format_qr_time(earlier) in differs["message"]
        assert format_qr_time(start.replace(microsecond=0)) in differs["message"]


# --- 2. both values, and where each came from -----------------------------------------


def test_a_bon_that_differs_names_both_values(shop: TruthShop) -> None:
    payload = parse_qr_payload(shop.text["sale"])
    _findings, _summary, bons = check_export_bons(shop.zip)
    (bon,) = [b for b in bons if b.number == str(payload.transaction_number)]
    counter = payload.signature_counter
    changed = replace(bon, counter=str(counter + 7), process_type="Bestellung-V1")
    (finding,) = against_dsfinvk(payload, [changed], "dk.zip")
    assert finding.code == "E_RECEIPT_DSFINVK_DIFFERS"
    assert f"TSE_TA_SIGZ {counter + 7}, the receipt's signature counter {counter}" in (
        finding.message
    )
    assert "TSE_TA_VORGANGSART 'Bestellung-V1', the receipt's processType 'Kassenbeleg-V1'" in (
        finding.message
    )
    other_sig = replace(bon, signature="AAAA")
    (finding,) = against_dsfinvk(payload, [other_sig], "dk.zip")
    assert "TSE_TA_SIG AAAA, the receipt's signature " in finding.message
    assert payload.to_text().split(";")[-2] in finding.message


def test_a_tar_transaction_that_differs_names_both_values(shop: TruthShop) -> None:
    payload = parse_qr_payload(shop.text["sale"])
    (tx,) = [t for t in read_tar_transactions(shop.tar) if t.number == payload.transaction_number]
    assert tx.end is not None
    changed = replace(tx, counter=999, end=tx.end + 60, process_type="Bestellung-V1",
                      signature=b"\x01" * 64)  # fmt: skip
    (finding,) = against_tse_export(payload, [changed], "tse.tar")
    message = finding.message
    assert f"signature counter 999, the receipt {payload.signature_counter}" in message
    later = format_qr_time(datetime.fromtimestamp(tx.end + 60, UTC))
    assert f"logTime {later}, the receipt {format_qr_time(payload.log_time)}" in message
    assert "processType 'Bestellung-V1', the receipt 'Kassenbeleg-V1'" in message
    assert "AQEB" in message and payload.to_text().split(";")[-2] in message
    assert set(finding.fields) == {"signature", "signatureCounter", "logTime", "processType"}


def test_tar_and_receipt_times_are_written_alike(shop: TruthShop) -> None:
    """One formatter for both times of a message: the TAR's (whole seconds) with
    ``.000`` as the receipt's, and a year before 1000 with four digits (strftime on
    glibc wrote ``999-...``, which reads as no time at all)."""
    payload = parse_qr_payload(shop.text["sale"])
    (tx,) = [t for t in read_tar_transactions(shop.tar) if t.number == payload.transaction_number]
    early = int(datetime(999, 3, 4, 5, 6, 7, tzinfo=UTC).timestamp())
    (finding,) = against_tse_export(payload, [replace(tx, end=early)], "tse.tar")
    assert f"logTime 0999-03-04T05:06:07.000Z, the receipt {format_qr_time(payload.log_time)}" in (
        finding.message
    )
    assert tx.start is not None
    moved = replace(payload, start_time=payload.start_time + timedelta(seconds=5))
    findings = against_tse_export(moved, [tx], "tse.tar")
    start_words = findings[-1].message
    assert format_qr_time(datetime.fromtimestamp(tx.start, UTC)) in start_words
    assert format_qr_time(datetime.fromtimestamp(tx.start, UTC)).endswith(".000Z")


# --- 3. what the Bon's processData was made from --------------------------------------


def test_an_order_is_compared_by_its_lines_a_sale_by_its_amounts(shop: TruthShop) -> None:
    words = {}
    for name in ("sale", "order"):
        code, out = run("verify-receipt", shop.text[name], "--dsfinvk", str(shop.zip), "--json")
        assert code == 0, out
        (bon,) = [f for f in json.loads(out)["findings"] if f["code"] == "I_RECEIPT_IN_DSFINVK"]
        words[name] = bon["message"]
    assert "order lines (lines.csv: MENGE, ARTIKELTEXT, STK_BR)" in words["order"]
    assert "amounts per VAT rate" not in words["order"] and "payments" not in words["order"]
    assert "amounts per VAT rate" in words["sale"] and "payments" in words["sale"]


def test_an_order_that_differs_says_its_lines_give_another(shop: TruthShop) -> None:
    payload = parse_qr_payload(shop.text["order"])
    forged = replace(payload, process_data=payload.process_data.replace("4.50", "3.50"))
    _findings, _summary, bons = check_export_bons(shop.zip)
    (finding,) = against_dsfinvk(forged, bons, "dk.zip")
    assert finding.fields == ("processData",)
    assert "from its order lines" in finding.message and "amounts per VAT" not in finding.message
    assert "4.50" in finding.message and "3.50" in finding.message


# --- 4. whole-number columns ----------------------------------------------------------


@pytest.mark.parametrize("text", ["x17", "1,5", "1.000"])
def test_a_whole_number_column_says_whole_number(text: str) -> None:
    with pytest.raises(FormatError) as info:
        parse_number(text, 0)
    assert "whole number" in info.value.message and "decimal comma" not in info.value.message
    assert text in info.value.message


def test_a_money_column_still_says_decimal_comma() -> None:
    with pytest.raises(FormatError) as info:
        parse_number("x17", 2)
    assert info.value.message == "'x17' is not a number with decimal comma"
    assert info.value.code == "E_CSV_NUMBER"


# --- 5. verify counts per severity ----------------------------------------------------


def test_verify_counts_its_findings_per_severity() -> None:
    tar = str(vendor_export("faulty/ThreeMissingAreasOfSignatureCounter.tar"))
    code, out = run("verify", tar, "--json")
    assert code == 1, out
    report = json.loads(out)
    severities = [f["severity"] for f in report["findings"]]
    assert report["errors"] == severities.count("error") >= 3
    assert report["warnings"] == severities.count("warning")
    assert report["info_findings"] == severities.count("info")
    assert isinstance(report["info"], list)  # the info.csv list is kept
    code, text = run("verify", tar)
    assert code == 1
    errors, warnings = report["errors"], report["warnings"]
    words = f"NOT OK: {errors} errors, {warnings} warning{'' if warnings == 1 else 's'}"
    assert text.strip().splitlines()[-1].startswith(words), text[-300:]


def test_verify_of_a_clean_export_counts_too(shop: TruthShop) -> None:
    code, out = run("verify", str(shop.tar), "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["errors"] == 0
    code, text = run("verify", str(shop.tar))
    assert code == 0
    last = text.strip().splitlines()[-1]
    warnings = report["warnings"]
    assert last.startswith(f"OK: no errors ({warnings} warning"), last


# --- 6. the receipt forms -------------------------------------------------------------


def test_an_escpos_print_job_is_named_as_such(shop: TruthShop) -> None:
    result = CliRunner().invoke(
        build_app(), ["verify-receipt", "--image", str(shop.root / "sale.bin"), "--json"]
    )
    assert result.exit_code == 2, result.output
    message = json.loads(result.stdout)["unreadable"]["message"]
    assert "ESC/POS printer bytes are not read" in message and "cannot identify" not in message


def test_the_html_report_has_the_same_verdict_with_counts(tmp_path: Path) -> None:
    tar = str(vendor_export("faulty/ThreeMissingAreasOfSignatureCounter.tar"))
    html = tmp_path / "report.html"
    code, out = run("verify", tar, "--html", str(html))
    assert code == 1, out
    verdict = out.strip().splitlines()[-1]
    assert verdict.startswith("NOT OK: ") and "error" in verdict
    assert f'<p class="verdict bad">\n{verdict}\n</p>' in html.read_text(encoding="utf-8")


def test_a_receipt_not_in_the_dsfinvk_export_says_what_the_export_holds(
    shop: TruthShop, tmp_path: Path
) -> None:
    """Another TSE's receipt (another register's export was handed over) and a number
    the export's Bons of that TSE do not have (a Bon left out) read differently."""
    _findings, _summary, bons = check_export_bons(shop.zip)
    numbers = sorted(int(b.number) for b in bons)
    payload = parse_qr_payload(shop.text["sale"])
    (gap,) = against_dsfinvk(replace(payload, transaction_number=numbers[-1] + 5), bons, "dk.zip")
    assert gap.code == "E_RECEIPT_NOT_IN_DSFINVK"
    assert f"have TSE_TANR {numbers[0]} to {numbers[-1]}" in gap.message
    data = tmp_path / "other"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "o", client_id=CLIENT, logout=True)
    code, out = run("pos", "sell", "--data", str(data), "--tss", "o", "--client", CLIENT,
                    "--line", "Tee:1:1.80:1", "--pay", "bar:1.80", "--json")  # fmt: skip
    assert code == 0, out
    other = json.loads(out)["qr_code_data"]
    code, out = run("verify-receipt", other, "--dsfinvk", str(shop.zip), "--json")
    assert code == 1, out
    (finding,) = [f for f in json.loads(out)["findings"] if f["code"] == "E_RECEIPT_NOT_IN_DSFINVK"]
    assert "none of its Bons is of that TSE" in finding["message"]
    assert f"{bons[0].serial[:16]}..." in finding["message"]


@pytest.mark.skipif(not VECTORS, reason="shared/spec/tr03151.md absent")
def test_the_receipt_table_says_which_log_each_time_is() -> None:
    code, out = run("verify-receipt", VECTORS[0])
    assert code == 0, out
    assert "Transaction start (Start log time)" in out
    assert "Transaction end (Finish log time)" in out


# --- 7. a Finish log that signs more than a QR code holds ----------------------------


def test_a_finish_log_signing_more_than_the_qr_holds_is_named() -> None:
    """The faulty archive's Finish logs hold additionalExternalData [4] and processData
    in two BER pieces: the receipt made from each cannot verify from its QR code. The
    QR check alone says that may be why; --tse-export names both, with the octets, and
    that the receipt's signature verifies over the TAR's log (said nothing before)."""
    tar = vendor_export("faulty/inconsistent_certificates.tar")
    receipts = finish_receipts(tar)
    assert len(receipts) == 3
    for receipt in receipts:
        data = receipt.message.certified
        assert isinstance(data, TransactionLogData) and data.additional_external_data
        code, out = run("verify-receipt", receipt.text, "--tse-export", str(tar), "--json")
        assert code == 1, out
        findings = {f["code"]: f for f in json.loads(out)["findings"]}
        assert set(findings) == {"E_RECEIPT_SIGNATURE", "I_RECEIPT_IN_TSE_EXPORT",
                                 "E_RECEIPT_EXTRA_SIGNED_DATA"}, out  # fmt: skip
        assert "additionalExternalData [4]" in findings["E_RECEIPT_SIGNATURE"]["message"]
        extra = findings["E_RECEIPT_EXTRA_SIGNED_DATA"]
        words = extra["message"]
        counter = receipt.message.signature_counter
        assert f"(signature counter {counter})" in words
        external = data.additional_external_data
        assert f"additionalExternalData [4]: {len(external)} octets, 'additionalData', hex " \
            f"{external.hex()}" in words  # fmt: skip
        assert "processData [2] as a constructed string of indefinite length in 2 piece(s)" in (
            words
        )
        assert "verifies over that Finish log as the TAR holds it" in words
        assert extra["fields"] == ["signature"]


def test_an_external_data_finish_log_of_our_making(tmp_path: Path) -> None:
    """additionalExternalData alone (processData in one piece), written by the codec
    and signed by a synthetic TSE: named, the receipt's signature verifies over the
    TAR's log; a tampered receipt is named as differing and as not verifying there."""
    tse = SyntheticTSE()
    t0 = 1_700_000_000
    sale = b"Beleg^1.00_0.00_0.00_0.00_0.00^1.00:Bar"
    finish = TransactionLogData(FINISH, "K1", sale, "Kassenbeleg-V1", 1, b"\x00\xff")
    start = TransactionLogData(START, "K1", b"", "Kassenbeleg-V1", 1)
    logs = [LogSpec(start, 1, t0), LogSpec(finish, 2, t0 + 3)]
    tar = tmp_path / "ext.tar"
    tse.write(tar, logs)
    (receipt,) = finish_receipts(tar)
    code, out = run("verify-receipt", receipt.text, "--tse-export", str(tar), "--json")
    assert code == 1, out
    (extra,) = [
        f for f in json.loads(out)["findings"] if f["code"] == "E_RECEIPT_EXTRA_SIGNED_DATA"
    ]
    assert "additionalExternalData [4]: 2 octets, hex 00ff." in extra["message"]
    assert "processData [2]" not in extra["message"]
    assert "verifies over that Finish log as the TAR holds it" in extra["message"]
    forged = replace(
        parse_qr_payload(receipt.text), process_data="Beleg^9.00_0.00_0.00_0.00_0.00^9.00:Bar"
    )
    code, out = run("verify-receipt", forged.to_text(), "--tse-export", str(tar), "--json")
    codes = [f["code"] for f in json.loads(out)["findings"]]
    assert codes == ["E_RECEIPT_SIGNATURE", "E_RECEIPT_TSE_EXPORT_DIFFERS",
                     "E_RECEIPT_EXTRA_SIGNED_DATA"], out  # fmt: skip
    (extra,) = [
        f for f in json.loads(out)["findings"] if f["code"] == "E_RECEIPT_EXTRA_SIGNED_DATA"
    ]
    assert "but the receipt shows other values than that log" in extra["message"]
    assert "shows what the TSE signed" not in extra["message"]
    payload = parse_qr_payload(receipt.text)
    other = replace(payload, signature=bytes(64 - len(payload.signature)) + payload.signature[::-1])
    code, out = run("verify-receipt", other.to_text(), "--tse-export", str(tar), "--json")
    assert code == 1 and "does not verify over that Finish log as the TAR holds it" in out, out


def test_verify_names_finish_logs_whose_receipts_cannot_verify(tmp_path: Path) -> None:
    """opentse verify says which Finish logs sign more than a QR code holds: the
    faulty archive's three ([4] and processData in two pieces) and a synthetic
    TSE's [6]; the real vendors' Finish logs (D-Trust's one-piece BER included) and
    a shop's own export have none (said nothing before)."""
    from opentse.verify.report import verify_exports

    tar = vendor_export("faulty/inconsistent_certificates.tar")
    found = [
        f
        for f in verify_exports([tar]).to_json()["findings"]
        if f["code"] == "W_RECEIPT_NOT_VERIFIABLE"
    ]
    assert sorted(f["file"] for f in found) == sorted(r.file for r in finish_receipts(tar))
    for finding in found:
        assert "additionalExternalData [4] (14 octets)" in finding["message"]
        assert "in 2 piece(s) of 14 + 11 octets" in finding["message"]
        assert finding["severity"] == "warning"
    tse = SyntheticTSE()
    sale = b"Beleg^1.00_0.00_0.00_0.00_0.00^1.00:Bar"
    finish = TransactionLogData(FINISH, "K1", sale, "Kassenbeleg-V1", 1, None, b"\x01")
    start = TransactionLogData(START, "K1", b"", "Kassenbeleg-V1", 1)
    own = tmp_path / "int.tar"
    tse.write(own, [LogSpec(start, 1, 1_700_000_000), LogSpec(finish, 2, 1_700_000_003)])
    (finding,) = [
        f
        for f in verify_exports([own]).to_json()["findings"]
        if f["code"] == "W_RECEIPT_NOT_VERIFIABLE"
    ]
    assert "additionalInternalData [6] (1 octets; TR-03153 does not allow it)" in finding[
        "message"
    ] and "processData" not in finding["message"]  # fmt: skip
    for clean in ("dtrust/54312d72-d3ed-413c-9d32-7f457576e4c8.tar",
                  "fiskaly/TSSProtokoll_WB_2021-09-27_12_09_56.tar"):  # fmt: skip
        codes = [f["code"] for f in verify_exports([vendor_export(clean)]).to_json()["findings"]]
        assert "W_RECEIPT_NOT_VERIFIABLE" not in codes
