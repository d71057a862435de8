"""Money helpers, the sale model and the processData it derives."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.errors import ProtocolError
from opentse.formats.processdata import parse_bestellung, parse_kassenbeleg
from opentse.register.money import (
    VAT_TABLE,
    format_money,
    require_cents,
    round_cents,
    split_gross,
    to_decimal,
)
from opentse.register.sale import CashBookEntry, Sale

D = Decimal


def test_round_half_up_and_money_format() -> None:
    assert round_cents(D("2.345")) == D("2.35")
    assert round_cents(D("-2.345")) == D("-2.35")
    assert round_cents(D("2.344")) == D("2.34")
    assert format_money(D("1234.5")) == "1.234,50"
    assert format_money(D("-0.004")) == "0,00"
    assert format_money(D("-7.1")) == "-7,10"


def test_vat_table_rates() -> None:
    assert {k: v.percent for k, v in VAT_TABLE.items()} == {
        1: D("19"),
        2: D("7"),
        3: D("7.8"),
        4: D("5.5"),
        5: D("0"),
        6: D("0"),
        7: D("0"),
        8: D("0"),
    }
    assert [VAT_TABLE[k].slot for k in range(1, 9)] == [1, 2, 3, 4, 5, 5, 5, 5]


def test_split_gross() -> None:
    assert split_gross(D("11.90"), 1) == (D("10.00"), D("1.90"))
    assert split_gross(D("10.70"), 2) == (D("10.00"), D("0.70"))
    assert split_gross(D("1.00"), 1) == (D("0.84"), D("0.16"))
    assert split_gross(D("5.00"), 6) == (D("5.00"), D("0.00"))


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda: to_decimal(1.5), "E_AMOUNT_FORMAT"),  # type: ignore[arg-type]
        (lambda: to_decimal("abc"), "E_AMOUNT_FORMAT"),
        (lambda: require_cents(D("0.001")), "E_AMOUNT_PRECISION"),
        (lambda: Sale().add_line("Kaffee", 1, "2.505", 1), "E_AMOUNT_PRECISION"),
        (lambda: Sale().add_line("Kaffee", "0.0001", "2.50", 1), "E_QUANTITY_PRECISION"),
        (lambda: Sale().add_line("Kaffee", 0, "2.50", 1), "E_QUANTITY"),
        (lambda: Sale().add_line("Kaffee", 1, "2.50", 9), "E_VAT_KEY"),
        (lambda: Sale().add_line("Kaffee", 1, "2.50", 1, gv_typ="Verkauf"), "E_GV_TYP"),
        (lambda: Sale().add_line(" ", 1, "2.50", 1), "E_LINE_TEXT"),
        (lambda: Sale().add_line("K" * 256, 1, "2.50", 1), "E_LINE_TEXT"),  # ARTIKELTEXT A255
        (lambda: CashBookEntry("Einzahlung", D("10.00"), "x" * 256), "E_LINE_TEXT"),
        (lambda: Sale().add_payment("cash", "1.001"), "E_AMOUNT_PRECISION"),
        (lambda: Sale().add_payment("cheque", "1.00"), "E_PAYMENT_TYPE"),
        (lambda: Sale().add_payment("cash", "1.00", currency="USD"), "E_CURRENCY"),
        (lambda: Sale().add_discount("Rabatt", "-1.00", 1), "E_DISCOUNT"),
        (lambda: Sale("Bon"), "E_BON_TYP"),
        (lambda: CashBookEntry("Auszahlung", D("10.00")), "E_AMOUNT_SIGN"),
        (lambda: CashBookEntry("Umsatz", D("10.00")), "E_GV_TYP"),
    ],
)
def test_booking_rejects_bad_input(call: object, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        call()  # type: ignore[operator]
    assert info.value.code == code


def test_a_line_text_of_255_characters_is_booked() -> None:
    """DSFinV-K's ARTIKELTEXT limit exactly: a longer text made the day unexportable."""
    sale = Sale()
    sale.add_line("K" * 255, 1, "2.50", 1)
    assert sale.lines[0].text == "K" * 255
    assert CashBookEntry("Einzahlung", D("10.00"), "x" * 255).text == "x" * 255


def _coffee_sale() -> Sale:
    sale = Sale()
    sale.add_line("Kaffee", 2, "2.50", 1)
    sale.add_line("Brötchen", 3, "0.45", 2)
    sale.add_line("Wasser", "1.5", "1.99", 1)  # 2.985 -> 2.99
    sale.add_discount("Stammkunde", "0.50", 1)
    return sale


def test_totals_per_vat_key() -> None:
    sale = _coffee_sale()
    totals = sale.totals_by_vat_key()
    assert list(totals) == [1, 2]
    assert totals[1].gross == D("7.49")
    assert (totals[1].net, totals[1].tax) == (D("6.29"), D("1.20"))
    assert totals[2].gross == D("1.35")
    assert (totals[2].net, totals[2].tax) == (D("1.26"), D("0.09"))
    assert sale.total == D("8.84")


