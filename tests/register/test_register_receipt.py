"""Receipts: every KassenSichV §6 field in the text, the TSE-failed and not-certified
variants, ESC/POS bytes, PDF, and QR images decoded back with zxing-cpp.

The signed receipt is built from the first QR vector of the spec digest (a real
certified-TSE signature), so the QR code must verify with the verifier.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from opentse.errors import ProtocolError
from opentse.register.receipt import (
    NOT_CERTIFIED_TEXT,
    Receipt,
    Seller,
    TseSignature,
)
from opentse.register.render_escpos import auto_module_size, qr_commands, render_escpos
from opentse.register.render_image import render_receipt_png
from opentse.register.render_pdf import render_pdf
from opentse.register.render_qr import make_qr, render_qr_png, render_qr_svg
from opentse.register.render_text import render_text
from opentse.register.sale import Sale
from opentse.verify.receipt import verify_receipt

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "register"

VECTOR = (
    "V0;ERS 8cb8e2de-4052-481b-945b-118022951944;Kassenbeleg-V1;"
    "Beleg^21.42_0.00_0.00_0.00_0.00^21.42:Unbar;1;31;2021-08-23T14:36:27.000Z;"
    "2021-08-23T14:36:33.000Z;ecdsa-plain-SHA256;unixTime;"
    "TGnWiq3ZW7gi4Vs+DxLGsJZj9v271dHmhQAcb057F3oWkdKJ61UW2LLVTZQhW673yLa53Mm6oPeMU1Ns3ZOH7w==;"
    "BGFKQP7EENf3s5hTDXvlh+xyJ1Q9BNIa9LyYbYK+pTAKAGQ2fmI40p5QOrpHpvb+UuOrNQJdhzggHNfyyyDyf/g="
)
SIGNATURE = base64.b64decode(VECTOR.split(";")[10])
PUBLIC_KEY = base64.b64decode(VECTOR.split(";")[11])
TSE_SERIAL = hashlib.sha256(PUBLIC_KEY).hexdigest()
SELLER = Seller("Café Beispiel GmbH", ("Hauptstraße 1", "12345 Musterstadt"), "DE123456789")
START = datetime(2021, 8, 23, 14, 36, 27, tzinfo=UTC)
END = datetime(2021, 8, 23, 14, 36, 33, tzinfo=UTC)


def _sale() -> Sale:
    sale = Sale()
    sale.add_line("Frühstück Spezial mit einem sehr langen Namen", 2, "8.50", 1)
    sale.add_line("Kaffee", 1, "4.42", 1)
    sale.add_payment("card", "21.42", name="Girocard")
    return sale


def _signed(sale: Sale, **options: object) -> Receipt:
    assert sale.process_data() == "Beleg^21.42_0.00_0.00_0.00_0.00^21.42:Unbar"
    tse = TseSignature(
        transaction_number=1,
        signature_counter=31,
        start_time=START,
        end_time=END,
        signature=SIGNATURE,
        public_key=PUBLIC_KEY,
        serial_number=TSE_SERIAL,
        signature_algorithm="ecdsa-plain-SHA256",
        time_format="unixTime",
        client_id="ERS 8cb8e2de-4052-481b-945b-118022951944",
        process_type=sale.process_type,
        process_data=sale.process_data(),
    )
    return Receipt.from_sale(
        sale,
        seller=SELLER,
        register_serial="ERS 8cb8e2de-4052-481b-945b-118022951944",
        issued_at=END,
        tse=tse,
        receipt_number="4711",
        **options,  # type: ignore[arg-type]
    )


def _flat(text: str) -> str:
    """Undo the renderer's wrapping of ``Label:`` + value lines (values are hard-wrapped)."""
    return text.replace(":\n", ": ").replace("\n", "")


def _failed(sale: Sale) -> Receipt:
    return Receipt.from_sale(
        sale,
        seller=SELLER,
        register_serial="KASSE-1",
        issued_at=END,
        tse_serial=TSE_SERIAL,
        start_time=START,
        end_time=END,
        not_certified=True,
    )


def test_qr_payload_equals_the_vector_and_verifies() -> None:
    receipt = _signed(_sale())
    assert receipt.qr_payload == VECTOR
    result = verify_receipt(VECTOR)
    assert result.ok, result.findings


