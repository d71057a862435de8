"""``opentse pos sell|status|daily`` through typer's CliRunner on an embedded TSE."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.installation import Installation
from opentse.testing import ADMIN_PIN, ready_tse
from opentse.verify.receipt import verify_receipt

APP = build_app()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.output


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    with Installation.open(folder) as inst:
        ready_tse(inst.service, "tse-pos", client_id="POS-1", logout=True)
    return folder


def test_sell_json_qr_pdf_and_status(data: Path, tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    qr, pdf = tmp_path / "qr.png", tmp_path / "receipt.pdf"
    code, out = run(
        "pos", "sell", "--data", str(data), "--tss", "tse-pos", "--client", "POS-1",
        "--journal", str(journal), "--line", "Kaffee:2:2.50:1", "--line", "Brezel:1:0.90:2",
        "--pay", "bar:10.00", "--json", "--qr", str(qr), "--pdf", str(pdf),
    )  # fmt: skip
    assert code == 0, out
    body = json.loads(out)
    assert body["tse_failed"] is False
    assert body["process_data"] == "Beleg^5.00_0.90_0.00_0.00_0.00^5.90:Bar"
    assert isinstance(body["transaction_number"], int) and body["signature_counter"] > 0
    assert verify_receipt(body["qr_code_data"]).ok
    assert "Rückgeld" in body["receipt_text"] and "4,10" in body["receipt_text"]
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.read_bytes())))
    assert decoded[0].text == body["qr_code_data"]
    assert pdf.read_bytes().startswith(b"%PDF")
    code, out = run(
        "pos", "status", "--data", str(data), "--tss", "tse-pos", "--client", "POS-1",
        "--journal", str(journal), "--json",
    )  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["status"] == "green"


def test_sell_while_tse_unusable_prints_marked_receipt(data: Path, tmp_path: Path) -> None:
    """A TSE that cannot sign now (here: created, not initialized yet) is an outage:
    the sale is booked and printed "TSE ausgefallen", exit 0, the journal counts it."""
    with Installation.open(data) as inst:
        inst.service.create_tse("tse-new")
    journal = tmp_path / "journal.db"
    args = ["--data", str(data), "--tss", "tse-new", "--client", "POS-1"]
    args += ["--journal", str(journal)]
    for _ in range(3):
        code, out = run(
            "pos", "sell", *args, "--line", "Tee:1:1.80:1", "--pay", "karte:1.80", "--width", "32"
        )
        assert code == 0, out
        assert "TSE ausgefallen" in out and "TSE-Transaktion" not in out
    code, out = run("pos", "status", *args, "--json", "--no-check")
    status = json.loads(out)
    assert status["status"] == "red" and status["consecutive_failures"] == 3
    assert "Support" in status["message"]
    assert len(status["outages"][0]["unsigned_receipts"]) == 3
    code, out = run("pos", "daily", *args, "--note", "Kasse ohne TSE")
    assert code == 0 and "unsigned receipts 3" in out


@pytest.mark.parametrize(
    ("tss", "client", "code_text"),
    [
        ("tse-pos", "UNKNOWN-1", "E_REGISTER_CLIENT_UNKNOWN"),
        ("no-such-tse", "POS-1", "E_REGISTER_TSS_UNKNOWN"),
    ],
)
def test_sell_for_a_register_the_tse_does_not_know_is_refused(
    data: Path, tmp_path: Path, tss: str, client: str, code_text: str
) -> None:
    """A client id or TSE id the TSE does not know is a configuration error, not an
    outage: the sale was booked "TSE ausgefallen" with exit 0, so a till with a typo
    sold unsigned all day. Refused before anything is booked or any file is made."""
    journal = tmp_path / "journal.db"
    args = ["--data", str(data), "--tss", tss, "--client", client, "--journal", str(journal)]
    code, out = run("pos", "sell", *args, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80")
    assert code == 1, out
    assert code_text in out and "TSE ausgefallen" not in out
    assert not journal.exists()  # nothing booked, no journal of a register that isn't
    assert not (data / "pos").exists()
    code, out = run("pos", "status", *args)  # status says the same
    assert code == 1 and code_text in out


def test_sell_for_a_register_deregistered_since_is_refused_and_nothing_lost(
    data: Path, tmp_path: Path
) -> None:
    """The register's client was deregistered after it sold: the next sale is refused
    before it is booked (exit 1, E_REGISTER_CLIENT_UNKNOWN), the journal records no
    outage; what was sold before stays booked and signed."""
    args = ["--data", str(data), "--tss", "tse-pos", "--client", "POS-1"]
    args += ["--journal", str(tmp_path / "journal.db")]
    code, out = run("pos", "sell", *args, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80", "--json")
    assert code == 0 and json.loads(out)["tse_failed"] is False
    with Installation.open(data) as inst:
        inst.service.authenticate("tse-pos", ADMIN_PIN)
        inst.service.deregister_client("tse-pos", "POS-1")
        inst.service.logout("tse-pos")
    code, out = run("pos", "sell", *args, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80")
    assert code == 1 and "E_REGISTER_CLIENT_UNKNOWN" in out and "is deregistered" in out
    code, out = run("pos", "status", *args, "--json", "--no-check")
    status = json.loads(out)
    assert status["status"] == "green" and status["outages"] == []


def test_a_sale_the_tse_refuses_midway_is_booked_flagged_and_fails_the_command(
    tmp_path: Path,
) -> None:
    """Deregistered between connect and the sale (the library's Register.sell): the
    sale is booked unsigned (nothing lost) and flagged config_error, not a plain
    outage; pos prints the receipt and exits 1 for it (_fail_on_config_error)."""
    from opentse.register import EmbeddedBackend, OutageLog, Register, RegisterConfig, Sale, Seller
    from opentse.register.backends import RegisterNotAccepted
    from opentse.register.books import Books

    with Installation.open(tmp_path / "d") as inst:
        ready_tse(inst.service, "tse-m", client_id="POS-M", logout=True)
        path = tmp_path / "till.db"
        journal, books = OutageLog(path), Books(path)
        register = Register(
            EmbeddedBackend(inst.service, "tse-m"),
            RegisterConfig(Seller("X", ("Weg 1",)), "POS-M"),
            journal,
            books=books,
        )
        register.connect()
        inst.service.authenticate("tse-m", ADMIN_PIN)
        inst.service.deregister_client("tse-m", "POS-M")
        sale = Sale()
        sale.add_line("Tee", 1, "1.80", 1)
        sale.add_payment("cash", "1.80")
        result = register.sell(sale)
        assert result.tse_failed and result.config_error == "E_REGISTER_CLIENT_UNKNOWN"
        assert result.to_json()["config_error"] == "E_REGISTER_CLIENT_UNKNOWN"
        assert books.sale(result.receipt_ref).total == sale.total  # booked: nothing lost
        assert journal.outages()[-1].receipt_refs == (result.receipt_ref,)
        with pytest.raises(RegisterNotAccepted) as refused:
            register.connect()  # the next sale is refused before it is booked
        assert refused.value.code == "E_REGISTER_CLIENT_UNKNOWN"
        books.close_file()
        journal.close()


@pytest.mark.parametrize(
    ("args", "code_text"),
    [
        (["--line", "Kaffee:2:2.505:1", "--pay", "bar:10"], "E_AMOUNT_PRECISION"),
        (["--line", "Kaffee:2:2.50:1", "--pay", "bar:1.00"], "E_PAYMENT_SHORT"),
        (["--line", "Kaffee:2:2.50", "--pay", "bar:5"], "E_POS_LINE"),
        (["--line", "Kaffee:1:2.50:1", "--pay", "scheck:5"], "E_POS_PAY"),
        # a German till's decimal comma: the error says how to write it
        (["--line", "Kaffee:2:2,50:1", "--pay", "bar:5"], "E_AMOUNT_FORMAT"),
        (["--line", "Kaffee:1:2.50:1", "--pay", "bar:2,50"], "decimal point: 2.50"),
    ],
)
def test_cashier_errors_exit_1(data: Path, tmp_path: Path, args: list[str], code_text: str) -> None:
    base = ["pos", "sell", "--data", str(data), "--tss", "tse-pos", "--client", "POS-1"]
    code, out = run(*base, "--journal", str(tmp_path / "j.db"), *args)
    assert code == 1
    assert code_text in out
    if "," in " ".join(args):
        assert "with a decimal point" in out


def test_close_writes_a_checked_dsfinvk_export(data: Path, tmp_path: Path) -> None:
    base = ["--data", str(data), "--tss", "tse-pos", "--client", "POS-1"]
    base += ["--journal", str(tmp_path / "j.db")]
    for pay in ("bar:10.00", "karte:5.90"):
        code, out = run(
            "pos", "sell", *base, "--line", "Kaffee:2:2.50:1", "--line", "Brezel:1:0.90:2",
            "--pay", pay,
        )  # fmt: skip
        assert code == 0, out
    export = tmp_path / "export"
    code, out = run(
        "pos", "close", *base, "--out", str(export), "--company", "Café Test GmbH",
        "--street", "Hauptstr. 1", "--postal-code", "12345", "--city", "Musterstadt",
        "--tax-number", "123/456/78901", "--counted-cash", "5.90", "--json",
    )  # fmt: skip
    assert code == 0, out
    summary = json.loads(out)
    assert summary["z_nr"] == 1 and summary["receipts"] == 2
    assert summary["total"] == "11.80" and summary["cash_payments"] == "5.90"
    assert summary["check_errors"] == []
    assert (export / "index.xml").is_file() and (export / "transactions_tse.csv").is_file()
    code, out = run(
        "pos", "close", *base, "--out", str(tmp_path / "again"), "--counted-cash", "5.90"
    )  # the master data are kept; nothing new and no cash difference
    assert code == 1 and "E_NOTHING_TO_CLOSE" in out


def test_status_lists_another_tills_open_transaction_and_leaves_it_open(
    data: Path, tmp_path: Path
) -> None:
    """Two tills on one client id: ``pos status`` of one (which recovers) shows the
    other's young open receipt instead of aborting it."""
    with Installation.open(data) as inst:
        started = inst.service.start_transaction("tse-pos", "POS-1", b"", "Kassenbeleg-V1")
    args = ["--data", str(data), "--tss", "tse-pos", "--client", "POS-1"]
    args += ["--journal", str(tmp_path / "till-b.db")]
    code, out = run("pos", "status", *args, "--json")
    assert code == 0, out
    listed = json.loads(out)["other_tills_open_transactions"]
    assert [t["transaction_number"] for t in listed] == [started.transaction_number]
    assert listed[0]["process_type"] == "Kassenbeleg-V1" and listed[0]["started_at"]
    code, out = run("pos", "status", *args)
    assert code == 0 and "other tills" in out
    with Installation.open(data) as inst:
        finished = inst.service.finish_transaction(
            "tse-pos", "POS-1", started.transaction_number, b"Beleg^1.00_0_0_0_0^1.00:Bar",
            "Kassenbeleg-V1",
        )  # fmt: skip
    assert finished.transaction_number == started.transaction_number


def test_qr_only_needs_an_output_that_carries_the_qr_code(data: Path, tmp_path: Path) -> None:
    """--qr-only prints the TSE data only in the QR code (§6 Satz 2): without --qr, --pdf,
    --escpos or --json the text receipt said "TSE-Daten im QR-Code" and no QR code was
    anywhere, so the receipt had no transaction number, signature or counter at all."""
    base = ["pos", "sell", "--data", str(data), "--tss", "tse-pos", "--client", "POS-1"]
    base += ["--journal", str(tmp_path / "j.db"), "--line", "Tee:1:1.80:1", "--pay", "bar:2"]
    code, out = run(*base, "--qr-only")
    assert code == 1 and "E_POS_QR_ONLY" in out and "TSE-Daten im QR-Code" not in out
    qr = tmp_path / "receipt.png"
    code, out = run(*base, "--qr-only", "--qr", str(qr))
    assert code == 0 and "TSE-Daten im QR-Code" in out
    assert "Beleg-Nr.: 1" in out  # the refused sale was not booked
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.read_bytes())))
    assert verify_receipt(decoded[0].text).ok


