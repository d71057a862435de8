"""A PNG preview of a receipt as the printer would show it (Pillow).

Text is drawn character by character on a fixed grid, so the layout is monospaced even
when only Pillow's built-in (proportional) font is available; DejaVu Sans Mono is used
when the system has it. The QR code goes below the text.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from opentse.register.render_qr import fits_qr, make_qr

_MONO_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
)
FontType = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font(size: int) -> FontType:
    for path in _MONO_FONTS:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def render_receipt_png(
    text: str, qr_payload: str | None = None, *, font_size: int = 16, qr_scale: int = 3
) -> bytes:
    """PNG bytes of ``text`` (monospaced grid) with the QR code of ``qr_payload`` below."""
    lines = text.split("\n")
    font = _font(font_size)
    cell_w = max(1, round(font.getlength("M")))
    cell_h = round(font_size * 1.35)
    columns = max((len(line) for line in lines), default=1)
    pad = 12
    qr_image: Image.Image | None = None
    if qr_payload is not None and fits_qr(qr_payload):  # else the text has the TSE data
        buffer = io.BytesIO()
        make_qr(qr_payload).save(buffer, kind="png", scale=qr_scale, border=4)
        qr_image = Image.open(io.BytesIO(buffer.getvalue())).convert("L")
    width = max(columns * cell_w, qr_image.width if qr_image else 0) + 2 * pad
    height = len(lines) * cell_h + 2 * pad + (qr_image.height + pad if qr_image else 0)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        for column, char in enumerate(line):
            if char != " ":
                draw.text((pad + column * cell_w, pad + row * cell_h), char, fill=0, font=font)
    if qr_image is not None:
        image.paste(qr_image, ((width - qr_image.width) // 2, pad + len(lines) * cell_h + pad))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
