"""The receipt QR code as PNG or SVG (segno).

Error correction defaults to level M: the DSFinV-K Anhang I text we could reach does
not fix a level, and M (15 % recovery) survives the smudges of thermal paper while
keeping the ~300-character payload at a size a 58 mm printer prints sharply. The level
is never raised silently (``boost_error=False``) so a given payload always gives the
same symbol.
"""

from __future__ import annotations

import io
from functools import lru_cache

import segno
from segno.encoder import DataOverflowError

from opentse.errors import FormatError

ERROR_LEVELS = ("L", "M", "Q", "H")
DEFAULT_ERROR = "M"
TOO_LONG_CODE = "E_QR_TOO_LONG"


def make_qr(payload: str, error: str = DEFAULT_ERROR) -> segno.QRCode:
    """A (non-micro) QR code for the payload, byte mode as needed; ``E_QR_TOO_LONG``
    when no QR code holds it (:func:`fits_qr`)."""
    if error.upper() not in ERROR_LEVELS:
        raise ValueError(f"error correction level must be one of {ERROR_LEVELS}")
    try:
        return segno.make_qr(payload, error=error.lower(), boost_error=False)
    except DataOverflowError:
        raise FormatError(
            f"the receipt's QR text ({len(payload_octets(payload))} octets) is longer than "
            f"a QR code holds at error level {error.upper()} (2,331 octets at M): a long "
            "order's processData; the receipt prints its TSE data as text instead",
            code=TOO_LONG_CODE,
        ) from None


@lru_cache(maxsize=64)
def fits_qr(payload: str, error: str = DEFAULT_ERROR) -> bool:
    """Whether a QR code holds ``payload``. A Bestellung-V1 order carries every line
    in its processData, so a long order's QR text outgrows the largest symbol (version
    40); its receipt then prints the TSE fields as text and no QR code (§6 Satz 2:
    readable without a machine *or* from the QR code)."""
    try:
        make_qr(payload, error)
    except FormatError:
        return False
    return True


def payload_octets(payload: str) -> bytes:
    """The octets a QR code holds for ``payload``, as segno encodes byte mode: ISO
    8859-1 (the QR code's default, ISO/IEC 18004) when every character has one, else
    UTF-8. The printer's QR code (ESC/POS) stores the same octets."""
    try:
        return payload.encode("latin-1")
    except UnicodeEncodeError:
        return payload.encode("utf-8")


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