def test_an_output_file_that_cannot_be_written_books_no_sale(data: Path, tmp_path: Path) -> None:
    """A --pdf in a folder that does not exist was a traceback after the sale had been
    signed and booked, and its receipt was never printed (a cashier would sell again)."""
    base = ["pos", "sell", "--data", str(data), "--tss", "tse-pos", "--client", "POS-1"]
    base += ["--journal", str(tmp_path / "j.db"), "--line", "Tee:1:1.80:1", "--pay", "bar:2"]
    code, out = run(*base, "--pdf", str(tmp_path / "no-such-folder" / "receipt.pdf"))
    assert code == 1 and "E_POS_OUTPUT" in out and "Traceback" not in out
    code, out = run(*base)
    assert code == 0 and "Beleg-Nr.: 1" in out  # nothing was booked before


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler's pdftotext")
def test_pdf_and_escpos_print_the_shops_time_as_the_text_receipt(
    data: Path, tmp_path: Path
) -> None:
    """With --timezone Europe/London the text receipt printed London time and the PDF
    Berlin time (render_pdf got no zone), an hour apart on the same receipt."""
    pdf, escpos = tmp_path / "r.pdf", tmp_path / "r.bin"
    code, out = run(
        "pos", "sell", "--data", str(data), "--tss", "tse-pos", "--client", "POS-1",
        "--journal", str(tmp_path / "j.db"), "--timezone", "Europe/London",
        "--line", "Tee:1:1.80:1", "--pay", "bar:2", "--pdf", str(pdf), "--escpos", str(escpos),
    )  # fmt: skip
    assert code == 0, out
    [dated] = [line for line in out.splitlines() if line.startswith("Datum: ")]
    read = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert dated in read.splitlines()
    assert dated.encode() in escpos.read_bytes()


