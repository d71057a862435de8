"""processData rebuilt from a Bon's CSV rows, as an auditor must rebuild it.

TSE_VORGANGSDATEN is optional and proves nothing on its own: the signature is only
worth something when it verifies over processData made from the amounts, payments and
Bon type of the rows (Kassenbeleg-V1 from transactions_vat and datapayment,
Bestellung-V1 from lines; DSFinV-K Anhang I).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from opentse.errors import FormatError
from opentse.formats import processdata as pd
from opentse.formats.dsfinvk import tables as T
from opentse.formats.dsfinvk.findings import ZERO, CheckState, Row, as_int


def rebuild_process_data(
    check: CheckState,
    process_type: str,
    receipt: Row,
    vat_rows: Iterable[tuple[int, Row]],
    pay_rows: Iterable[tuple[int, Row]],
    line_rows: Iterable[tuple[int, Row]],
    line: int,
    written: str = "",
) -> str | None:
    """processData as an auditor rebuilds it from the CSV rows (None: cannot);
    ``written`` (TSE_VORGANGSDATEN) decides only between two spellings of the
    same data."""
    try:
        if process_type == pd.PROCESS_TYPE_KASSENBELEG:
            gross: dict[int, Decimal] = defaultdict(lambda: ZERO)
            for ln, r in vat_rows:
                slot = T.vat_slot(as_int(r["UST_SCHLUESSEL"]))
                if slot is None:
                    check.add(
                        "E_PROCESSDATA_VAT_KEY",
                        "transactions_vat.csv",
                        f"{check.bon(r)}: VAT key {r['UST_SCHLUESSEL']} has no processData slot",
                        ln,
                    )
                    return None
                gross[slot] += check.num("transactions_vat.csv", ln, r, "BON_BRUTTO")
            payments = []
            base = "EUR"
            for ln, r in pay_rows:
                if r["ZAHLART_TYP"] == "Keine":
                    continue
                kind = "Bar" if r["ZAHLART_TYP"] == "Bar" else "Unbar"
                currency = r["ZAHLWAEH_CODE"] or base
                column = "BASISWAEH_BETRAG" if currency == base else "ZAHLWAEH_BETRAG"
                amount = check.num("datapayment.csv", ln, r, column)
                payments.append(pd.Payment(amount, kind, currency))
            # a kind that adds up to 0.00 (cash given and all of it handed back as
            # change) is no payment: registers leave it out of what they sign (ours
            # does); one that wrote it as 0.00 is accepted too
            summed = pd.accumulate_payments(payments)
            paid = [p for p in summed if p.amount != 0]
            rebuilt = pd.build_kassenbeleg(receipt["BON_TYP"], dict(gross), paid)
            if len(paid) < len(summed) and written != rebuilt:
                with_zero = pd.build_kassenbeleg(receipt["BON_TYP"], dict(gross), summed)
                return with_zero if written == with_zero else rebuilt
            return rebuilt
        if process_type == pd.PROCESS_TYPE_BESTELLUNG:
            order = [
                pd.OrderLine(
                    pd.format_quantity(check.num("lines.csv", ln, r, "MENGE")),
                    r["ARTIKELTEXT"],
                    check.num("lines.csv", ln, r, "STK_BR"),
                )
                for ln, r in line_rows
            ]
            return pd.build_bestellung(order)
    except FormatError as exc:
        check.add(
            exc.code,
            "transactions_tse.csv",
            f"{check.bon(receipt)}: processData cannot be rebuilt: {exc.message}",
            line,
        )
        return None
    return None
