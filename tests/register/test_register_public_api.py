"""The public API of opentse.register and opentse.formats.processdata, pinned: removing
or renaming a name here is a breaking change for integrators and must be deliberate."""

from __future__ import annotations

import opentse.formats.processdata as processdata
import opentse.register as register

REGISTER_API = {
    "NOT_CERTIFIED_TEXT", "TSE_FAILED_TEXT", "VAT_TABLE", "Backend", "CashBookEntry",
    "EmbeddedBackend", "Light", "OpenTransaction", "OutageLog", "Receipt", "ReceiptLine",
    "ReceiptPayment", "Register", "RegisterConfig", "RegisterStatus", "RemoteBackend", "Sale",
    "SaleLine", "SalePayment", "SaleResult", "Seller", "Signed", "Started", "TSEUnavailable",
    "TaxLine", "TseSignature", "VatRate", "VatTotal", "format_money", "render_escpos",
    "render_pdf", "render_qr_png", "render_qr_svg", "render_receipt_png", "render_text",
    "round_cents", "split_gross",
}  # fmt: skip

PROCESSDATA_API = {
    "BON_TYPES", "PROCESS_TYPE_KASSENBELEG", "PROCESS_TYPE_BESTELLUNG", "PROCESS_TYPE_SONSTIGER",
    "KassenbelegV1", "Payment", "OrderLine", "build_kassenbeleg", "parse_kassenbeleg",
    "build_bestellung", "parse_bestellung", "format_amount", "parse_amount", "format_quantity",
    "cut_amount", "vat_slot", "accumulate_payments", "from_fiskaly_receipt", "from_fiskaly_order",
    "FISKALY_RECEIPT_TYPES", "FISKALY_VAT_RATES", "FISKALY_PAYMENT_TYPES",
}  # fmt: skip


def test_register_exports() -> None:
    assert set(register.__all__) == REGISTER_API
    for name in REGISTER_API:
        assert getattr(register, name) is not None


def test_processdata_names() -> None:
    missing = {name for name in PROCESSDATA_API if not hasattr(processdata, name)}
    assert missing == set()
