"""The receipt and QR code of a finished transaction, as the register would print it.

The API stores no line items, only what the TSE signed: for a Kassenbeleg-V1 the gross
sums per VAT slot and the payments (DSFinV-K Anhang I). The receipt is rebuilt from
those with the register's own renderer (register.render_text), so the dashboard shows
the same TSE block and the same QR text as a printed receipt. Other process types
(orders, SonstigerVorgang) get the TSE block under their raw process data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from opentse.engine.results import SignResult
from opentse.errors import OpenTSEError
from opentse.server.service_store import TssRow

WIDTH = 48  # columns of the rebuilt receipt, as an 80 mm register prints it
SLOT_VAT_KEYS = (1, 2, 3, 4, 5)  # Kassenbeleg-V1 slot n carries DSFinV-K VAT key n
PAYMENT_LABELS = {"Bar": "Bar", "Unbar": "Unbar"}


def _dt(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


def receipt_day(result: SignResult) -> date:
    """The shop-local day of a receipt (its Finish log), whose VAT rates apply
    (the dashboard's zone, ``pages.shop_zone_of_env``)."""
    from opentse.dashboard.pages import shop_zone_of_env
    from opentse.register.shoptime import local_day

    return local_day(_dt(result.log_time), shop_zone_of_env())


def tse_signature(result: SignResult) -> Any:
    from opentse.register.backends import signed_from_result

    return signed_from_result(result, errors="replace").to_tse_signature()


def qr_text_of(result: SignResult) -> str | None:
    """The receipt QR text, or None when processData cannot be carried (';', binary)."""
    try:
        text: str = tse_signature(result).qr_payload()
    except (OpenTSEError, ValueError, UnicodeDecodeError):
        return None
    return text


def receipt_for(ctx: Any, org_name: str, tss: TssRow, result: SignResult) -> tuple[str, str | None]:
    """(receipt text, QR text) of a signed Finish log."""
    from opentse.formats.processdata import parse_kassenbeleg
    from opentse.register.money import split_gross, vat_percent_on
    from opentse.register.receipt import (
        NOT_CERTIFIED_TEXT,
        Receipt,
        ReceiptPayment,
        Seller,
        TaxLine,
    )
    from opentse.register.render_text import render_text, tse_fields

    qr = qr_text_of(result)
    sig = tse_signature(result)
    address = tss.metadata.get("address") or tss.metadata.get("location") or "-"
    seller = Seller(org_name or "opentse", (address,))
    if result.process_type == "Kassenbeleg-V1":
        try:
            kb = parse_kassenbeleg(result.process_data.decode("utf-8"))
            taxes = []
            day = receipt_day(result)  # the rate in force then, as the register printed it
            for key, gross in zip(SLOT_VAT_KEYS, kb.gross, strict=True):
                if gross:
                    net, tax = split_gross(gross, key, day)
                    taxes.append(TaxLine(key, vat_percent_on(key, day), net, tax, gross))
            receipt = Receipt(
                seller=seller,
                register_serial=result.client_id,
                issued_at=_dt(result.log_time),
                lines=(),
                taxes=tuple(taxes),
                total=kb.total,
                payments=tuple(
                    ReceiptPayment(PAYMENT_LABELS.get(p.kind, p.kind), p.amount, p.currency)
                    for p in kb.payments
                ),
                bon_typ=kb.bon_typ,
                receipt_number="",  # the register's Beleg-Nr. is not in the TSE's log
                tse=sig,
                not_certified=True,
            )
            return render_text(receipt, WIDTH), qr
        except (OpenTSEError, UnicodeDecodeError, ValueError):
            pass  # fall through to the raw layout
    bare = Receipt(
        seller=seller,
        register_serial=result.client_id,
        issued_at=_dt(result.log_time),
        lines=(),
        taxes=(),
        total=Decimal("0.00"),
        tse=sig,
        not_certified=True,
    )
    lines = [*_hard(seller.name), "-" * WIDTH, *_hard(result.process_type)]
    lines += _hard(result.process_data.decode("utf-8", "replace"))  # its lines, as signed
    lines += ["-" * WIDTH, *_field("Kassen-Seriennummer", result.client_id)]
    for label, value in tse_fields(bare):
        lines += _field(label, value)
    return "\n".join([*lines, NOT_CERTIFIED_TEXT]), qr


def _hard(text: str) -> list[str]:
    """Each line of ``text`` (CR, LF or CRLF) cut into pieces of the receipt's width,
    no character dropped or added."""
    return [
        line[i : i + WIDTH] for line in text.splitlines() or [""]
        for i in range(0, max(len(line), 1), WIDTH)
    ]  # fmt: skip


def _field(label: str, value: str) -> list[str]:
    """``Label: value`` on one line, or the label and the value hard-wrapped below it,
    as the register's text receipt prints it."""
    line = f"{label}: {value}"
    return [line] if len(line) <= WIDTH else [f"{label}:", *_hard(value)]
