"""Money for the register: ``Decimal`` from end to end, never float.

Registers book in whole cents. Amounts derived by multiplication (quantity x unit
price, net from gross) are rounded half up ("kaufmännisch"), as DSFinV-K expects of
the values it exports (money with two places, quantities with three).

The VAT table is the DSFinV-K one (Anhang "UST_SCHLUESSEL"): keys 1-5 carry the five
rates of Kassenbeleg-V1's slots, 6-8 are further 0 % cases that share slot 5. A key's
rate changes over time (DSFinV-K Anlage 2: 16 %/5 % in the second half of 2020, the
§24 average rate of key 3 year by year): :func:`vat_percent_on` gives the rate in
force on a day, and the receipt, the books and the export all use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from opentse.errors import ProtocolError
from opentse.formats.dsfinvk.tables import vat_rate as _period_rate

CENT = Decimal("0.01")
MILLI = Decimal("0.001")
ZERO = Decimal("0.00")
# Largest amount (EUR) and quantity a line takes: far above any till's sale, and small
# enough that quantity x price and the sums of a receipt stay exact in Decimal's 28
# digits (a bigger one made quantize raise a bare decimal.InvalidOperation).
MAX_AMOUNT = Decimal(10) ** 11
MAX_QUANTITY = Decimal(10) ** 9


def _reject(code: str, message: str) -> ProtocolError:
    return ProtocolError(message, code=code)


def to_decimal(value: Decimal | int | str, what: str = "amount") -> Decimal:
    """Accept Decimal, int or a decimal string; refuse float (binary rounding) and NaN."""
    if isinstance(value, (bool, float)):
        raise _reject("E_AMOUNT_FORMAT", f"{what} must be Decimal, int or str, not float")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation as exc:
        # a German till's 2,50: say what is meant instead of guessing (1,234 is ambiguous)
        hint = " (with a decimal point: 2.50, not 2,50)" if "," in str(value) else ""
        raise _reject("E_AMOUNT_FORMAT", f"{what} is not a number: {value!r}{hint}") from exc
    if not result.is_finite():
        raise _reject("E_AMOUNT_FORMAT", f"{what} must be finite")
    return result


def round_cents(value: Decimal) -> Decimal:
    """Round to two places, half up (2.345 -> 2.35, -2.345 -> -2.35)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def require_cents(value: Decimal | int | str, what: str = "amount") -> Decimal:
    """An amount as booked: whole cents or ``E_AMOUNT_PRECISION``; returned with 2 places."""
    amount = to_decimal(value, what)
    if abs(amount) >= MAX_AMOUNT:
        raise _reject(
            "E_AMOUNT_RANGE", f"{what} {amount} is too large (at most {MAX_AMOUNT - CENT})"
        )
    if amount != amount.quantize(CENT):
        raise _reject("E_AMOUNT_PRECISION", f"{what} {amount} has more than two decimals")
    return amount.quantize(CENT)


def require_quantity(value: Decimal | int | str) -> Decimal:
    """A quantity: at most three decimals (DSFinV-K MENGE), never zero."""
    quantity = to_decimal(value, "quantity")
    if abs(quantity) >= MAX_QUANTITY:
        raise _reject("E_AMOUNT_RANGE", f"quantity {quantity} is too large (below {MAX_QUANTITY})")
    if quantity != quantity.quantize(MILLI):
        raise _reject("E_QUANTITY_PRECISION", f"quantity {quantity} has more than 3 decimals")
    if quantity == 0:
        raise _reject("E_QUANTITY", "quantity must not be zero")
    return quantity


def format_money(value: Decimal, *, thousands: bool = True) -> str:
    """German notation for receipts: ``1.234,50`` (``-0,00`` never appears)."""
    amount = round_cents(value)
    if amount == 0:
        amount = ZERO
    text = f"{abs(amount):,.2f}" if thousands else f"{abs(amount):.2f}"
    text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return f"-{text}" if amount < 0 else text


def format_quantity_de(value: Decimal) -> str:
    """Quantity for receipts: ``2``, ``0,5``, ``1,25``."""
    text = f"{value.normalize():f}"
    return text.replace(".", ",")


@dataclass(frozen=True)
class VatRate:
    """One DSFinV-K VAT key with its rate in percent and a short receipt letter."""

    key: int
    percent: Decimal
    description: str
    letter: str

    @property
    def slot(self) -> int:
        """Kassenbeleg-V1 slot (1-5)."""
        return self.key if self.key <= 5 else 5


#: DSFinV-K 2.4 VAT keys (Stammdaten ``vat.csv``): the rates in force now (key 3 is the
#: §24 average rate: 7.8 % since 2025-01-01). Exports use the rate in force on the day
#: of each receipt (``formats.dsfinvk.tables.VAT_PERIODS``).
VAT_TABLE: Mapping[int, VatRate] = {
    1: VatRate(1, Decimal("19"), "Regelsteuersatz", "A"),
    2: VatRate(2, Decimal("7"), "Ermäßigter Steuersatz", "B"),
    3: VatRate(3, Decimal("7.8"), "Durchschnittsatz §24(1) Nr. 3 UStG", "C"),
    4: VatRate(4, Decimal("5.5"), "Durchschnittsatz §24(1) Nr. 1 UStG", "D"),
    5: VatRate(5, Decimal("0"), "Nicht steuerbar", "E"),
    6: VatRate(6, Decimal("0"), "Umsatzsteuerfrei", "F"),
    7: VatRate(7, Decimal("0"), "UmsatzsteuerNichtErmittelbar", "G"),
    8: VatRate(8, Decimal("0"), "Steuersatz 0 % (§12 Abs. 3 UStG)", "H"),
}


def vat_rate(key: int) -> VatRate:
    """The VAT key's entry, or ``E_VAT_KEY``."""
    if isinstance(key, bool) or not isinstance(key, int) or key not in VAT_TABLE:
        raise _reject("E_VAT_KEY", f"unknown DSFinV-K VAT key {key!r} (1-8)")
    return VAT_TABLE[key]


def vat_percent_on(key: int, on: date | None) -> Decimal:
    """The key's rate in force on a (shop-local) day (formats.dsfinvk.tables
    VAT_PERIODS); this table's current rate when the day is unknown or the key has no
    period then."""
    rate = None if on is None else _period_rate(key, on)
    return vat_rate(key).percent if rate is None else rate


def split_gross(gross: Decimal, key: int, on: date | None = None) -> tuple[Decimal, Decimal]:
    """(net, tax) of a gross amount at the key's rate on day ``on`` (None: the current
    rate); net rounded half up, tax = rest, so net + tax == gross to the cent."""
    rate = vat_percent_on(key, on)
    net = round_cents(gross * Decimal(100) / (Decimal(100) + rate))
    return net, gross - net
