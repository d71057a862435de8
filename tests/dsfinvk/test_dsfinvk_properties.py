"""Random valid business days always export to CSVs that reconcile and verify."""

from __future__ import annotations

import csv
import io
import re
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from dsfinvk_support import DayBuilder, FakeTSE, vat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opentse.formats.dsfinvk import tables as T
from opentse.formats.dsfinvk.check import check_export
from opentse.formats.dsfinvk.export import write_export
from opentse.formats.dsfinvk.model import Closing, Line, Payment

TSE = FakeTSE()
CENT = Decimal("0.01")
PAYMENT_TYPES = ["Bar", "ECKarte", "Kreditkarte", "Unbar", "ElZahlungsdienstleister"]
NUMBER = re.compile(r"-?\d+(,\d+)?")


@dataclass(frozen=True)
class ReceiptSpec:
    bon_typ: str
    lines: list[tuple[int, int, str]]  # (VAT key, gross in cents, GV_TYP)
    cuts: list[int]
    payment_types: list[str]


receipt_specs = st.builds(
    ReceiptSpec,
    bon_typ=st.sampled_from(["Beleg", "Beleg", "Beleg", "AVTraining"]),
    lines=st.lists(
        st.tuples(
            st.sampled_from([1, 2, 5, 6]),
            st.integers(-20_000, 250_000_000),
            st.sampled_from(["Umsatz", "Pfand", "PfandRueckzahlung", "Rabatt", "TrinkgeldAN"]),
        ),
        min_size=1,
        max_size=4,
    ),
    cuts=st.lists(st.integers(-5_000, 5_000), max_size=2),
    payment_types=st.lists(st.sampled_from(PAYMENT_TYPES), min_size=3, max_size=3),
)


def build_day(specs: list[ReceiptSpec]) -> Closing:
    day = DayBuilder(TSE)
    for spec in specs:
        lines = [
            Line(
                str(i + 1),
                f'Artikel {i};"{key}"',
                gv,
                (vat(key, Decimal(cents) * CENT),),
                Decimal("1"),
                Decimal(cents) * CENT,
            )
            for i, (key, cents, gv) in enumerate(spec.lines)
        ]
        total = sum(cents for _, cents, _ in spec.lines)
        parts = [Decimal(c) * CENT for c in spec.cuts]
        parts.append(Decimal(total) * CENT - sum(parts, Decimal(0)))
        payments = [Payment(spec.payment_types[i], amount) for i, amount in enumerate(parts)]
        day.add(lines, payments, spec.bon_typ)
    return day.closing()


def rows(folder: Path, name: str) -> list[dict[str, str]]:
    text = (folder / name).read_bytes().decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


def dec(text: str) -> Decimal:
    return Decimal(text.replace(",", ".")) if text else Decimal(0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(receipt_specs, min_size=1, max_size=6))
def test_random_days_reconcile_and_verify(specs: list[ReceiptSpec]) -> None:
    closing = build_day(specs)
    with tempfile.TemporaryDirectory() as tmp:
        out = write_export([closing], Path(tmp) / "e")
        assert check_export(out) == []
        # independent reconciliation with the stdlib csv reader
        counted = {r["BON_ID"] for r in rows(out, "transactions.csv") if r["BON_TYP"] == "Beleg"}
        (z,) = rows(out, "cashpointclosing.csv")
        payments = [r for r in rows(out, "datapayment.csv") if r["BON_ID"] in counted]
        assert sum(dec(r["BASISWAEH_BETRAG"]) for r in payments) == dec(z["Z_SE_ZAHLUNGEN"])
        assert sum(dec(r["Z_ZAHLART_BETRAG"]) for r in rows(out, "payment.csv")) == dec(
            z["Z_SE_ZAHLUNGEN"]
        )
        sales = sum(
            dec(r["UMS_BRUTTO"]) for r in rows(out, "transactions.csv") if r["BON_ID"] in counted
        )
        assert sum(dec(r["Z_UMS_BRUTTO"]) for r in rows(out, "businesscases.csv")) == sales
        for table in T.TABLES:
            numeric = [c.name for c in table.columns if c.type is T.ColumnType.NUMERIC]
            for row in rows(out, table.file):
                for name in numeric:
                    assert row[name] == "" or NUMBER.fullmatch(row[name]), (table.file, name)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(receipt_specs, min_size=1, max_size=4), st.data())
def test_any_changed_amount_is_found(specs: list[ReceiptSpec], data: st.DataObject) -> None:
    closing = build_day(specs)
    with tempfile.TemporaryDirectory() as tmp:
        out = write_export([closing], Path(tmp) / "e")
        path = out / "transactions_vat.csv"
        lines = path.read_bytes().split(b"\r\n")
        index = data.draw(st.integers(1, len(lines) - 2))
        fields = lines[index].split(b";")
        delta = data.draw(st.sampled_from([Decimal("0.01"), Decimal("-1.00"), Decimal("100")]))
        new = dec(fields[5].decode()) + delta
        fields[5] = f"{new:.5f}".replace(".", ",").encode()
        lines[index] = b";".join(fields)
        path.write_bytes(b"\r\n".join(lines))
        found = {f.code for f in check_export(out)}
        assert {"E_SUM_LINES", "E_SUM_VAT", "E_SIGNATURE_INVALID"} <= found
