"""Property: any valid business day booked through the Register on the embedded TSE
(sales in every VAT key, deposits, tips, discounts, card/cash/foreign payments with
change, training receipts, cancellations, cash in/out, a counted cash with or without
a difference) closes and exports to CSVs whose totals reconcile -- with the sales as
booked and with the counted cash -- and whose signatures all verify (DSFinV-K checker,
processData rebuilt from the CSV rows)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from opentse.formats.dsfinvk.check import check_export
from opentse.formats.dsfinvk.export import write_export
from opentse.formats.dsfinvk.model import CashRegister, Company, Location, closing_totals
from opentse.installation import Installation
from opentse.register import (
    CashBookEntry,
    EmbeddedBackend,
    OutageLog,
    Register,
    RegisterConfig,
    Sale,
    Seller,
)
from opentse.register.books import Books, MasterData
from opentse.register.zreport import build_zreport, close_day
from opentse.testing import ready_tse

CLIENT = "KASSE-PROP"
MASTER = MasterData(
    Company("Prop GmbH", "Weg 1", "12345", "Ort", tax_number="123/456/78901"),
    Location("Prop", "Weg 1", "12345", "Ort"),
    CashRegister(CLIENT),
)
COUNTED = frozenset({"Beleg", "AVRechnung", "AVBelegstorno"})

cents = st.integers(min_value=1, max_value=5000).map(lambda c: Decimal(c) / 100)
line = st.tuples(
    st.sampled_from(["Umsatz", "Umsatz", "Pfand", "PfandRueckzahlung", "TrinkgeldAN"]),
    st.integers(min_value=1, max_value=3),
    cents,
    st.integers(min_value=1, max_value=8),
)


@st.composite
def sales(draw: st.DrawFn) -> Sale:
    sale = Sale(draw(st.sampled_from(["Beleg", "Beleg", "Beleg", "AVTraining", "AVRechnung"])))
    for gv_typ, qty, price, key in draw(st.lists(line, min_size=1, max_size=4)):
        if gv_typ == "TrinkgeldAN":
            sale.add_line("Trinkgeld", 1, price, 5, gv_typ=gv_typ)
        elif gv_typ == "PfandRueckzahlung":
            sale.add_line("Pfand zurück", qty, -price, key, gv_typ=gv_typ)
        else:
            sale.add_line(f"Artikel {key}", qty, price, key, gv_typ=gv_typ)
    if draw(st.booleans()) and sale.total > 1:
        sale.add_discount("Rabatt", "0.50", sale.lines[0].vat_key)
    total = sale.total
    if total <= 0:
        sale.add_payment("cash", total) if total < 0 else None
        return sale
    how = draw(st.sampled_from(["cash", "card", "split", "change", "usd"]))
    if how == "cash":
        sale.add_payment("cash", total)
    elif how == "card":
        sale.add_payment("card", total, name="Girocard")
    elif how == "split":
        part = min(total, Decimal("1.00"))
        sale.add_payment("card", total - part)
        sale.add_payment("cash", part)
    elif how == "change":
        sale.add_payment("cash", total + draw(cents))
    else:
        sale.add_payment("cash", total, currency="USD", amount_eur=total)
    return sale


operation = st.one_of(
    sales().map(lambda s: ("sale", s)),
    st.just(("storno", None)),
    st.sampled_from([("cash", CashBookEntry("Einzahlung", Decimal("50.00"), "Wechselgeld")),
                     ("cash", CashBookEntry("Auszahlung", Decimal("-12.34"), "Einkauf"))]),
)  # fmt: skip


@pytest.fixture(scope="module")
def service() -> Iterator[object]:
    with tempfile.TemporaryDirectory() as folder, Installation.open(Path(folder)) as inst:
        ready_tse(inst.service, "tse-p", client_id=CLIENT, logout=True)
        yield inst.service


@settings(
    max_examples=10,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),  # no shrinking: bounded time
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    days=st.lists(
        st.tuples(sales().map(lambda s: ("sale", s)), st.lists(operation, max_size=5)).map(
            lambda t: [t[0], *t[1]]
        ),
        min_size=1,
        max_size=2,
    ),
    differences=st.lists(st.sampled_from(["0.00", "0.00", "-0.40", "1.25"]), min_size=2),
)
def test_random_business_days_export_reconcile_and_verify(
    service: object, days: list[list[tuple[str, object]]], differences: list[str]
) -> None:
    books, journal = Books(":memory:"), OutageLog(":memory:")
    register = Register(
        EmbeddedBackend(service, "tse-p"),  # type: ignore[arg-type]
        RegisterConfig(Seller("Prop", ("Weg 1", "12345 Ort")), CLIENT),
        journal,
        books=books,
    )
    register.connect()
    closings = []
    opening = Decimal("0.00")
    for day, difference in zip(days, differences, strict=False):
        booked: list[Sale] = []
        last_sale: tuple[Sale, str] | None = None
        for kind, item in day:
            if kind == "sale":
                assert isinstance(item, Sale)
                result = register.sell(item)
                assert not result.tse_failed
                booked.append(item)
                if item.bon_typ in ("Beleg", "AVRechnung"):
                    last_sale = (item, result.receipt_ref)
            elif kind == "storno" and last_sale is not None:
                storno = last_sale[0].storno()
                result = register.sell(storno)
                books.add_reference(result.receipt_ref, last_sale[1])
                booked.append(storno)
                last_sale = None
            elif isinstance(item, CashBookEntry):
                signed, _ = register.book(item)
                assert signed is not None
                booked.append(item.as_sale())
        counted_sales = [s for s in booked if s.bon_typ in COUNTED]
        cash = sum((_kept_cash(s) for s in counted_sales), Decimal("0.00"))
        counted = opening + cash + Decimal(difference)
        closed = close_day(register, books, MASTER, counted)
        report = build_zreport(closed)
        totals = closing_totals(closed.closing)
        # reconcile: with the sales as booked, and with the counted cash
        assert totals.all_payments == sum(s.total for s in counted_sales) + Decimal(difference)
        assert opening + totals.cash_payments == counted
        assert report.difference == Decimal(difference)
        assert report.expected_cash == opening + cash
        assert sum(v.gross for v in report.vat) == totals.all_payments
        closings.append(closed.closing)
        opening = counted
    with tempfile.TemporaryDirectory() as folder:
        path = write_export(closings, Path(folder) / "export.zip")
        errors = [str(f) for f in check_export(path) if f.severity == "error"]
    assert errors == [], "\n".join(errors)
    books.close_file()
    journal.close()


def _kept_cash(sale: Sale) -> Decimal:
    """EUR cash a sale leaves in the drawer: cash payments less the change."""
    return (
        sum((p.base_amount for p in sale.payments if p.method == "cash"), Decimal("0.00"))
        - sale.change
    )