def test_close_prints_its_z_report_whatever_happens_to_its_files(
    data: Path, tmp_path: Path
) -> None:
    """A --pdf in a folder that does not exist was a traceback after the day had been
    closed (and its difference signed): no Z report, and the next try said
    E_NOTHING_TO_CLOSE. Now it is refused before the closing; an export target that
    cannot be written comes after the printed Z report, which says the day is closed."""
    base = ["--data", str(data), "--tss", "tse-pos", "--client", "POS-1"]
    base += ["--journal", str(tmp_path / "j.db")]
    code, out = run("pos", "sell", *base, "--line", "Kaffee:1:2.50:1", "--pay", "bar:2.50")
    assert code == 0, out
    master = ["--company", "Café Test GmbH", "--street", "Hauptstr. 1", "--postal-code",
              "12345", "--city", "Musterstadt", "--tax-number", "123/456/78901"]  # fmt: skip
    missing = tmp_path / "no-such-folder" / "z.pdf"
    code, out = run("pos", "close", *base, *master, "--counted-cash", "2.50", "--pdf", str(missing))
    assert code == 1 and "E_POS_OUTPUT" in out and "Traceback" not in out
    # a target refused only while it is written (checked ones are refused before the
    # closing: test_register_pos_first_file.py): the ZIP's part file is a folder
    target = tmp_path / "z.zip"
    (tmp_path / "z.zip.part").mkdir()
    code, out = run("pos", "close", *base, *master, "--counted-cash", "2.50", "--out", str(target))
    assert code == 1 and "Traceback" not in out
    assert "KASSENABSCHLUSS Nr. 1" in out  # the first try closed nothing
    said = "".join(out.split())
    assert "closingZ_NR1isdone" in said
    assert f"'opentsedsfinvkexportOUT--journal{tmp_path / 'j.db'}--from" in said


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf"])
def test_a_timeout_that_no_tse_can_meet_is_refused(
    data: Path, tmp_path: Path, timeout: str
) -> None:
    """--timeout 0, -1 or nan booked every sale "TSE ausgefallen" (unsigned, in the
    outage journal) although the TSE was there; inf was an OverflowError's outage."""
    base = ["pos", "sell", "--data", str(data), "--tss", "tse-pos", "--client", "POS-1"]
    base += ["--journal", str(tmp_path / "j.db"), "--line", "Tee:1:1.80:1", "--pay", "bar:2"]
    code, out = run(*base, "--timeout", timeout)
    assert code == 1 and "E_REGISTER_CONFIG" in out and "TSE ausgefallen" not in out
    code, out = run(*base, "--timeout", "2.5", "--json")
    assert code == 0 and json.loads(out)["tse_failed"] is False
    assert json.loads(out)["receipt_number"] == "1"  # nothing was booked before


