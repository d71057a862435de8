"""Read receipt QR codes from a photo or scan (zxing-cpp, a maintained decoder on PyPI
and in Debian), so a receipt can be checked from a picture of it."""

from __future__ import annotations

from pathlib import Path

import zxingcpp
from PIL import Image, UnidentifiedImageError

from opentse.errors import FormatError


def read_qr_texts(path: Path) -> list[str]:
    """Texts of every QR code in the image, receipt-looking ones (``V0;``) first.

    Raises FormatError(E_QR_IMAGE) when the file is no image or holds no QR code.
    """
    try:
        with Image.open(path) as image:
            image.load()
            barcodes = zxingcpp.read_barcodes(
                image.convert("L"),
                formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode),
                text_mode=zxingcpp.TextMode.Plain,
            )
    except (OSError, UnidentifiedImageError) as exc:
        raise FormatError(f"{path.name}: not a readable image ({exc})", code="E_QR_IMAGE") from None
    texts = [str(b.text) for b in barcodes if b.valid]
    if not texts:
        raise FormatError(f"{path.name}: no QR code found in the image", code="E_QR_IMAGE")
    return sorted(texts, key=lambda t: not t.startswith("V0;"))
