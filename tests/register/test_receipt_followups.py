"""Receipt follow-ups of the receipt review, each test naming how a shop met the defect:

1. ``pos sell --certified --data DIR`` printed a receipt of the embedded opentse TSE
   without "Keine zertifizierte TSE (opentse)" (so did a Register over opentse serve
   configured as certified); opentse is not BSI-certified, and a receipt must not
   suggest otherwise.
2. A bill paid during an outage for signed orders lost "TSE-Erstbestellung" (the first
   order's start travelled only inside the TSE signature data).
3. The PDF was 80 mm wide with 48 columns also with ``--width 32`` (58 mm printers).

Read back with tools that are not ours: poppler's pdftotext and pdfinfo, and the
ESC/POS reader of test_receipt_print_paths.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_receipt_print_paths import FIRST_ORDER, _receipt, _sale, read_escpos
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.engine.keyring import Keyring
from opentse.engine.service import TSEService
from opentse.installation import Installation
from opentse.register.backends import EmbeddedBackend, issued_by_opentse
from opentse.register.books import Books
from opentse.register.outage import OutageLog
from opentse.register.receipt import NOT_CERTIFIED_TEXT, Receipt, Seller
from opentse.register.register import Register, RegisterConfig
from opentse.register.remote import RemoteBackend
from opentse.register.render_escpos import render_escpos
from opentse.register.render_pdf import PAGE_WIDTHS_MM, render_pdf
from opentse.register.render_text import render_text
from opentse.register.sale import Sale
from opentse.storage.sqlite import SQLiteStore
from opentse.testing import TEST_SECRET, FrozenClock, ready_tse

NOW = 1_700_000_000
SELLER = Seller("Kiosk am Markt", ("Marktplatz 2", "04109 Leipzig"))
CLIENT = "KASSE-01"
APP = build_app()
POPPLER = shutil.which("pdftotext") is not None and shutil.which("pdfinfo") is not None


@pytest.fixture
def service(tmp_path: Path) -> Iterator[TSEService]:
    store = SQLiteStore(tmp_path / "tse.db", busy_timeout=20.0)
    svc = TSEService(store, Keyring(TEST_SECRET), FrozenClock(NOW))
    ready_tse(svc, "tse-1", client_id=CLIENT, logout=True)
    yield svc
    store.close()


def _bill() -> Sale:
    bill = Sale()
    bill.add_line("Schnitzel", 1, "14.90", 1)
    bill.add_payment("card", "14.90")
    return bill


# --- 1. never certified ----------------------------------------------------------


def test_an_embedded_tse_always_prints_the_not_certified_line(
    service: TSEService, tmp_path: Path
) -> None:
    """RegisterConfig(not_certified=False) -- what ``--certified`` sets -- left the
    line out on a receipt the embedded opentse TSE signed; signed or not, it stays."""
    journal = OutageLog(tmp_path / "journal.db")
    try:
        config = RegisterConfig(SELLER, CLIENT, not_certified=False, timeout=0.5)
        register = Register(EmbeddedBackend(service, "tse-1"), config, journal)
        register.connect()
        signed = register.sell(_bill())
        assert signed.signed is not None
        assert signed.receipt.not_certified
        assert NOT_CERTIFIED_TEXT in render_text(signed.receipt).split("\n")
        blocker = sqlite3.connect(tmp_path / "tse.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the TSE's store is held: an outage
        try:
            unsigned = register.sell(_bill())
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert unsigned.signed is None and unsigned.receipt.not_certified
    finally:
        journal.close()


def test_a_certificate_of_an_opentse_ca_is_recognised(data: Path) -> None:
    """The TSE certificate an opentse installation issues names its CA's organization
    'opentse'; a certificate from elsewhere (made here with cryptography) does not."""
    with Installation.open(data) as inst:
        description = EmbeddedBackend(inst.service, "tse-pos").describe()
    assert issued_by_opentse(description.certificate)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Some TSE Vendor GmbH"),
            x509.NameAttribute(NameOID.COMMON_NAME, "TSE"),
        ]
    )
    other = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2030, 1, 1, tzinfo=UTC))
        .sign(key, hashes.SHA256())
    )
    assert not issued_by_opentse(other.public_bytes(serialization.Encoding.DER))
    assert not issued_by_opentse(b"")
    assert not issued_by_opentse(b"not a certificate")


def test_a_register_over_opentse_serve_prints_the_not_certified_line(
    fiskaly_tss: Callable[[str], dict[str, str]], tmp_path: Path
) -> None:
    """A till configured as certified (``--certified --url``) over opentse serve: its
    TSS names an opentse CA's certificate, so the receipts say opentse is not
    certified -- also the one printed in an outage by a till started without its TSE
    (the books know the certificate from before)."""
    served = fiskaly_tss(CLIENT)
    path = tmp_path / "till.db"

    def register(origin: str) -> tuple[Register, OutageLog, Books]:
        backend = RemoteBackend(
            origin, served["api_key"], served["api_secret"], served["tss"], served["client"],
            timeout=2.0, retries=0,
        )  # fmt: skip
        journal, books = OutageLog(path), Books(path)
        config = RegisterConfig(SELLER, CLIENT, not_certified=False, timeout=2.0)
        return Register(backend, config, journal, books=books), journal, books

    till, journal, books = register(served["origin"])
    try:
        till.connect()
        result = till.sell(_bill())
        assert result.signed is not None
        assert NOT_CERTIFIED_TEXT in render_text(result.receipt).split("\n")
    finally:
        journal.close()
        books.close_file()
        till.backend.close()  # type: ignore[attr-defined]
    # restarted while its service is gone (nothing listens there): still not certified
    till, journal, books = register("http://127.0.0.1:9")
    try:
        till.connect()
        result = till.sell(_bill())
        assert result.signed is None
        assert NOT_CERTIFIED_TEXT in render_text(result.receipt).split("\n")
    finally:
        journal.close()
        books.close_file()
        till.backend.close()  # type: ignore[attr-defined]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    with Installation.open(folder) as inst:
        ready_tse(inst.service, "tse-pos", client_id="POS-1", logout=True)
    return folder


def test_pos_sell_refuses_certified_with_an_embedded_tse(data: Path, tmp_path: Path) -> None:
    """``--certified`` with ``--data`` (or $OPENTSE_DATA): refused before anything is
    booked, E_POS_CERTIFIED; the same sale without it prints the line."""
    journal = tmp_path / "journal.db"
    till = ["--tss", "tse-pos", "--client", "POS-1", "--journal", str(journal)]
    sale = ["--line", "Kaffee:1:2.50:1", "--pay", "bar:2.50"]
    runner = CliRunner()
    done = runner.invoke(APP, ["pos", "sell", "--data", str(data), *till, *sale, "--certified"])
    assert done.exit_code == 1, done.output
    assert "E_POS_CERTIFIED" in done.output and "not BSI-certified" in done.output
    assert not journal.exists()  # nothing booked, no register file made
    env = {**os.environ, "OPENTSE_DATA": str(data)}
    done = runner.invoke(APP, ["pos", "sell", *till, *sale, "--certified"], env=env)
    assert done.exit_code == 1 and "E_POS_CERTIFIED" in done.output, done.output
    assert not journal.exists()
    done = runner.invoke(APP, ["pos", "sell", "--data", str(data), *till, *sale])
    assert done.exit_code == 0, done.output
    assert NOT_CERTIFIED_TEXT in done.output.split("\n")


# --- 2. TSE-Erstbestellung on an unsigned bill -----------------------------------


def test_a_bill_paid_in_an_outage_keeps_the_first_orders_start(
    service: TSEService, tmp_path: Path
) -> None:
    """The order was signed, the bill was not (the TSE's store held by another
    writer): the bill printed no TSE-Erstbestellung, the DSFinV-K 2.7 relief's one
    link from the bill to its orders."""
    path = tmp_path / "till.db"
    journal, books = OutageLog(path), Books(path)
    try:
        config = RegisterConfig(SELLER, CLIENT, timeout=0.5)
        register = Register(EmbeddedBackend(service, "tse-1"), config, journal, books=books)
        register.connect()
        order = Sale("AVBestellung")
        order.add_line("Schnitzel", 1, "14.90", 1)
        ordered = register.order(order)
        assert ordered.signed is not None
        first = books.order_start(ordered.receipt_ref)
        assert first == ordered.signed.start_time
        blocker = sqlite3.connect(tmp_path / "tse.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            paid = register.sell(_bill(), first_order_start=first)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
    finally:
        journal.close()
        books.close_file()
    assert paid.signed is None and paid.receipt.tse_failed
    assert paid.receipt.first_order_start == first
    stamp = first.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    for width in (32, 48):
        text = render_text(paid.receipt, width=width).replace(":\n", ": ")
        assert "TSE ausgefallen" in text
        assert re.search(rf"TSE-Erstbestellung: {stamp}\.\d{{3}}Z", text), text
        printed = read_escpos(render_escpos(paid.receipt, width=width)).text
        assert "TSE-Erstbestellung" in printed
    assert "TSE-Erstbestellung" in paid.to_json()["receipt_text"]


@pytest.mark.parametrize("signed", [True, False])
def test_every_renderer_prints_the_first_order_of_the_receipt(signed: bool, tmp_path: Path) -> None:
    """Receipt.first_order_start, signed or TSE ausgefallen: text, ESC/POS, PDF."""
    if signed:
        receipt = _receipt(_sale(), first_order_start=FIRST_ORDER)
    else:
        receipt = Receipt.from_sale(
            _sale(), seller=SELLER, register_serial=CLIENT, issued_at=FIRST_ORDER,
            start_time=FIRST_ORDER, end_time=FIRST_ORDER, first_order_start=FIRST_ORDER,
        )  # fmt: skip
    line = "TSE-Erstbestellung: 2021-08-23T13:02:05.250Z"
    assert line in render_text(receipt).split("\n")
    assert line in read_escpos(render_escpos(receipt)).text.split("\r\n")
    if POPPLER:
        assert line in _pdftotext(render_pdf(receipt), tmp_path)


# --- 3. the PDF follows the width ------------------------------------------------


def _pdftotext(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "receipt.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def _page_width_mm(pdf: bytes, tmp_path: Path) -> float:
    path = tmp_path / "size.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    found = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info)
    assert found, info
    return float(found.group(1)) * 25.4 / 72


@pytest.mark.skipif(not POPPLER, reason="needs poppler's pdftotext and pdfinfo")
@pytest.mark.parametrize(("width", "paper"), [(32, 58.0), (48, 80.0)])
def test_the_pdf_follows_the_receipts_width(width: int, paper: float, tmp_path: Path) -> None:
    """``--width 32`` (58 mm printers) gave an 80 mm PDF of 48 columns; now the page
    is as wide as the paper and holds the 32-column text, line for line."""
    assert PAGE_WIDTHS_MM[width] == paper
    receipt = _receipt(_sale("Tee „Grün“ – groß mit Zitrone und Honig"))
    pdf = render_pdf(receipt, width=width)
    assert abs(_page_width_mm(pdf, tmp_path) - paper) < 0.1
    read = _pdftotext(pdf, tmp_path)
    on_page = {" ".join(line.split()) for line in read.splitlines()}
    expected = render_text(receipt, width=width).split("\n")
    for line in expected:
        if line.strip():
            assert " ".join(line.split()) in on_page, line
    assert "-" * width in read.splitlines()  # the rules are the width's
    assert "-" * (width + 1) not in read


@pytest.mark.skipif(not POPPLER, reason="needs poppler's pdftotext and pdfinfo")
def test_pos_sell_width_32_writes_a_58_mm_pdf(data: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "bon.pdf"
    done = CliRunner().invoke(
        APP,
        [
            "pos", "sell", "--data", str(data), "--tss", "tse-pos", "--client", "POS-1",
            "--journal", str(tmp_path / "j.db"), "--line", "Kaffee:1:2.50:1",
            "--pay", "bar:2.50", "--width", "32", "--pdf", str(pdf),
        ],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert abs(_page_width_mm(pdf.read_bytes(), tmp_path) - 58.0) < 0.1
    assert "-" * 32 in _pdftotext(pdf.read_bytes(), tmp_path).splitlines()
