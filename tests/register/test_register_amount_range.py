"""Amounts and quantities of any size: a Sale line, discount, payment or cash-book
entry either books or is refused with a typed ``ProtocolError`` (``E_AMOUNT_RANGE``
beyond the limits); never a bare ``decimal.InvalidOperation`` from deep inside (a
quantity of 10**30 raised one from ``quantize``). What is accepted gives its
processData, receipt and signed sale."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opentse.errors import ProtocolError
from opentse.register import (
    CashBookEntry,
    EmbeddedBackend,
    OutageLog,
    Receipt,
    Register,
    RegisterConfig,
    Sale,
    Seller,
)
from opentse.register.money import MAX_AMOUNT, MAX_QUANTITY
from opentse.testing import memory_service, ready_tse

SELLER = Seller("Café Muster", ("Musterstraße 1", "12345 Musterstadt"))
NOW = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=3, max_value=10**35, min_value=-(10**35)
    ),
    st.sampled_from(["1e30", "-1e30", "99999999999.99", "100000000000", "999999999.999", "1E+9"]),
).map(str)


def test_the_examples_that_crashed() -> None:
    for quantity, price in (
        (10**30, "1.00"),
        (1, "1e30"),
        ("1E+9", "1.00"),
        (1, str(MAX_AMOUNT)),
    ):
        with pytest.raises(ProtocolError) as refused:
            Sale().add_line("Kaffee", quantity, price, 1)
        assert refused.value.code == "E_AMOUNT_RANGE"
    with pytest.raises(ProtocolError) as refused:
        CashBookEntry("Einzahlung", Decimal("1e20"), "Wechselgeld")
    assert refused.value.code == "E_AMOUNT_RANGE"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(quantity=numbers, price=numbers, discount=numbers, paid=numbers)
def test_any_size_books_or_is_refused_typed(
    quantity: str, price: str, discount: str, paid: str
) -> None:
    sale = Sale()
    try:
        sale.add_line("Kaffee", quantity, price, 1)
        sale.add_line("Brezel", "1000", "99999999.99", 2)
        sale.add_discount("Rabatt", discount, 1)
        sale.add_payment("cash", paid)
        process_data = sale.process_data()
        receipt = Receipt.from_sale(sale, seller=SELLER, register_serial="KASSE-1", issued_at=NOW)
    except ProtocolError as exc:  # typed, with a stable code: what a POS shows the cashier
        assert exc.code.startswith("E_") and exc.message
        return
    assert abs(Decimal(quantity)) < MAX_QUANTITY and abs(Decimal(price)) < MAX_AMOUNT
    assert all(abs(line.gross) < MAX_AMOUNT for line in sale.lines)
    assert process_data.startswith("Beleg^") and receipt.total == sale.total


def test_the_largest_line_is_signed() -> None:
    service = memory_service(now=1_767_258_000)
    ready_tse(service, "t", client_id="KASSE-1", seed="range", logout=True)
    register = Register(
        EmbeddedBackend(service, "t"),
        RegisterConfig(SELLER, "KASSE-1"),
        OutageLog(":memory:"),
        clock=lambda: NOW,
    )
    sale = Sale()
    sale.add_line("Palette", "1000", "99999999.99", 1)
    sale.add_payment("card", sale.total)
    result = register.sell(sale)
    assert result.signed is not None and not result.tse_failed
    assert result.signed.process_data == sale.process_data()