def test_order_then_bill_then_close(data: Path, tmp_path: Path) -> None:
    """A restaurant order could only be booked from Python (Register.order): pos had
    no command for it. pos order signs Bestellung-V1 and books an AVBestellung, which
    the closing keeps as no business case; the bill is a pos sell."""
    base = ["--data", str(data), "--tss", "tse-pos", "--client", "POS-1"]
    base += ["--journal", str(tmp_path / "j.db")]
    code, out = run("pos", "order", *base, "--line", "Schnitzel:2:14.50:1", "--pay", "bar:5")
    assert code == 2  # an order has no payments: not an option
    code, out = run(
        "pos", "order", *base, "--line", "Schnitzel:2:14.50:1", "--line", "Wasser:1:2.00:1",
        "--json",
    )  # fmt: skip
    assert code == 0, out
    body = json.loads(out)
    assert body["tse_failed"] is False and body["process_type"] == "Bestellung-V1"
    assert body["process_data"] == '2;"Schnitzel";14.50\r1;"Wasser";2.00'
    assert verify_receipt(body["qr_code_data"]).ok
    bill = ["--line", "Schnitzel:2:14.50:1", "--line", "Wasser:1:2.00:1", "--pay", "karte:31.00"]
    code, out = run("pos", "sell", *base, *bill, "--first-order", "5")
    assert code == 1 and "E_POS_FIRST_ORDER" not in out  # no receipt 5: E_..._NOT_FOUND
    code, out = run("pos", "sell", *base, *bill, "--first-order", body["receipt_ref"], "--json")
    assert code == 0, out
    paid = json.loads(out)
    start = body["receipt_text"].split("TSE-Start: ")[1].split()[0]
    assert f"TSE-Erstbestellung: {start}" in paid["receipt_text"]  # the order's TSE start
    code, out = run("pos", "sell", *base, *bill, "--first-order", paid["receipt_ref"])
    assert code == 1 and "E_POS_FIRST_ORDER" in out  # a bill is no order
    company = ["--company", "Wirt GmbH", "--street", "Weg 1", "--postal-code", "12345"]
    company += ["--city", "Ort", "--tax-number", "123/456/78901"]
    code, out = run("pos", "close", *base, "--counted-cash", "0.00", *company, "--json",
                    "--out", str(tmp_path / "z.zip"))  # fmt: skip
    assert code == 0, out
    closing = json.loads(out)
    assert closing["check_errors"] == [] and Decimal(closing["total"]) == Decimal("31.00")
    assert closing["receipts"] == 2  # the order and the bill; the refused ones not booked


