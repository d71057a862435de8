"""From what the register booked and signed to the DSFinV-K model (formats.dsfinvk).

An auditor rebuilds every signed processData from the export (transactions,
transactions_vat, datapayment, lines) and checks TSE_TA_SIG against it, so the export
must be derived from the same sale the register signed: lines with their VAT split
(Bonpos_USt), payments in signing order with the change as a negative cash payment,
and the Finish log's number, times, counter and signature (formats/dsfinvk/model.py
lists what it needs).

Net amounts: the receipt prints net and tax per VAT key computed from the key's gross
(money.split_gross); line nets are split per line and the last line of each key takes
the rounding rest, so the export's per-key sums equal the printed receipt to the cent.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from opentse.formats.dsfinvk import model
from opentse.register.backends import Signed
from opentse.register.money import ZERO, split_gross
from opentse.register.sale import Sale

if TYPE_CHECKING:
    from opentse.register.register import SaleResult


def dsfinvk_lines(sale: Sale) -> tuple[model.Line, ...]:
    """Bonpos + Bonpos_USt of a sale; per-key nets add up to the receipt's."""
    totals = sale.totals_by_vat_key()
    last_of_key = {line.vat_key: i for i, line in enumerate(sale.lines)}
    net_so_far: dict[int, Decimal] = {}
    lines: list[model.Line] = []
    for i, line in enumerate(sale.lines):
        gross = line.gross
        if last_of_key[line.vat_key] == i:
            net = totals[line.vat_key].net - net_so_far.get(line.vat_key, ZERO)
        else:
            net, _ = split_gross(gross, line.vat_key)
        net_so_far[line.vat_key] = net_so_far.get(line.vat_key, ZERO) + net
        lines.append(
            model.Line(
                pos=str(i + 1),
                text=line.text,
                gv_typ=line.gv_typ,
                vat=(model.VatAmount(line.vat_key, gross, net, gross - net),),
                quantity=line.quantity,
                unit_price=line.unit_price,
            )
        )
    return tuple(lines)


def dsfinvk_payments(sale: Sale) -> tuple[model.Payment, ...]:
    """Bonkopf_Zahlarten in signing order; change is a negative EUR cash payment, so
    the payments add up to the total as DSFinV-K demands."""
    payments = [
        model.Payment(
            type=p.zahlart_typ,
            amount=p.base_amount,
            name=p.name,
            currency=p.currency,
            foreign_amount=None if p.currency == "EUR" else p.amount,
        )
        for p in sale.payments
    ]
    if sale.change > 0:
        payments.append(model.Payment(type="Bar", amount=-sale.change, name="Rückgeld"))
    return tuple(payments)


def to_dsfinvk_receipt(
    sale: Sale,
    signed: Signed | None,
    *,
    bon_id: str,
    bon_nr: int,
    start: datetime,
    end: datetime,
    error: str = "",
    tse_id: int = 1,
    operator_id: str = "1",
) -> model.Receipt:
    """The DSFinV-K receipt (Vorgang) of a booked sale and what the TSE signed for it
    (``signed`` None: the TSE failed, ``error`` says why -> TSE_TA_FEHLER)."""
    if signed is None:
        tse = model.TseTransaction(
            tse_id, None, None, None, sale.process_type, None, b"", "", error=error or "TSE"
        )
    else:
        tse = model.TseTransaction(
            tse_id,
            signed.transaction_number,
            signed.start_time,
            signed.log_time,
            signed.process_type,
            signed.signature_counter,
            signed.signature,
            signed.process_data,
        )
    return model.Receipt(
        bon_id=bon_id,
        bon_nr=bon_nr,
        bon_typ=sale.bon_typ,
        start=start,
        end=end,
        operator_id=operator_id,
        lines=dsfinvk_lines(sale),
        payments=() if sale.bon_typ == "AVBelegabbruch" else dsfinvk_payments(sale),
        tse=tse,
        storno=sale.bon_typ == "AVBelegstorno",
    )


def dsfinvk_receipt(
    sale: Sale,
    result: SaleResult,
    *,
    bon_nr: int,
    tse_id: int = 1,
    operator_id: str = "1",
) -> model.Receipt:
    """:func:`to_dsfinvk_receipt` for a :class:`SaleResult` fresh from the Register."""
    return to_dsfinvk_receipt(
        sale,
        result.signed,
        bon_id=result.receipt_ref,
        bon_nr=bon_nr,
        start=result.receipt.started_at,
        end=result.receipt.ended_at,
        error=result.error or "",
        tse_id=tse_id,
        operator_id=operator_id,
    )