@pytest.mark.parametrize("width", [32, 48])
def test_text_has_every_paragraph_6_field(width: int) -> None:
    receipt = _signed(_sale(), not_certified=True)
    text = render_text(receipt, width=width)
    lines = text.split("\n")
    assert all(len(line) <= width for line in lines)
    joined = _flat(text)
    # Nr. 1 seller name and address
    assert "Café Beispiel GmbH" in text and "Hauptstraße 1" in text and "12345 Musterstadt" in text
    # Nr. 2 date of issue (local time), start and end of the transaction (as logged)
    assert "Datum: 23.08.2021 16:36:33" in text
    assert "TSE-Start: 2021-08-23T14:36:27.000Z" in joined
    assert "TSE-Stop: 2021-08-23T14:36:33.000Z" in joined
    # Nr. 3 quantity and kind of the items
    assert "Kaffee" in text and "2 x 8,50" in text and "Frühstück" in text
    assert re.search(r"Kaffee +4,42 A", text)
    # Nr. 4 transaction number
    assert "TSE-Transaktion: 1" in lines
    # Nr. 5 net and tax per rate (19 %: 18,00 net + 3,42 tax = 21,42)
    assert "19 %" in text and "18,00" in text and "3,42" in text
    assert re.search(r"SUMME EUR +21,42", text)
    # Nr. 6 serial numbers of register and TSE
    assert "ERS 8cb8e2de-4052-481b-945b-118022951944" in joined
    assert TSE_SERIAL in joined
    # Nr. 7 signature and signature counter
    assert base64.b64encode(SIGNATURE).decode() in joined
    assert "TSE-Signaturzähler: 31" in lines
    assert "TSE-Zeitformat: unixTime" in joined
    assert "TSE-Hashalgorithmus: ecdsa-plain-SHA256" in joined
    assert "TSE-PublicKey: " + base64.b64encode(PUBLIC_KEY).decode() in joined
    assert "Girocard" in text
    assert NOT_CERTIFIED_TEXT in " ".join(lines)
    assert "TSE ausgefallen" not in text


def test_tse_failed_receipt_has_no_transaction_number() -> None:
    receipt = _failed(_sale())
    assert receipt.transaction_number is None and receipt.qr_payload is None
    text = render_text(receipt, width=32)
    assert "TSE ausgefallen" in text
    assert "TSE-Transaktion" not in text and "TSE-Signatur" not in text
    joined = _flat(text)
    assert "Vorgangsbeginn: 23.08.2021 16:36:27" in joined
    assert "Vorgangsende: 23.08.2021 16:36:33" in joined
    assert "Kassen-Seriennummer: KASSE-1" in joined
    assert "TSE-Seriennummer: " + TSE_SERIAL in joined
    assert NOT_CERTIFIED_TEXT in " ".join(text.split("\n"))


def test_qr_only_leaves_the_tse_block_to_the_qr_code() -> None:
    text = render_text(_signed(_sale(), qr_only=True))
    assert "TSE-Daten im QR-Code" in text
    assert "TSE-Signatur" not in text
    assert "Kassen-Seriennummer" in text


def test_training_storno_headings_and_exemption_note() -> None:
    sale = Sale("AVTraining")
    sale.add_line("Buch", 1, "10.00", 6)
    sale.add_payment("cash", "20.00")
    text = render_text(_failed(sale), width=48)
    assert "TRAININGSBELEG" in text
    assert "Umsatzsteuerfrei" in text
    assert re.search(r"Rückgeld +10,00", text)
    storno = render_text(_failed(_sale().storno()), width=32)
    assert "STORNO" in storno and "-21,42" in storno


def test_receipt_invariants() -> None:
    with pytest.raises(ProtocolError):
        Seller("Laden", ())
    with pytest.raises(ProtocolError):  # unsigned needs its own times
        Receipt.from_sale(_sale(), seller=SELLER, register_serial="K", issued_at=END)
    with pytest.raises(ProtocolError):  # QR only without QR
        Receipt.from_sale(
            _sale(),
            seller=SELLER,
            register_serial="K",
            issued_at=END,
            start_time=START,
            end_time=END,
            qr_only=True,
        )


def _decode(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1
    return str(results[0].text)


def test_qr_png_decodes_back_to_the_payload() -> None:
    png = render_qr_png(VECTOR)
    assert png.startswith(b"\x89PNG")
    assert _decode(png) == VECTOR
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "receipt-qr.png").write_bytes(png)
    svg = render_qr_svg(VECTOR)
    assert svg.lstrip().startswith("<?xml") or "<svg" in svg[:200]


def test_text_receipt_rendering_is_saved_and_its_qr_decodes() -> None:
    receipt = _signed(_sale(), not_certified=True)
    for width in (32, 48):
        png = render_receipt_png(render_text(receipt, width=width), receipt.qr_payload)
        assert _decode(png) == VECTOR
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"receipt-{width}.png").write_bytes(png)
    failed = render_receipt_png(render_text(_failed(_sale()), width=32))
    (ARTIFACTS / "receipt-tse-failed-32.png").write_bytes(failed)
    assert Image.open(io.BytesIO(failed)).size[1] > 200


