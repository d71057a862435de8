"""The rules across a receipt's tables: keys, sums and VAT rates.

Every row's key is unique and every key it references exists; a receipt
(transactions.csv) has lines, VAT amounts and, where its type needs them, payments and
a transactions_tse row; its lines add up to its VAT rows and its total, its payments
to its total; each VAT key is one of Anlage 2 and has the rate vat.csv gives on the
receipt's day. An auditor's tool sums the same way: a cent off is a finding.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from opentse.errors import FormatError
from opentse.formats.dsfinvk import tables as T
from opentse.formats.dsfinvk.csvwriter import parse_timestamp
from opentse.formats.dsfinvk.findings import (
    CENT,
    ZERO,
    CheckState,
    as_int,
    bon_key,
    closing_key,
    money,
    named,
)
from opentse.formats.dsfinvk.model import PAID_BON_TYPES


def check_keys(check: CheckState) -> None:
    keysets: dict[str, set[tuple[str, ...]]] = {}
    for file, table in check.tables.items():
        seen: set[tuple[str, ...]] = set()
        for line, row in check.get(file):
            key = tuple(row[c] for c in table.primary_key)
            if key in seen:
                key_text = named(table.primary_key, key)
                check.add("E_KEY_DUPLICATE", file, f"{key_text}: this key occurs twice", line)
            seen.add(key)
        keysets[table.name] = seen
    by_name = {t.name: t for t in check.tables.values()}
    for file, table in check.tables.items():
        for fk in table.foreign_keys:
            target = by_name.get(fk.references)
            if target is None or target.file not in check.rows:
                continue  # the referenced file is missing or unreadable: reported
            index = [target.primary_key.index(c) for c in fk.ref_columns if c in target.primary_key]
            if len(index) != len(fk.ref_columns):
                continue
            present = {tuple(k[i] for i in index) for k in keysets[fk.references]}
            for line, row in check.get(file):
                values = tuple(row[c] for c in fk.columns)
                if "" in values:
                    continue
                if values not in present:
                    check.add(
                        "E_KEY_MISSING",
                        file,
                        f"{named(fk.columns, values)}: no such row in {target.file}",
                        line,
                    )


def check_receipts(check: CheckState) -> None:
    lines: dict[tuple[str, ...], int] = defaultdict(int)
    line_vat: dict[tuple[str, ...], list[Decimal]] = defaultdict(lambda: [ZERO] * 3)
    line_vat_by_key: dict[tuple[str, ...], list[Decimal]] = defaultdict(lambda: [ZERO] * 3)
    lines_with_vat: set[tuple[str, ...]] = set()
    rates = vat_rates(check)
    for _line, row in check.get("lines.csv"):
        lines[bon_key(row)] += 1
    for line, row in check.get("lines_vat.csv"):
        f = "lines_vat.csv"
        g, n, v = (check.num(f, line, row, c) for c in ("POS_BRUTTO", "POS_NETTO", "POS_UST"))
        if g != n + v:
            check.add(
                "E_VAT_SUM",
                f,
                f"{check.bon(row)} line {row['POS_ZEILE']}: POS_BRUTTO {money(g)} != "
                f"POS_NETTO {money(n)} + POS_UST {money(v)}",
                line,
            )
        rate = rates.get((*closing_key(row), row["UST_SCHLUESSEL"]))
        if rate is not None and abs(v - (g * rate / (100 + rate))) > CENT:
            check.add(
                "E_VAT_AMOUNT",
                f,
                f"{check.bon(row)} line {row['POS_ZEILE']}: POS_UST {money(v)} is not "
                f"{rate} % of POS_BRUTTO {money(g)}",
                line,
                "POS_UST",
            )
        lines_with_vat.add((*bon_key(row), row["POS_ZEILE"]))
        for target, key in (
            (line_vat, bon_key(row)),
            (line_vat_by_key, (*bon_key(row), row["UST_SCHLUESSEL"])),
        ):
            target[key][0] += g
            target[key][1] += n
            target[key][2] += v
    for line, row in check.get("lines.csv"):
        if (*bon_key(row), row["POS_ZEILE"]) not in lines_with_vat:
            check.add(
                "E_LINE_NO_VAT",
                "lines.csv",
                f"line {row['POS_ZEILE']} of {check.bon(row)} has no lines_vat row",
                line,
            )
    tx_vat: dict[tuple[str, ...], Decimal] = defaultdict(lambda: ZERO)
    for line, row in check.get("transactions_vat.csv"):
        f = "transactions_vat.csv"
        g, n, v = (check.num(f, line, row, c) for c in ("BON_BRUTTO", "BON_NETTO", "BON_UST"))
        if g != n + v:
            check.add(
                "E_VAT_SUM",
                f,
                f"{check.bon(row)}: BON_BRUTTO {money(g)} != BON_NETTO {money(n)} + "
                f"BON_UST {money(v)}",
                line,
            )
        if [g, n, v] != line_vat_by_key.get((*bon_key(row), row["UST_SCHLUESSEL"]), [ZERO] * 3):
            check.add(
                "E_SUM_LINES",
                f,
                f"{check.bon(row)} key {row['UST_SCHLUESSEL']}: not the sum of its lines_vat rows",
                line,
            )
        tx_vat[bon_key(row)] += g
    paid: dict[tuple[str, ...], Decimal] = defaultdict(lambda: ZERO)
    for line, row in check.get("datapayment.csv"):
        paid[bon_key(row)] += check.num("datapayment.csv", line, row, "BASISWAEH_BETRAG")
    has_tse = {bon_key(row) for _line, row in check.get("transactions_tse.csv")}
    f = "transactions.csv"
    for line, row in check.get(f):
        bon = bon_key(row)
        total = check.num(f, line, row, "UMS_BRUTTO")
        if lines[bon] == 0:
            check.add("E_RECEIPT_NO_LINES", f, f"{check.bon(row)} has no lines", line)
        if line_vat[bon][0] != total:
            check.add(
                "E_SUM_LINES",
                f,
                f"{check.bon(row)}: UMS_BRUTTO {money(total)} != sum of lines "
                f"{money(line_vat[bon][0])}",
                line,
                "UMS_BRUTTO",
            )
        if tx_vat[bon] != total:
            check.add(
                "E_SUM_VAT",
                f,
                f"{check.bon(row)}: UMS_BRUTTO {money(total)} != transactions_vat "
                f"{money(tx_vat[bon])}",
                line,
                "UMS_BRUTTO",
            )
        if bon in paid and paid[bon] != total:
            check.add(
                "E_SUM_PAYMENTS",
                f,
                f"{check.bon(row)}: payments {money(paid[bon])} != UMS_BRUTTO {money(total)}",
                line,
            )
        if bon not in paid and row["BON_TYP"] in PAID_BON_TYPES and total != 0:
            check.add("E_RECEIPT_NO_PAYMENT", f, f"{check.bon(row)} has no payments", line)
        if bon not in has_tse:
            check.add("E_RECEIPT_NO_TSE", f, f"{check.bon(row)} has no transactions_tse row", line)


def vat_rates(check: CheckState) -> dict[tuple[str, str, str, str], Decimal]:
    out = {}
    for line, row in check.get("vat.csv"):
        out[(*closing_key(row), row["UST_SCHLUESSEL"])] = check.num(
            "vat.csv", line, row, "UST_SATZ"
        )
    return out


def check_vat_rates(check: CheckState) -> None:
    rates = vat_rates(check)
    for line, row in check.get("vat.csv"):
        key = as_int(row["UST_SCHLUESSEL"])
        if key < T.FIRST_INDIVIDUAL_VAT_KEY and not any(p.key == key for p in T.VAT_PERIODS):
            check.add("E_VAT_KEY", "vat.csv", f"{key} is no VAT key of Anlage 2", line)
    ends: dict[tuple[str, ...], datetime] = {}
    for _l, row in check.get("transactions.csv"):
        try:
            ends[bon_key(row)] = parse_timestamp(row["BON_ENDE"])
        except FormatError:
            continue
    for line, row in check.get("transactions_vat.csv"):
        key_text = row["UST_SCHLUESSEL"]
        rate = rates.get((*closing_key(row), key_text))
        end = ends.get(bon_key(row))
        if rate is None or end is None or not (key_text.isascii() and key_text.isdigit()):
            continue
        key = as_int(key_text)
        if key >= T.FIRST_INDIVIDUAL_VAT_KEY:
            continue
        valid = T.vat_rate(key, end.date())
        if valid is None:
            check.add(
                "E_VAT_KEY_DATE",
                "transactions_vat.csv",
                f"{check.bon(row)}: VAT key {key} is not valid on {end.date()}",
                line,
                "UST_SCHLUESSEL",
            )
        elif valid != rate:
            check.add(
                "E_VAT_RATE",
                "transactions_vat.csv",
                f"{check.bon(row)}: VAT key {key} has {valid} % on {end.date()}, vat.csv "
                f"says {rate} %",
                line,
                "UST_SCHLUESSEL",
            )
