"""The printed receipt's tax table (§6 Nr. 5) uses the VAT rate in force on the
receipt's (shop-local) day, the rate the books and the DSFinV-K export use, so the
receipt and the export agree to the cent."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.formats.dsfinvk.tables import vat_rate as period_rate
from opentse.register.dsfinvk_bridge import dsfinvk_lines
from opentse.register.receipt import Receipt, Seller
from opentse.register.render_text import render_text
from opentse.register.sale import Sale

BERLIN = ZoneInfo("Europe/Berlin")
SELLER = Seller("Hofladen", ("Feldweg 3", "99999 Dorf"))


def receipt_at(sale: Sale, end: datetime) -> Receipt:
    """An unsigned receipt (TSE ausgefallen) made at ``end``: the register's times."""
    return Receipt.from_sale(
        sale,
        seller=SELLER,
        register_serial="KASSE-1",
        issued_at=end,
        start_time=end - timedelta(seconds=5),
        end_time=end,
    )


def farm_sale() -> Sale:
    sale = Sale()
    sale.add_line("Kartoffeln", 1, "10.78", 3)
    sale.add_line("Kaffee", 1, "11.60", 1)
    sale.add_payment("cash", "22.38")
    return sale


def test_second_half_of_2020_prints_16_percent() -> None:
    receipt = receipt_at(farm_sale(), datetime(2020, 8, 1, 12, 0, tzinfo=BERLIN))
    rates = {t.vat_key: (t.percent, t.net, t.tax) for t in receipt.taxes}
    assert rates[1] == (Decimal("16"), Decimal("10.00"), Decimal("1.60"))
    assert rates[3][0] == Decimal("10.7")
    assert "A 16 %" in render_text(receipt)


def test_key_3_across_new_year_midnight_in_berlin() -> None:
    """8.4 % until 2024-12-31, 7.8 % from 2025-01-01 -- by the shop's day: 00:30 in
    Berlin is still 2024 in UTC."""
    old = datetime(2024, 12, 31, 23, 30, tzinfo=BERLIN).astimezone(UTC)
    new = datetime(2025, 1, 1, 0, 30, tzinfo=BERLIN).astimezone(UTC)
    assert new.date() == date(2024, 12, 31)
    for end, percent, net in ((old, "8.4", "9.94"), (new, "7.8", "10.00")):
        receipt = receipt_at(farm_sale(), end)
        (tax,) = [t for t in receipt.taxes if t.vat_key == 3]
        assert (tax.percent, tax.net, tax.net + tax.tax) == (
            Decimal(percent),
            Decimal(net),
            Decimal("10.78"),
        )
        text = render_text(receipt)
        assert f"C {percent.replace('.', ',')} %" in text
        assert f"{net.replace('.', ',')}" in text


@settings(max_examples=150, deadline=None)
@given(
    day=st.dates(min_value=date(2019, 1, 1), max_value=date(2027, 12, 31)),
    key=st.sampled_from([1, 2, 3, 4, 5, 7]),
    cents=st.lists(st.integers(min_value=-5_000, max_value=50_000), min_size=1, max_size=5),
)
def test_receipt_and_export_agree_on_every_day(day: date, key: int, cents: list[int]) -> None:
    sale = Sale()
    for n, c in enumerate(cents):
        sale.add_line(f"Posten {n}", 1, Decimal(c) / 100, key)
    end = datetime(day.year, day.month, day.day, 0, 30, tzinfo=BERLIN)
    (tax,) = receipt_at(sale, end).taxes
    expected = period_rate(key, day)
    assert expected is not None and tax.percent == expected
    lines = dsfinvk_lines(sale, day)
    assert tax.net == sum((v.net for line in lines for v in line.vat), Decimal("0.00"))
    assert tax.tax == sum((v.vat for line in lines for v in line.vat), Decimal("0.00"))
