"""ESC/POS bytes for thermal receipt printers (Epson TM series and compatibles).

Sequence: ``ESC @`` (initialise), ``ESC t 19`` (code page PC858: German umlauts and
the euro sign), the text of :func:`render_text`, the QR code with the model-2
``GS ( k`` functions 165/167/169/180/181 (select model, module size, error level, store,
print), feed, ``GS V 66 0`` (feed and partial cut).
"""

from __future__ import annotations

from datetime import tzinfo

from opentse.register.receipt import Receipt
from opentse.register.render_qr import DEFAULT_ERROR, ERROR_LEVELS, make_qr, payload_octets
from opentse.register.render_text import printed_qr, render_text

ESC = b"\x1b"
GS = b"\x1d"
INIT = ESC + b"@"
CODEPAGE_PC858 = ESC + b"t" + bytes([19])
ALIGN_LEFT = ESC + b"a\x00"
ALIGN_CENTER = ESC + b"a\x01"
CUT = GS + b"V" + bytes([66, 0])
_QR_STORE_MAX = 7089  # the largest model-2 symbol in numeric mode; bytes are fewer
#: Printable dots per line at 203 dpi: 58 mm paper (32 columns), 80 mm (48 columns).
PAPER_DOTS = {32: 384, 48: 576}
MAX_MODULE_DOTS = 6


def auto_module_size(payload: str, paper_dots: int, error: str = DEFAULT_ERROR) -> int:
    """The largest module size (dots, at most 6) at which the symbol and its 4-module
    quiet zone fit the paper: a QR code wider than the paper is not printed at all."""
    modules = int(make_qr(payload, error).symbol_size(border=4)[0])
    return max(1, min(MAX_MODULE_DOTS, paper_dots // modules))


def _qr_function(fn: int, data: bytes) -> bytes:
    """``GS ( k pL pH cn fn [data]`` with cn = 49 (QR code)."""
    length = len(data) + 2
    return GS + b"(k" + bytes([length & 0xFF, length >> 8, 49, fn]) + data


def qr_commands(payload: str, *, module_size: int = 4, error: str = DEFAULT_ERROR) -> bytes:
    """The GS ( k commands that store and print ``payload`` as a QR code."""
    if not 1 <= module_size <= 16:
        raise ValueError("module size must be 1..16 dots")
    level = ERROR_LEVELS.index(error.upper())
    # the octets of the PNG/PDF symbol: ISO 8859-1 (QR's default, no ECI) where it can;
    # UTF-8 made a 'groß' in an order read 'groÃ\x9f' by a reader keeping to the default
    data = payload_octets(payload)
    if len(data) > _QR_STORE_MAX:
        raise ValueError("QR payload too long for a printer QR code")
    return b"".join(
        (
            _qr_function(65, bytes([50, 0])),  # fn 165: model 2
            _qr_function(67, bytes([module_size])),  # fn 167: module size
            _qr_function(69, bytes([48 + level])),  # fn 169: error correction L/M/Q/H
            _qr_function(80, b"0" + data),  # fn 180: store data (m = 48)
            _qr_function(81, b"0"),  # fn 181: print stored symbol
        )
    )


def render_escpos(
    receipt: Receipt, *, width: int = 48, tz: tzinfo | None = None, module_size: int | None = None
) -> bytes:
    """Printer-ready bytes: text, the QR code (when signed and a QR code holds it), feed
    and cut. The QR module size defaults to the largest that fits the paper of
    ``width`` columns."""
    text = render_text(receipt, width=width, tz=tz)
    body = text.replace("\n", "\r\n").encode("cp858", errors="replace") + b"\r\n"
    parts = [INIT, CODEPAGE_PC858, ALIGN_LEFT, body]
    payload = printed_qr(receipt)
    if payload is not None:
        size = module_size or auto_module_size(payload, PAPER_DOTS.get(width, 384))
        parts += [b"\r\n", ALIGN_CENTER, qr_commands(payload, module_size=size)]
        parts += [ALIGN_LEFT]
    parts += [b"\r\n" * 4, CUT]
    return b"".join(parts)