def test_the_seller_is_given_once_and_kept(data: Path, tmp_path: Path) -> None:
    """Without --seller-name and --seller-address on every sale the receipt named the
    test till ('opentse Testkasse, Musterstraße 1'), not the shop (§6 Nr. 1
    KassenSichV). Given once they are kept in the register's books; a till that was
    never told prints its last closing's company."""
    base = ["--data", str(data), "--tss", "tse-pos", "--client", "POS-1"]
    sale = ["--line", "Tee:1:1.80:1", "--pay", "bar:1.80"]
    code, out = run("pos", "sell", *base, "--journal", str(tmp_path / "a.db"), *sale,
                    "--seller-name", "Café Z", "--seller-address", "Weg 1",
                    "--seller-address", "12345 Ort")  # fmt: skip
    assert code == 0 and "Café Z" in out and "Weg 1" in out, out
    code, out = run("pos", "sell", *base, "--journal", str(tmp_path / "a.db"), *sale)
    assert code == 0 and "Café Z" in out and "12345 Ort" in out, out
    assert "Testkasse" not in out and "Musterstraße" not in out
    other = ["--journal", str(tmp_path / "b.db")]
    code, out = run("pos", "sell", *base, *other, *sale)
    assert code == 0 and "opentse Testkasse" in out  # a till never told: the test till
    company = ["--company", "Bäckerei B GmbH", "--street", "Ring 2", "--postal-code", "54321"]
    company += ["--city", "Dorf", "--tax-number", "123/456/78901"]
    assert run("pos", "close", *base, *other, "--counted-cash", "1.80", *company)[0] == 0
    code, out = run("pos", "sell", *base, *other, *sale)
    assert code == 0 and "Bäckerei B GmbH" in out and "54321 Dorf" in out, out


