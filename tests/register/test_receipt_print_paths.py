"""Receipts the ways a shop prints them (PDF, ESC/POS, QR image, text with --qr-only),
read back with tools that are not ours: poppler's pdftotext, zxing-cpp, and a small
ESC/POS reader written from Epson's command reference (below), not from our renderer.

Each test names the defect it holds shut: a QR-only bill lost TSE-Erstbestellung; the
PDF printed '?' for the euro sign; a long order's QR text made every renderer raise
segno's DataOverflowError; a control character in a booked text reached the printer as
a command; the printer's QR code held other octets than the PNG/PDF one.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from opentse.errors import FormatError
from opentse.register.money import format_money
from opentse.register.receipt import (
    NOT_CERTIFIED_TEXT,
    Receipt,
    ReceiptLine,
    Seller,
    TaxLine,
    TseSignature,
)
from opentse.register.render_escpos import render_escpos
from opentse.register.render_image import render_receipt_png
from opentse.register.render_pdf import render_pdf
from opentse.register.render_qr import fits_qr, render_qr_png, render_qr_svg
from opentse.register.render_text import NO_QR_TEXT, render_text
from opentse.register.sale import Sale

VECTOR = (
    "V0;ERS 8cb8e2de-4052-481b-945b-118022951944;Kassenbeleg-V1;"
    "Beleg^21.42_0.00_0.00_0.00_0.00^21.42:Unbar;1;31;2021-08-23T14:36:27.000Z;"
    "2021-08-23T14:36:33.000Z;ecdsa-plain-SHA256;unixTime;"
    "TGnWiq3ZW7gi4Vs+DxLGsJZj9v271dHmhQAcb057F3oWkdKJ61UW2LLVTZQhW673yLa53Mm6oPeMU1Ns3ZOH7w==;"
    "BGFKQP7EENf3s5hTDXvlh+xyJ1Q9BNIa9LyYbYK+pTAKAGQ2fmI40p5QOrpHpvb+UuOrNQJdhzggHNfyyyDyf/g="
)
CLIENT = "ERS 8cb8e2de-4052-481b-945b-118022951944"
SIGNATURE = base64.b64decode(VECTOR.split(";")[10])
PUBLIC_KEY = base64.b64decode(VECTOR.split(";")[11])
SELLER = Seller("Bäckerei Müller", ("Königstraße 5", "70173 Stuttgart"))
START = datetime(2021, 8, 23, 14, 36, 27, tzinfo=UTC)
END = datetime(2021, 8, 23, 14, 36, 33, tzinfo=UTC)
FIRST_ORDER = datetime(2021, 8, 23, 13, 2, 5, 250000, tzinfo=UTC)


def _receipt(
    sale: Sale,
    *,
    process_type: str = "Kassenbeleg-V1",
    process_data: str = "Beleg^21.42_0.00_0.00_0.00_0.00^21.42:Unbar",
    first_order_start: datetime | None = None,
    qr_only: bool = False,
) -> Receipt:
    """A signed receipt; its QR text is the spec's vector when the defaults are kept
    (then it verifies), other processData give a QR text of the same shape."""
    tse = TseSignature(
        transaction_number=1,
        signature_counter=31,
        start_time=START,
        end_time=END,
        signature=SIGNATURE,
        public_key=PUBLIC_KEY,
        serial_number=hashlib.sha256(PUBLIC_KEY).hexdigest(),
        signature_algorithm="ecdsa-plain-SHA256",
        time_format="unixTime",
        client_id=CLIENT,
        process_type=process_type,
        process_data=process_data,
    )
    return Receipt.from_sale(
        sale,
        seller=SELLER,
        register_serial=CLIENT,
        issued_at=END,
        tse=tse,
        receipt_number="17",
        not_certified=True,
        qr_only=qr_only,
        first_order_start=first_order_start,
    )


def _sale(*texts: str) -> Sale:
    sale = Sale()
    for text in texts or ("Kaffee",):
        sale.add_line(text, 1, "1.00", 1)
    sale.add_payment("card", str(len(texts or (1,))) + ".00")
    return sale


# --- a small ESC/POS reader (Epson ESC/POS command reference) ---------------------


@dataclass
class Printed:
    """What an Epson TM printer makes of the bytes: the code page selected, the text
    (decoded in that code page) and the data stored for the QR code (GS ( k fn 180)."""

    codepage: int | None
    text: str
    qr_data: bytes | None


CODEPAGES = {0: "cp437", 2: "cp850", 16: "cp1252", 19: "cp858"}


def read_escpos(data: bytes) -> Printed:
    """Walk the bytes command by command; any control byte that is not LF/CR or one of
    the commands below fails the test (the printer would run it as a command)."""
    codepage: int | None = None
    text = bytearray()
    qr: bytes | None = None
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == 0x1B:  # ESC
            command = data[i + 1]
            if command == 0x40:  # ESC @ initialise
                i += 2
            elif command == 0x74:  # ESC t n: character code table
                codepage = data[i + 2]
                i += 3
            elif command == 0x61:  # ESC a n: justification
                assert data[i + 2] in (0, 1, 2, 48, 49, 50)
                i += 3
            else:
                raise AssertionError(f"ESC {command:#04x} at octet {i}: not a receipt command")
        elif byte == 0x1D:  # GS
            command = data[i + 1]
            if command == 0x28 and data[i + 2] == 0x6B:  # GS ( k pL pH cn fn ...
                length = data[i + 3] | data[i + 4] << 8
                body = data[i + 5 : i + 5 + length]
                assert body[0] == 49, "cn 49 is the QR code"
                if body[1] == 80:  # fn 180: store, m = 48
                    assert body[2] == 48
                    qr = body[3:]
                i += 5 + length
            elif command == 0x56:  # GS V m n: cut
                assert data[i + 2] in (65, 66)
                i += 4
            else:
                raise AssertionError(f"GS {command:#04x} at octet {i}: not a receipt command")
        elif (byte < 0x20 and byte not in (0x0A, 0x0D)) or byte == 0x7F:
            raise AssertionError(f"control octet {byte:#04x} at {i} in the text")
        else:
            text += bytes([byte])
            i += 1
    assert codepage in CODEPAGES, f"no known code page selected ({codepage})"
    return Printed(codepage, bytes(text).decode(CODEPAGES[codepage]), qr)


# --- the tests --------------------------------------------------------------------


@pytest.mark.parametrize("width", [32, 48])
def test_qr_only_bill_still_prints_the_first_orders_start(width: int) -> None:
    """DSFinV-K 2.7 (tills that sign orders): the bill prints the first order's TSE
    start; the QR code has no field for it. With --qr-only it was printed nowhere."""
    receipt = _receipt(_sale(), first_order_start=FIRST_ORDER, qr_only=True)
    text = render_text(receipt, width=width)
    flat = text.replace(":\n", ": ")
    assert "TSE-Daten im QR-Code" in flat
    assert "TSE-Erstbestellung: 2021-08-23T13:02:05.250Z" in flat
    assert "TSE-Signatur" not in flat  # the rest stays in the QR code
    printed = read_escpos(render_escpos(receipt, width=width))
    assert "TSE-Erstbestellung" in printed.text
    assert printed.qr_data == VECTOR.encode("ascii")
    # a bill without a first order prints no such line, QR-only or not
    assert "Erstbestellung" not in render_text(_receipt(_sale(), qr_only=True), width=width)


def _pdftotext(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "receipt.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler's pdftotext")
def test_pdf_prints_the_euro_sign_and_umlauts(tmp_path: Path) -> None:
    """A line 'Brötchen €-Angebot' came out of the PDF as 'Brötchen ?-Angebot':
    the text was made latin-1, which has no euro sign, for a font that has one."""
    sale = _sale("Brötchen €-Angebot", "Tee „Grün“ – groß…")
    read = _pdftotext(render_pdf(_receipt(sale)), tmp_path)
    assert "Brötchen €-Angebot" in read
    assert "Tee „Grün“ – groß…" in read
    assert "Bäckerei Müller" in read and "Königstraße 5" in read
    assert NOT_CERTIFIED_TEXT in read


def _order(texts: list[str], *, qr_only: bool = False) -> Receipt:
    """An order's receipt: Bestellung-V1 carries every line in the signed processData."""
    sale = Sale()
    for text in texts:
        sale.add_line(text, 1, "1.10", 1)
    order = sale.as_order()
    return _receipt(
        order,
        process_type="Bestellung-V1",
        process_data=order.order_process_data(),
        qr_only=qr_only,
    )


def _zxing(png: bytes) -> list[zxingcpp.Barcode]:
    return list(zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L")))


@pytest.mark.parametrize("qr_only", [False, True])
def test_an_order_too_long_for_a_qr_code_prints_its_tse_data_as_text(
    qr_only: bool, tmp_path: Path
) -> None:
    """120 order lines make a 5,000-octet QR text, more than the largest QR code holds
    (2,331 octets at level M): render_escpos, render_pdf and the PNG raised segno's
    DataOverflowError, so the order had no receipt at all. Now every renderer prints
    the receipt with the TSE fields as text (also when the till prints QR-only) and no
    QR code; the QR image alone is refused with E_QR_TOO_LONG."""
    receipt = _order([f"Artikel {i} Kürbis-Gemüse-Suppe" for i in range(120)], qr_only=qr_only)
    payload = receipt.qr_payload
    assert payload is not None and len(payload) > 2331
    assert not fits_qr(payload)
    for width in (32, 48):
        text = render_text(receipt, width=width)
        flat = text.replace(":\n", ": ")
        assert "TSE-Daten im QR-Code" not in flat
        for label in ("TSE-Transaktion: 1", "TSE-Signaturzähler: 31", "TSE-Start: "):
            assert label in flat
        assert "TSE-Signatur:" in flat and NO_QR_TEXT in text
        printed = read_escpos(render_escpos(receipt, width=width))
        assert printed.qr_data is None
        assert "TSE-Signaturzähler: 31" in printed.text.replace(":\r\n", ": ")
        assert NO_QR_TEXT in printed.text
    png = render_receipt_png(render_text(receipt), payload)
    assert _zxing(png) == []
    pdf = render_pdf(receipt)
    assert pdf.startswith(b"%PDF") and b"/Subtype /Image" not in pdf
    for image in (render_qr_png, render_qr_svg):
        with pytest.raises(FormatError) as refused:
            image(payload)
        assert refused.value.code == "E_QR_TOO_LONG"
    # an order that fits keeps its QR code, and a QR-only one its short TSE block
    short = _order(["Suppe", "Brot"], qr_only=qr_only)
    assert NO_QR_TEXT not in render_text(short)
    assert read_escpos(render_escpos(short)).qr_data is not None


def test_the_printers_qr_code_holds_the_octets_of_the_png_one() -> None:
    """An order's QR text holds its line texts. segno (PNG, SVG, PDF) stores 'groß' in
    ISO 8859-1, the QR code's default character set; the ESC/POS QR code stored UTF-8,
    which a reader keeping to the default reads as 'groÃ\x9f', and the rebuilt
    processData no longer matches the signature. Both now hold the same octets (zxing
    reads the PNG's); a text ISO 8859-1 cannot hold (€) is UTF-8 in both."""
    for texts in (["Kaffee groß", "Brötchen"], ["Menü 12 €"]):
        receipt = _order(texts)
        payload = receipt.qr_payload
        assert payload is not None
        (read,) = _zxing(render_qr_png(payload))
        assert read.text == payload
        printed = read_escpos(render_escpos(receipt))
        assert printed.qr_data == read.bytes


def test_a_control_character_in_a_booked_text_never_reaches_the_printer() -> None:
    """Books written before the register refused control characters (text.py) hold
    such texts, and a storno or a reprint lays them out again: 'Ka\\x1biffee' sent
    ESC i (cut) to the printer mid-receipt, and raw ESC to the terminal of pos sell.
    Every renderer now shows a control character as '?' (a TAB as blanks)."""
    receipt = Receipt(
        seller=Seller("Laden\x07", ("Weg 1\t2", "12345 Ort")),
        register_serial=CLIENT,
        issued_at=END,
        lines=(ReceiptLine("Ka\x1biffee\x00", Decimal(1), Decimal("1.00"), Decimal("1.00"), 1),),
        taxes=(TaxLine(1, Decimal(19), Decimal("0.84"), Decimal("0.16"), Decimal("1.00")),),
        total=Decimal("1.00"),
        tse=_receipt(_sale()).tse,
        not_certified=True,
    )
    text = render_text(receipt)
    assert not any((ord(c) < 0x20 and c != "\n") or ord(c) == 0x7F for c in text)
    assert "Ka?iffee?" in text and "Laden?" in text and "Weg 1" in text
    printed = read_escpos(render_escpos(receipt, width=32))  # fails on any stray command
    assert "Ka?iffee?" in printed.text
    assert NOT_CERTIFIED_TEXT in printed.text.replace("\r\n", " ")


_TEXTS = st.text("abcdefghijklmnopqrstuvwxyzABCÄÖÜäöüß€ -.,/&()0123456789", min_size=1, max_size=70)
_LINES = st.lists(
    st.tuples(
        _TEXTS.filter(lambda t: t.strip() != ""),
        st.sampled_from(["1", "2", "0.5", "2.345", "-1"]),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999999.99"), places=2),
        st.sampled_from([1, 2, 3, 5, 6]),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=80, deadline=None)
@given(lines=_LINES, width=st.sampled_from([32, 48]))
def test_every_printed_line_fits_the_paper_and_every_tax_amount_is_printed(
    lines: list[tuple[str, str, Decimal, int]], width: int
) -> None:
    """A printer wraps a line longer than its paper wherever it ends, so no line of a
    receipt may be longer than its columns. The 80 mm tax table had 12-column amounts:
    from 10.000.000,00 up (the register books up to 99.999.999.999,99) an amount filled
    its column and ran into the next ('93.457.934,586.542.055,42'), two amounts
    read as one."""
    sale = Sale()
    for text, quantity, price, key in lines:
        sale.add_line(text, quantity, price, key)
    sale.add_payment("cash", max(sale.total, Decimal(0)))
    receipt = _receipt(sale)
    text = render_text(receipt, width=width)
    assert all(len(line) <= width for line in text.split("\n"))
    printed = read_escpos(render_escpos(receipt, width=width))
    assert all(len(line) <= width for line in printed.text.split("\r\n"))
    words = set(text.split())
    for tax in receipt.taxes:
        for amount in (tax.net, tax.tax, tax.gross):
            assert format_money(amount) in words