def test_escpos_bytes() -> None:
    data = render_escpos(_signed(_sale()), width=48, module_size=4)
    assert data.startswith(b"\x1b@\x1bt\x13")
    assert data.endswith(b"\x1dVB\x00")
    assert "Hauptstraße".encode("cp858") in data
    store = qr_commands(VECTOR)
    assert store in data
    payload = VECTOR.encode()
    size = len(payload) + 3
    assert b"\x1d(k" + bytes([size & 0xFF, size >> 8]) + b"1P0" + payload in data
    assert b"\x1d(k\x03\x001E1" in data  # error correction M
    assert b"\x1d(k\x03\x001Q0" in data  # print
    # the QR code fits the paper: 58 mm paper has 384 dots, 80 mm 576
    for width, dots in ((32, 384), (48, 576)):
        size = auto_module_size(VECTOR, dots)
        modules = make_qr(VECTOR).symbol_size(border=4)[0]
        assert size * modules <= dots
        assert (size + 1) * modules > dots or size == 6
        assert b"\x1d(k\x03\x001C" + bytes([size]) in render_escpos(_signed(_sale()), width=width)
    unsigned = render_escpos(_failed(_sale()))
    assert b"\x1d(k" not in unsigned
    assert b"TSE ausgefallen" in unsigned


def test_pdf_contains_payload_and_qr_image() -> None:
    pdf = render_pdf(_signed(_sale(), not_certified=True))
    assert pdf.startswith(b"%PDF")
    assert VECTOR.encode() in pdf or VECTOR.encode("utf-16-be") in pdf
    assert b"/Subtype /Image" in pdf
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "receipt.pdf").write_bytes(pdf)
    texts = b"".join(
        zlib.decompress(m.group(1))
        for m in re.finditer(rb"/FlateDecode.*?stream\r?\n(.*?)\r?\nendstream", pdf, re.S)
        if _inflatable(m.group(1))
    )
    assert rb"Keine zertifizierte TSE \(opentse\)" in texts  # PDF string escapes
    assert _pdf_qr_text(pdf) == VECTOR
    assert render_pdf(_failed(_sale())).startswith(b"%PDF")


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler's pdftotext")
def test_pdf_page_holds_every_character_of_the_text_receipt(tmp_path: Path) -> None:
    """poppler reads only what lies on the 80 mm page: every line of the 48-column
    text receipt, the signature and serial numbers to their last character, must be
    there (Courier at 7.6 pt was 77 mm wide: the last column fell off the page)."""
    receipt = _signed(_sale(), not_certified=True)
    path = tmp_path / "receipt.pdf"
    path.write_bytes(render_pdf(receipt))
    read = subprocess.run(
        ["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    on_page = {" ".join(line.split()) for line in read.splitlines()}
    for line in render_text(receipt, width=48).split("\n"):
        if line.strip():
            assert " ".join(line.split()) in on_page, line


def _pdf_qr_text(pdf: bytes) -> str:
    """Decode the QR image inside the PDF: fpdf2 stores 1-bit images as CCITT G4, which
    Pillow reads once wrapped in a minimal TIFF; zxing-cpp then reads the symbol."""
    found = re.search(
        rb"/DecodeParms <<(.*?)>>\s*/Filter /CCITTFaxDecode\s*/Height (\d+)\s*/Length (\d+)"
        rb"\s*/Subtype /Image\s*/Type /XObject\s*/Width (\d+)\s*>>\s*stream\r?\n",
        pdf,
        re.S,
    )
    assert found is not None, "no CCITT image in the PDF"
    height, length, width = int(found.group(2)), int(found.group(3)), int(found.group(4))
    data = pdf[found.end() : found.end() + length]
    photometric = 0 if b"/BlackIs1 true" in found.group(1) else 1
    tags = [
        (256, 3, width), (257, 3, height), (258, 3, 1), (259, 3, 4), (262, 3, photometric),
        (273, 4, 8 + 2 + 8 * 12 + 4), (278, 3, height), (279, 4, len(data)),
    ]  # fmt: skip
    tiff = bytearray(b"II*\x00" + struct.pack("<IH", 8, len(tags)))
    for tag, kind, value in tags:
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        tiff += struct.pack("<HHI", tag, kind, 1) + packed
    tiff += struct.pack("<I", 0) + data
    image = Image.open(io.BytesIO(bytes(tiff)))
    results = zxingcpp.read_barcodes(image.convert("L"))
    assert len(results) == 1
    return str(results[0].text)


def _inflatable(data: bytes) -> bool:
    try:
        zlib.decompress(data)
    except zlib.error:
        return False
    return True


def test_money_is_decimal_on_the_receipt() -> None:
    receipt = _signed(_sale())
    assert receipt.total == Decimal("21.42")
    assert all(isinstance(t.net, Decimal) for t in receipt.taxes)