def test_a_till_taken_out_of_service_still_closes_its_day(data: Path, tmp_path: Path) -> None:
    """Its client deregistered (the till retired), pos close stopped with
    E_REGISTER_CLIENT_UNKNOWN, so the day's receipts could never be closed and
    exported. The closing goes on without the TSE, saying so; sales stay refused."""
    base = ["--data", str(data), "--tss", "tse-pos", "--client", "POS-1"]
    base += ["--journal", str(tmp_path / "j.db")]
    assert run("pos", "sell", *base, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80")[0] == 0
    with Installation.open(data) as inst:
        inst.service.authenticate("tse-pos", ADMIN_PIN)
        inst.service.deregister_client("tse-pos", "POS-1")
        inst.service.logout("tse-pos")
    company = ["--company", "Z GmbH", "--street", "Weg 1", "--postal-code", "12345"]
    company += ["--city", "Ort", "--tax-number", "123/456/78901", "--out", str(tmp_path / "z.zip")]
    code, out = run("pos", "close", *base, "--counted-cash", "2.00", *company, "--json")
    assert code == 0, out
    assert "E_REGISTER_CLIENT_UNKNOWN" in out and "closed without the TSE" in out
    code, out = run("pos", "sell", *base, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80")
    assert code == 1 and "E_REGISTER_CLIENT_UNKNOWN" in out


def test_sell_writes_a_picture_of_the_receipt_whose_qr_code_reads(
    data: Path, tmp_path: Path
) -> None:
    """pos could write the QR code alone, the PDF and ESC/POS, not the picture of the
    printed receipt (render_receipt_png only from Python). --png writes it; its QR
    code reads back (zxing-cpp) as the receipt's, also with --qr-only."""
    png = tmp_path / "receipt.png"
    code, out = run(
        "pos", "sell", "--data", str(data), "--tss", "tse-pos", "--client", "POS-1",
        "--journal", str(tmp_path / "j.db"), "--line", "Kaffee:1:2.50:1", "--pay", "bar:2.50",
        "--qr-only", "--png", str(png), "--json",
    )  # fmt: skip
    assert code == 0, out
    body = json.loads(out)
    picture = Image.open(io.BytesIO(png.read_bytes()))
    assert picture.format == "PNG"
    [decoded] = zxingcpp.read_barcodes(picture)
    assert decoded.text == body["qr_code_data"] and verify_receipt(decoded.text).ok


def test_storno_prints_its_receipt_to_files_whose_qr_code_reads(data: Path, tmp_path: Path) -> None:
    """A cancellation is a receipt of its own (AVBelegstorno, signed): pos storno had
    no --qr, --pdf, --escpos or --png, so its QR code could not be printed. Its
    picture's QR code reads back as the storno's own signature, which verifies; a
    folder that cannot be written is refused before anything is booked."""
    base = ["--data", str(data), "--tss", "tse-pos", "--client", "POS-1"]
    base += ["--journal", str(tmp_path / "j.db")]
    code, out = run(
        "pos", "sell", *base, "--line", "Kaffee:1:2.50:1", "--pay", "bar:2.50", "--json"
    )
    assert code == 0, out
    sale = json.loads(out)
    code, out = run(
        "pos", "storno", sale["receipt_ref"], *base, "--qr", str(tmp_path / "missing" / "q.png")
    )
    assert code == 1 and "E_POS_OUTPUT" in out, out
    png, qr, pdf = tmp_path / "storno.png", tmp_path / "storno-qr.svg", tmp_path / "storno.pdf"
    code, out = run(
        "pos", "storno", sale["receipt_ref"], *base, "--json",
        "--png", str(png), "--qr", str(qr), "--pdf", str(pdf),
    )  # fmt: skip
    assert code == 0, out
    storno = json.loads(out)
    assert storno["references"] == sale["receipt_ref"]  # the refused one booked nothing
    assert storno["qr_code_data"] != sale["qr_code_data"]
    [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.read_bytes())))
    assert decoded.text == storno["qr_code_data"] and verify_receipt(decoded.text).ok
    assert "-2.50" in storno["process_data"] and qr.read_text().lstrip().startswith("<")
    assert pdf.read_bytes().startswith(b"%PDF")


def test_sell_help_names_the_payment_methods_and_the_default_file() -> None:
    """--pay's help said only 'METHOD:AMOUNT, e.g. bar:5.00': a card payment was
    found by trial and error (E_POS_PAY lists them); --journal did not say where the
    register's file is by default."""
    result = CliRunner().invoke(APP, ["pos", "sell", "--help"], terminal_width=200)
    text = " ".join(result.output.split())
    for method in ("karte", "kreditkarte", "gutschein", "unbar"):
        assert method in text
    assert "<data>/pos/<client>.db" in text


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["storno", "1"],
        ["cash", "--type", "Einzahlung", "--amount", "5.00"],
        ["close", "--counted-cash", "0.00"],
    ],
)
def test_every_command_that_asks_the_tse_takes_timeout(
    data: Path, tmp_path: Path, command: list[str]
) -> None:
    """Only sell and order took --timeout: status, storno, cash and close waited the
    fixed 5 s for a slow service. They take it now, checked like sell's."""
    base = ["--data", str(data), "--tss", "tse-pos", "--client", "POS-1"]
    base += ["--journal", str(tmp_path / "j.db")]
    code, out = run("pos", *command, *base, "--timeout", "0")
    assert code == 1 and "E_REGISTER_CONFIG" in out and "timeout" in out, out


