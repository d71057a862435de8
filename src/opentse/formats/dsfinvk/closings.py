"""A closing's totals against its single records (DSFinV-K 2.4, Kassenabschluss).

businesscases.csv, payment.csv, cash_per_currency.csv and cashpointclosing.csv's
Z_SE_ZAHLUNGEN / Z_SE_BARZAHLUNGEN must be the sums of the receipts that count for the
closing (CLOSING_BON_TYPES); a finding names the register, Z_NR, the row's key and
each amount that differs, so an auditor sees which total is off and by how much.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from opentse.formats.dsfinvk.findings import (
    ZERO,
    CheckState,
    amount_words,
    bon_key,
    closing_key,
    closing_words,
    money,
)
from opentse.formats.dsfinvk.model import CLOSING_BON_TYPES


def check_closings(check: CheckState) -> None:
    counted = {
        bon_key(row)
        for _l, row in check.get("transactions.csv")
        if row["BON_TYP"] in CLOSING_BON_TYPES
    }
    line_info = {
        (*bon_key(row), row["POS_ZEILE"]): (row["GV_TYP"], row["GV_NAME"], row["AGENTUR_ID"])
        for _l, row in check.get("lines.csv")
    }
    cases: dict[tuple[str, ...], list[Decimal]] = defaultdict(lambda: [ZERO] * 3)
    for line, row in check.get("lines_vat.csv"):
        if bon_key(row) not in counted:
            continue
        info = line_info.get((*bon_key(row), row["POS_ZEILE"]))
        if info is None:
            continue
        key = (*closing_key(row), *info, row["UST_SCHLUESSEL"])
        for i, c in enumerate(("POS_BRUTTO", "POS_NETTO", "POS_UST")):
            cases[key][i] += check.num("lines_vat.csv", line, row, c)
    _compare_totals(
        check,
        "businesscases.csv",
        cases,
        ("GV_TYP", "GV_NAME", "AGENTUR_ID", "UST_SCHLUESSEL"),
        ("Z_UMS_BRUTTO", "Z_UMS_NETTO", "Z_UST"),
    )
    pays: dict[tuple[str, ...], list[Decimal]] = defaultdict(lambda: [ZERO])
    cash: dict[tuple[str, ...], list[Decimal]] = defaultdict(lambda: [ZERO])
    all_pay: dict[tuple[str, ...], Decimal] = defaultdict(lambda: ZERO)
    all_cash: dict[tuple[str, ...], Decimal] = defaultdict(lambda: ZERO)
    base = {closing_key(r): r["KASSE_BASISWAEH_CODE"] for _l, r in check.get("cashregister.csv")}
    for line, row in check.get("datapayment.csv"):
        if bon_key(row) not in counted:
            continue
        amount = check.num("datapayment.csv", line, row, "BASISWAEH_BETRAG")
        pays[(*closing_key(row), row["ZAHLART_TYP"], row["ZAHLART_NAME"])][0] += amount
        all_pay[closing_key(row)] += amount
        if row["ZAHLART_TYP"] == "Bar":
            all_cash[closing_key(row)] += amount
            currency = row["ZAHLWAEH_CODE"]
            if currency != base.get(closing_key(row), "EUR"):
                amount = check.num("datapayment.csv", line, row, "ZAHLWAEH_BETRAG")
            cash[(*closing_key(row), currency)][0] += amount
    _compare_totals(
        check,
        "payment.csv",
        pays,
        ("ZAHLART_TYP", "ZAHLART_NAME"),
        ("Z_ZAHLART_BETRAG",),
    )
    _compare_totals(
        check,
        "cash_per_currency.csv",
        cash,
        ("ZAHLART_WAEH",),
        ("ZAHLART_BETRAG_WAEH",),
    )
    bon_ids = {bon_key(r) for _l, r in check.get("transactions.csv")}
    f = "cashpointclosing.csv"
    for line, row in check.get(f):
        zkey = closing_key(row)
        for column, want in (
            ("Z_SE_ZAHLUNGEN", all_pay[zkey]),
            ("Z_SE_BARZAHLUNGEN", all_cash[zkey]),
        ):
            got = check.num(f, line, row, column)
            if got != want:
                check.add(
                    "E_SUM_CLOSING",
                    f,
                    f"{closing_words(zkey)}: {column} {money(got)}, but the "
                    f"payments of its receipts add up to {money(want)}",
                    line,
                    column,
                )
        for column in ("Z_START_ID", "Z_ENDE_ID"):
            if row[column] and (*zkey, row[column]) not in bon_ids:
                check.add("E_KEY_MISSING", f, f"{column} {row[column]} is no receipt", line, column)


def _compare_totals(
    check: CheckState,
    file: str,
    want: dict[tuple[str, ...], list[Decimal]],
    key_columns: tuple[str, ...],
    columns: tuple[str, ...],
) -> None:
    """The closing's rows of ``file`` (keyed by the closing and ``key_columns``)
    against the sums of the single records; a finding names the register, Z_NR,
    the row's key and each amount that differs."""
    have: dict[tuple[str, ...], tuple[int, list[Decimal]]] = {}
    for line, row in check.get(file):
        key = (*closing_key(row), *(row[c] for c in key_columns))
        have[key] = (line, [check.num(file, line, row, c) for c in columns])

    def where(key: tuple[str, ...]) -> str:
        named = ", ".join(f"{c} {v}" for c, v in zip(key_columns, key[3:], strict=True) if v)
        return f"{closing_words(key)}, {named}"

    for key, amounts in want.items():
        if key not in have:
            if any(amounts):
                check.add(
                    "E_SUM_CLOSING",
                    file,
                    f"{where(key)}: no row, but the single records add up to "
                    f"{amount_words(columns, amounts)}",
                )
            continue
        line, got = have.pop(key)
        if got != amounts:
            differ = "; ".join(
                f"{c} {money(g)}, but the single records add up to {money(a)}"
                for c, g, a in zip(columns, got, amounts, strict=True)
                if g != a
            )
            check.add("E_SUM_CLOSING", file, f"{where(key)}: {differ}", line)
    for key, (line, got) in have.items():
        if any(got):
            check.add(
                "E_SUM_CLOSING",
                file,
                f"{where(key)}: {amount_words(columns, got)}, but no single record has this key",
                line,
            )