def test_cash_change_is_taken_off_the_payments() -> None:
    sale = _coffee_sale()
    sale.add_payment("card", "5.00")
    sale.add_payment("cash", "10.00")
    assert sale.change == D("6.16")
    assert sale.process_data() == "Beleg^7.49_1.35_0.00_0.00_0.00^5.00:Unbar_3.84:Bar"


def test_payments_must_cover_and_only_cash_may_exceed() -> None:
    sale = _coffee_sale()
    sale.add_payment("cash", "8.83")
    with pytest.raises(ProtocolError) as short:
        sale.process_data()
    assert short.value.code == "E_PAYMENT_SHORT"
    card = _coffee_sale()
    card.add_payment("card", "9.00")
    with pytest.raises(ProtocolError) as change:
        card.validate()
    assert change.value.code == "E_CHANGE_NOT_CASH"


def test_foreign_currency_payment() -> None:
    sale = Sale()
    sale.add_line("Souvenir", 1, "15.00", 1)
    sale.add_payment("cash", "20.00", currency="USD", amount_eur="18.50")
    assert sale.change == D("3.50")
    assert sale.process_data() == "Beleg^15.00_0.00_0.00_0.00_0.00^20.00:Bar:USD_-3.50:Bar"


def test_training_storno_and_abort() -> None:
    sale = Sale("AVTraining")
    sale.add_line("Kaffee", 1, "2.50", 1)
    sale.add_payment("cash", "5.00")
    assert sale.process_data() == "AVTraining^2.50_0.00_0.00_0.00_0.00^2.50:Bar"

    real = _coffee_sale()
    real.add_payment("cash", "10.00")
    storno = real.storno()
    assert storno.total == -real.total
    assert storno.process_data() == "AVBelegstorno^-7.49_-1.35_0.00_0.00_0.00^-8.84:Bar"

    aborted = _coffee_sale().aborted()
    assert aborted.process_data() == "AVBelegabbruch^7.49_1.35_0.00_0.00_0.00^"


def test_order_process_data() -> None:
    sale = Sale("AVBestellung")
    sale.add_line("Tasse Kaffee", 1, "2.00", 1)
    sale.add_line('Eis "Himbeere"', "0.5", "3.90", 2)
    text = sale.order_process_data()
    assert text == '1;"Tasse Kaffee";2.00\r0.5;"Eis ""Himbeere""";3.90'
    assert [line.text for line in parse_bestellung(text)] == ["Tasse Kaffee", 'Eis "Himbeere"']


def test_cash_book_entries_are_sonstiger_vorgang() -> None:
    entry = CashBookEntry("Privatentnahme", D("-50.00"), "Inhaber")
    assert entry.process_type == "SonstigerVorgang"
    assert entry.process_data() == "Privatentnahme^-50.00:Bar^Inhaber"
    assert CashBookEntry("Einzahlung", D("100")).process_data() == "Einzahlung^100.00:Bar"
    assert CashBookEntry("Geldtransit", D("-20.00")).vat_key == 5


# --- property: totals equal the processData slots to the cent -----------------------

cents = st.integers(min_value=1, max_value=100_000).map(lambda c: D(c).scaleb(-2))
quantities = st.integers(min_value=1, max_value=20_000).map(lambda q: D(q).scaleb(-3))
lines = st.tuples(quantities, cents, st.integers(min_value=1, max_value=8), st.booleans(), cents)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(lines, min_size=1, max_size=12),
    st.integers(min_value=0, max_value=100),
    st.sampled_from(["cash", "card", "split"]),
)
def test_sale_totals_match_process_data(
    booked: list[tuple[Decimal, Decimal, int, bool, Decimal]], percent_card: int, mode: str
) -> None:
    sale = Sale()
    for quantity, price, key, refund, discount in booked:
        line = sale.add_line("Artikel", -quantity if refund else quantity, price, key)
        if discount < abs(line.gross):
            sale.add_discount("Rabatt", discount, key)
    total = sale.total
    if total < 0:
        sale.add_payment("cash", total)
    elif mode == "cash":
        sale.add_payment("cash", total + D("10.00"))
    elif mode == "card":
        sale.add_payment("card", total)
    else:
        card = round_cents(total * percent_card / 100)
        sale.add_payment("card", card)
        sale.add_payment("cash", total - card + D("0.05"))
    parsed = parse_kassenbeleg(sale.process_data())
    totals = sale.totals_by_vat_key()
    for slot in range(1, 6):
        expected = sum((t.gross for t in totals.values() if t.rate.slot == slot), D(0))
        assert parsed.gross[slot - 1] == expected
    assert parsed.total == total
    assert sum(p.amount for p in parsed.payments) == total
    assert all(t.net + t.tax == t.gross for t in totals.values())
