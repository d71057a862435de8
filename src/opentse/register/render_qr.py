"""The receipt QR code as PNG or SVG (segno).

Error correction defaults to level M: the DSFinV-K Anhang I text we could reach does
not fix a level, and M (15 % recovery) survives the smudges of thermal paper while
keeping the ~300-character payload at a size a 58 mm printer prints sharply. The level
is never raised silently (``boost_error=False``) so a given payload always gives the
same symbol.
"""

from __future__ import annotations

import io

import segno

ERROR_LEVELS = ("L", "M", "Q", "H")
DEFAULT_ERROR = "M"


def make_qr(payload: str, error: str = DEFAULT_ERROR) -> segno.QRCode:
    """A (non-micro) QR code for the payload, byte mode as needed."""
    if error.upper() not in ERROR_LEVELS:
        raise ValueError(f"error correction level must be one of {ERROR_LEVELS}")
    return segno.make_qr(payload, error=error.lower(), boost_error=False)


def render_qr_png(
    payload: str, *, scale: int = 4, border: int = 4, error: str = DEFAULT_ERROR
) -> bytes:
    """PNG bytes of the QR code (black on white, ``scale`` pixels per module)."""
    buffer = io.BytesIO()
    make_qr(payload, error).save(buffer, kind="png", scale=scale, border=border)
    return buffer.getvalue()


def render_qr_svg(
    payload: str, *, scale: int = 4, border: int = 4, error: str = DEFAULT_ERROR
) -> str:
    """SVG text of the QR code."""
    buffer = io.BytesIO()
    make_qr(payload, error).save(buffer, kind="svg", scale=scale, border=border)
    return buffer.getvalue().decode("utf-8")
