"""PDF receipts (fpdf2): the text layout on a page as wide as the paper of its columns
(48 columns: 80 mm, 32 columns: 58 mm, as render_text and render_escpos), with the QR
code below.

The QR payload is also stored as the document's subject, so a program that reads the
PDF gets the exact Anhang I text without decoding the image.
"""

from __future__ import annotations

import io
from datetime import tzinfo

from opentse.register.receipt import Receipt
from opentse.register.render_qr import render_qr_png
from opentse.register.render_text import printed_qr, render_text

#: page width per text width (columns): the paper of a 58 mm and an 80 mm printer
PAGE_WIDTHS_MM = {32: 58.0, 48: 80.0}
MARGIN_MM = 4.0
LINE_MM = 3.6
#: Courier is 0.6 em wide: 48 columns at 7.0 pt are 71.1 mm, within the 72 mm between
#: the margins (7.6 pt made 77.2 mm, and the last column fell off the page); 32
#: columns are 47.4 mm of the 50 mm on 58 mm paper
FONT_SIZE_PT = 7.0
QR_MM = 44.0


#: fpdf2 writes its core fonts with WinAnsiEncoding (cp1252) but encodes their text as
#: latin-1 unless told: the euro sign (cp1252 0x80, not in latin-1) printed as '?'
CORE_FONT_ENCODING = "windows-1252"


def _latin1(text: str) -> str:
    """The text as fpdf2's core fonts take it: cp1252 (umlauts, €, „ “ – …); anything
    else becomes '?'."""
    return text.encode(CORE_FONT_ENCODING, errors="replace").decode(CORE_FONT_ENCODING)


def render_pdf(receipt: Receipt, *, tz: tzinfo | None = None, width: int = 48) -> bytes:
    """PDF bytes of the text receipt of ``width`` columns (32 or 48) on a page of its
    paper's width, plus the QR code image when signed. It was 80 mm and 48 columns
    whatever the till printed, so a 58 mm till's PDF was no copy of its receipt."""
    lines = render_text(receipt, width=width, tz=tz).split("\n")
    page_width = PAGE_WIDTHS_MM[width]  # render_text refused any other width
    payload = printed_qr(receipt)
    height = 2 * MARGIN_MM + LINE_MM * len(lines) + (QR_MM + 4 if payload else 0)
    from fpdf import FPDF  # here: fpdf2 and fontTools cost ~0.4 s to import

    pdf = FPDF(unit="mm", format=(page_width, max(height, 60.0)))
    pdf.core_fonts_encoding = CORE_FONT_ENCODING
    pdf.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
    pdf.set_auto_page_break(False)
    pdf.set_creator("opentse")
    pdf.set_title(_latin1(f"Beleg {receipt.receipt_number}".strip()))
    if receipt.qr_payload is not None:  # also when no QR code holds it
        pdf.set_subject(receipt.qr_payload)
    pdf.add_page()
    pdf.set_font("Courier", size=FONT_SIZE_PT)
    for line in lines:
        pdf.cell(page_width - 2 * MARGIN_MM, LINE_MM, _latin1(line))
        pdf.ln(LINE_MM)
    if payload is not None:
        image = io.BytesIO(render_qr_png(payload, scale=4, border=2))
        x = (page_width - QR_MM) / 2
        pdf.image(image, x=x, y=pdf.get_y() + 2, w=QR_MM, h=QR_MM)
    return bytes(pdf.output())
