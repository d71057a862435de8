"""opentse.register: the cash-register side of German fiscalization.

Book a :class:`Sale` (Decimal money, DSFinV-K VAT keys and business cases), sign it
through a :class:`Register` over an embedded TSE (:class:`EmbeddedBackend`) or any
fiskaly-compatible service (:class:`RemoteBackend`), and print the KassenSichV §6
:class:`Receipt` as text, ESC/POS, PDF or QR image. A TSE failure never blocks a
sale: the receipt says "TSE ausgefallen" and the :class:`OutageLog` records it.
"""

from __future__ import annotations

from opentse.register.backends import (
    Backend,
    EmbeddedBackend,
    OpenTransaction,
    Signed,
    Started,
    TSEUnavailable,
)
from opentse.register.money import VAT_TABLE, VatRate, format_money, round_cents, split_gross
from opentse.register.outage import Light, OutageLog, RegisterStatus
from opentse.register.receipt import (
    NOT_CERTIFIED_TEXT,
    TSE_FAILED_TEXT,
    Receipt,
    ReceiptLine,
    ReceiptPayment,
    Seller,
    TaxLine,
    TseSignature,
)
from opentse.register.register import Register, RegisterConfig
from opentse.register.remote import RemoteBackend
from opentse.register.render_escpos import render_escpos
from opentse.register.render_image import render_receipt_png
from opentse.register.render_pdf import render_pdf
from opentse.register.render_qr import render_qr_png, render_qr_svg
from opentse.register.render_text import render_text
from opentse.register.sale import CashBookEntry, Sale, SaleLine, SalePayment, VatTotal
from opentse.register.sale_result import SaleResult

__all__ = [
    "NOT_CERTIFIED_TEXT",
    "TSE_FAILED_TEXT",
    "VAT_TABLE",
    "Backend",
    "CashBookEntry",
    "EmbeddedBackend",
    "Light",
    "OpenTransaction",
    "OutageLog",
    "Receipt",
    "ReceiptLine",
    "ReceiptPayment",
    "Register",
    "RegisterConfig",
    "RegisterStatus",
    "RemoteBackend",
    "Sale",
    "SaleLine",
    "SalePayment",
    "SaleResult",
    "Seller",
    "Signed",
    "Started",
    "TSEUnavailable",
    "TaxLine",
    "TseSignature",
    "VatRate",
    "VatTotal",
    "format_money",
    "render_escpos",
    "render_pdf",
    "render_qr_png",
    "render_qr_svg",
    "render_receipt_png",
    "render_text",
    "round_cents",
    "split_gross",
]