def test_opentse_data_is_the_default_data_folder_as_for_every_command(data: Path) -> None:
    """pos ignored OPENTSE_DATA (E_POS_BACKEND: give --data or --url) while every other
    command takes it as its --data default; --url still wins over it."""
    sale = ["pos", "sell", "--tss", "tse-pos", "--client", "POS-1"]
    result = CliRunner().invoke(
        APP,
        [*sale, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80", "--json"],
        env={"OPENTSE_DATA": str(data)},
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["tse_failed"] is False and verify_receipt(body["qr_code_data"]).ok
    assert (data / "pos" / "POS-1.db").is_file()
    neither = CliRunner().invoke(
        APP, [*sale, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80"], env={"OPENTSE_DATA": ""}
    )
    assert neither.exit_code == 1 and "E_POS_BACKEND" in neither.output


def test_status_text_shows_shop_times_and_the_unsigned_receipts_numbers(tmp_path: Path) -> None:
    """The status tables printed UTC instants with microseconds
    ('2026-11-22T08:04:46.922674+00:00') beside a message and receipts in the shop's
    time, and only a count of the unsigned receipts: the shop owner had to convert
    the time and could not tell which printed receipts lack a signature. Now the
    shop's wall-clock time, as printed on receipts, and their numbers (JSON unchanged)."""
    from datetime import datetime

    from opentse.register.shoptime import local_text, shop_zone

    gone = (
        "--url", "http://127.0.0.1:9", "--api-key", "k", "--api-secret", "s",
        "--tss", "0b3c5a4e-3f3e-4c4e-9a59-0d6c8f1b2a10",
        "--client", "5f0f4e8a-9a35-4f43-8c34-5b8a1d2c3e4f",
        "--journal", str(tmp_path / "till.db"), "--timezone", "Asia/Tokyo",
    )  # fmt: skip
    for _ in range(2):
        code, out = run("pos", "sell", *gone, "--line", "Tee:1:1.80:1", "--pay", "bar:2.00")
        assert code == 0 and "TSE ausgefallen" in out, out
    code, out = run("pos", "status", *gone, "--no-check", "--json")
    assert code == 0, out
    started = json.loads(out)["outages"][0]["started_at"]
    code, text = run("pos", "status", *gone, "--no-check")
    assert code == 0, text
    shop_time = local_text(datetime.fromisoformat(started), shop_zone("Asia/Tokyo"))
    assert shop_time in text and started not in text
    assert "times: Asia/Tokyo" in text
    assert "2 (Nr. 1, 2)" in text


def test_cash_entry_names_its_receipt_number_to_cancel_it(data: Path, tmp_path: Path) -> None:
    """`pos cash` printed 'Einzahlung 200.00 EUR booked (TSE-Transaktion 5).': a wrong
    entry could only be cancelled by guessing its receipt number (pos storno N). Now
    its number (and BON_ID) are printed; the storno takes it back."""
    till = ("--data", str(data), "--tss", "tse-pos", "--client", "POS-1",
            "--journal", str(tmp_path / "till.db"))  # fmt: skip
    code, out = run("pos", "sell", *till, "--line", "Tee:1:1.80:1", "--pay", "bar:2.00")
    assert code == 0, out
    code, out = run("pos", "cash", *till, "--type", "Einzahlung", "--amount", "200.00", "--json")
    assert code == 0, out
    entry = json.loads(out)
    assert entry["receipt_number"] == "2" and entry["tse_failed"] is False
    code, out = run("pos", "storno", entry["receipt_number"], *till, "--json")
    assert code == 0, out
    storno = json.loads(out)
    assert storno["references"] == entry["receipt_ref"]
    assert "Storno zu Beleg-Nr.: 2" in storno["receipt_text"]
    code, out = run("pos", "cash", *till, "--type", "Einzahlung", "--amount", "20.00")
    assert code == 0 and "Einzahlung 20.00 EUR booked as receipt 4 (TSE-Transaktion" in out
