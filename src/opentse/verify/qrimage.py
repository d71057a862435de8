"""Read receipt QR codes from a photo or scan (zxing-cpp, a maintained decoder on PyPI
and in Debian), so a receipt can be checked from a picture of it."""

from __future__ import annotations

import warnings
from pathlib import Path

import zxingcpp
from PIL import Image, UnidentifiedImageError

from opentse.errors import FormatError

MAX_PIXELS = 50_000_000  # a 50 MP phone photo; decoding more costs too much memory


def refuse_huge_image(path: Path) -> None:
    """FormatError(E_QR_IMAGE_TOO_LARGE) for an image whose header claims more than
    MAX_PIXELS, before anything is decoded: a 10 MB PNG can claim billions of pixels
    (Pillow raises a DecompressionBombError, no OSError, above ~178 million and only
    warns below that, after hundreds of MB). An unreadable file passes: the reader
    says so in its own words."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        width, height = MAX_PIXELS + 1, 1
    except Exception:
        return
    if width * height > MAX_PIXELS:
        raise FormatError(
            f"{path.name}: the image has more than {MAX_PIXELS // 10**6} million pixels",
            code="E_QR_IMAGE_TOO_LARGE",
        )


def read_qr_texts(path: Path) -> list[str]:
    """Texts of every QR code in the image, receipt-looking ones (``V0;``) first.

    Raises FormatError(E_QR_IMAGE) when the file is no image or holds no QR code,
    E_QR_IMAGE_TOO_LARGE when it claims more than MAX_PIXELS.
    """
    refuse_huge_image(path)
    try:
        with Image.open(path) as image:
            image.load()
            barcodes = zxingcpp.read_barcodes(
                image.convert("L"),
                formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode),
                text_mode=zxingcpp.TextMode.Plain,
            )
    except (OSError, UnidentifiedImageError) as exc:
        raise FormatError(f"{path.name}: {_unreadable(path, exc)}", code="E_QR_IMAGE") from None
    texts = [str(b.text) for b in barcodes if b.valid]
    if not texts:
        raise FormatError(f"{path.name}: no QR code found in the image", code="E_QR_IMAGE")
    return sorted(texts, key=lambda t: not t.startswith("V0;"))


def _unreadable(path: Path, exc: BaseException) -> str:
    """Why the file is no picture to read, and what to give instead."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "a folder, not an image"
    try:
        with path.open("rb") as fh:
            head = fh.read(512).lstrip()
    except OSError:
        head = b""
    if head.startswith(b"\x1b@"):  # ESC @, how an ESC/POS print job starts
        return (
            "ESC/POS printer bytes are not read: print them and give a photo or scan of "
            "the QR code (PNG, JPEG), or its text"
        )
    if head.startswith(b"%PDF") or b"<svg" in head:
        kind = "a PDF" if head.startswith(b"%PDF") else "an SVG"
        return f"{kind} is not read: give a photo or scan of the QR code (PNG, JPEG) or its text"
    return f"not a readable image ({exc}): give a photo or scan (PNG, JPEG) or the QR text"


def receipt_texts(texts: list[str]) -> list[str]:
    """The QR codes of a picture to verify as receipts: every one that looks like a
    receipt (``V0;``), so an altered receipt beside a good one is not missed; the
    first code when none does (its finding then says what it is not)."""
    return [t for t in texts if t.startswith("V0;")] or texts[:1]
