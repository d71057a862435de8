"""Round trips build -> parse for Kassenbeleg-V1 and Bestellung-V1 (hypothesis)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.formats.processdata import (
    BON_TYPES,
    OrderLine,
    Payment,
    build_bestellung,
    build_kassenbeleg,
    format_quantity,
    parse_bestellung,
    parse_kassenbeleg,
    vat_slot,
)

cents = st.integers(min_value=-(10**9), max_value=10**9).map(lambda c: Decimal(c).scaleb(-2))
payments = st.builds(
    Payment,
    amount=cents,
    kind=st.sampled_from(["Bar", "Unbar"]),
    currency=st.sampled_from(["EUR", "USD", "CHF"]),
)
texts = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"),
    max_size=40,
)
quantities = st.decimals(
    min_value=Decimal("-1000"), max_value=Decimal("1000"), places=3, allow_nan=False
).map(format_quantity)


@settings(max_examples=150, deadline=None)
@given(
    bon_typ=st.sampled_from(BON_TYPES),
    gross=st.dictionaries(st.integers(min_value=1, max_value=8), cents, max_size=8),
    pays=st.lists(payments, max_size=5),
)
def test_kassenbeleg_round_trip(
    bon_typ: str, gross: dict[int, Decimal], pays: list[Payment]
) -> None:
    text = build_kassenbeleg(bon_typ, gross, pays)
    parsed = parse_kassenbeleg(text)
    assert parsed.bon_typ == bon_typ
    assert parsed.render() == text
    for slot in range(1, 6):
        expected = sum((a for k, a in gross.items() if vat_slot(k) == slot), Decimal(0))
        assert parsed.gross[slot - 1] == expected
    for kind in ("Bar", "Unbar"):
        for currency in ("EUR", "USD", "CHF"):
            paid = sum(
                (p.amount for p in pays if (p.kind, p.currency) == (kind, currency)), Decimal(0)
            )
            got = sum(
                (p.amount for p in parsed.payments if (p.kind, p.currency) == (kind, currency)),
                Decimal(0),
            )
            assert got == paid


@settings(max_examples=150, deadline=None)
@given(st.lists(st.builds(OrderLine, quantity=quantities, text=texts, price_per_unit=cents)))
def test_bestellung_round_trip(lines: list[OrderLine]) -> None:
    text = build_bestellung(lines)
    assert parse_bestellung(text) == tuple(lines)
    assert text.count("\r") == max(len(lines) - 1, 0)
