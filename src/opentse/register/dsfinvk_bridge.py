"""From what the register booked and signed to the DSFinV-K model (formats.dsfinvk).

An auditor rebuilds every signed processData from the export (transactions,
transactions_vat, datapayment, lines) and checks TSE_TA_SIG against it, so the export
must be derived from the same sale the register signed: lines with their VAT split
(Bonpos_USt), payments in signing order with the change as a negative cash payment,
and the Finish log's number, times, counter and signature (formats/dsfinvk/model.py
lists what it needs).

Net amounts: net and tax per VAT key are computed from the key's gross at the rate in
force on the receipt's (shop-local) day (:func:`rate_on`; DSFinV-K Anlage 2 -- key
3, the farmers' average rate of §24 UStG, fell from 10.7 % to 7.8 % between 2022 and
2026); each line's net is its own, rounded, and the cents by which the key's rounding
differs go to the lines rounding moved furthest the other way, so the export's
per-key sums are the key's net to the cent and every line stays within a cent of its
own VAT (checked per Bonpos_USt row). The printed receipt takes the same rate of the
same day (receipt.Receipt.from_sale), so the two agree.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING

from opentse.formats import processdata as pd
from opentse.formats.dsfinvk import model
from opentse.register.backends import Signed
from opentse.register.money import CENT, ZERO, round_cents, vat_percent_on
from opentse.register.sale import Sale
from opentse.register.shoptime import local_day, local_time, shop_zone

if TYPE_CHECKING:
    from opentse.register.sale_result import SaleResult


def rate_on(key: int, on: date | None) -> Decimal:
    """The VAT rate of a DSFinV-K key on a day (formats.dsfinvk.tables.VAT_PERIODS);
    the register's own table when the day is unknown or the key has no period then."""
    return vat_percent_on(key, on)


def default_process_type(bon_typ: str) -> str:
    """The processType a Vorgang of ``bon_typ`` is signed with when nothing else is
    known (books written before the intended processType was kept): an order
    (AVBestellung) as Bestellung-V1 (Register.order), everything else Kassenbeleg-V1."""
    if bon_typ == "AVBestellung":
        return pd.PROCESS_TYPE_BESTELLUNG
    return pd.PROCESS_TYPE_KASSENBELEG


def _net(gross: Decimal, rate: Decimal) -> Decimal:
    """Net of a gross amount, rounded half up; VAT is the rest (net + VAT == gross)."""
    return round_cents(gross * Decimal(100) / (Decimal(100) + rate))


def _line_nets(grosses: list[Decimal], rate: Decimal, key_net: Decimal) -> list[Decimal]:
    """Nets of one key's lines that add up to ``key_net`` with each line within a cent
    of its exact net: every line rounded half up, then the cents still missing (or
    too many) moved one each to the lines rounding moved furthest the other way
    (largest remainder; later lines first on ties). Leaving the whole rest to the
    last line gave a discount of -0.50 at 19 % after two lines -0.09 VAT."""
    exact = [g * Decimal(100) / (Decimal(100) + rate) for g in grosses]
    nets = [round_cents(e) for e in exact]
    missing = key_net - sum(nets, ZERO)
    if missing == 0:
        return nets
    step = CENT if missing > 0 else -CENT
    order = sorted(range(len(nets)), key=lambda i: ((exact[i] - nets[i]) / step, i), reverse=True)
    for i in itertools.islice(itertools.cycle(order), int(missing / step)):
        nets[i] += step
    return nets


def dsfinvk_lines(sale: Sale, on: date | None = None) -> tuple[model.Line, ...]:
    """Bonpos + Bonpos_USt of a sale at the rates of day ``on`` (None: today's); per-key
    nets add up to the key's net (of the key's gross, as the receipt prints it)."""
    positions: dict[int, list[int]] = {}
    for i, line in enumerate(sale.lines):
        positions.setdefault(line.vat_key, []).append(i)
    nets: dict[int, Decimal] = {}
    for key, where in positions.items():
        rate = rate_on(key, on)
        grosses = [sale.lines[i].gross for i in where]
        key_nets = _line_nets(grosses, rate, _net(sum(grosses, ZERO), rate))
        nets.update(zip(where, key_nets, strict=True))
    lines: list[model.Line] = []
    for i, line in enumerate(sale.lines):
        gross, net = line.gross, nets[i]
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
    the payments add up to the total as DSFinV-K demands. Zero payments are left out,
    as the signed processData leaves them out."""
    payments = [
        model.Payment(
            type=p.zahlart_typ,
            amount=p.base_amount,
            name=p.name,
            currency=p.currency,
            foreign_amount=None if p.currency == "EUR" else p.amount,
        )
        for p in sale.payments
        if p.amount != 0  # as Kassenbeleg-V1: a 0.00 payment is not signed
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
    zone: tzinfo | None = None,
    process_type: str | None = None,
) -> model.Receipt:
    """The DSFinV-K receipt (Vorgang) of a booked sale and what the TSE signed for it
    (``signed`` None: the TSE failed, ``error`` says why -> TSE_TA_FEHLER). A signed
    receipt with an ``error`` is one recovery accounted for (printed without the
    signature, or aborted by recovery): TSE_TA_FEHLER says so beside the TSE data.

    TSE_TA_VORGANGSART is the processType of the Finish log when signed (it must
    match the signed processData); unsigned, the one the register meant to sign
    (``process_type``, e.g. Bestellung-V1 for an order), by BON_TYP when not given.

    The receipt's day -- for the VAT rate in force -- is the shop's local day of its
    end in ``zone`` (default Europe/Berlin); BON_START/BON_ENDE carry the same
    instants with the shop's offset, so a reader takes the same day from them.
    """
    zone = zone or shop_zone()
    if signed is None:
        intended = process_type or default_process_type(sale.bon_typ)
        tse = model.TseTransaction(
            tse_id, None, None, None, intended, None, b"", "", error=error or "TSE"
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
            error=error,  # signed, yet printed as a TSE failure (recovery_books.py)
        )
    return model.Receipt(
        bon_id=bon_id,
        bon_nr=bon_nr,
        bon_typ=sale.bon_typ,
        start=local_time(start, zone),
        end=local_time(end, zone),
        operator_id=operator_id,
        lines=dsfinvk_lines(sale, local_day(end, zone)),
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
    zone: tzinfo | None = None,
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
        zone=zone or result.zone,
        process_type=result.process_type,
    )
