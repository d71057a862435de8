"""processData of the DSFinV-K (Anhang I): ``Kassenbeleg-V1`` and ``Bestellung-V1``.

The TSE signs processData byte for byte, and an auditor rebuilds it from the DSFinV-K
export, so the strings here must be exact. Pure functions, ``Decimal`` only.

Kassenbeleg-V1 (DSFinV-K Anhang I)::

    <BON_TYP>^<gross 19%>_<gross 7%>_<gross 10.7%>_<gross 5.5%>_<gross 0%>^<payments>

"Die Umsätze sind mit exakt 2 Nachkommastellen anzugeben" and also for unused rates
"0.00"; payments are ``<amount>:<Bar|Unbar>[:<ISO 4217 code if not EUR>]`` joined by
``_``, several payments of the same kind and currency "sind entsprechend zu
akkumulieren". The payments part may be empty (certified TSEs sign
``Beleg^0.00_0.00_0.00_0.00_0.00^`` for receipts without payment).

Bestellung-V1: one line per ordered item, ``<quantity>;"<text>";<price per unit>``.
Decision on the line separator: a bare CR (U+000D). The brief's digest guessed CR LF;
the certified fiskaly TSE exports in ``shared/testdata/tse-exports`` (``faulty/
ThreeMissingAreasOfSignatureCounter.tar``, ``fiskaly/TSE_Export_12f97c6a...tar``) sign
``1;"Tasse Kaffee";2.00\\r1;"Espresso";1.90`` -- CR only -- and these are what
fiskaly's ``standard_v1`` ``order`` produces. :func:`parse_bestellung` also accepts
CR LF and LF so data from other vendors still reads. Quotes in a text are doubled.

Amounts with 3-5 decimals (fiskaly accepts ``^-?\\d+(\\.\\d{2,5})$``): Anhang I wants
exactly two places, "alle anderen Nachkommastellen werden ggf. abgeschnitten", so the
fiskaly mapping sums the exact values per slot and then cuts (toward zero) to two
places. Our own builders refuse such amounts instead (``E_AMOUNT_PRECISION``): a
register must book in cents.

Stable error codes (all :class:`~opentse.errors.FormatError`): ``E_PROCESSDATA``
(structure), ``E_BON_TYP``, ``E_AMOUNT_FORMAT``, ``E_AMOUNT_PRECISION``, ``E_VAT_KEY``,
``E_PAYMENT_TYPE``, ``E_CURRENCY``, ``E_ORDER_LINE``, ``E_RECEIPT_TYPE``, ``E_VAT_RATE``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from opentse.errors import FormatError

PROCESS_TYPE_KASSENBELEG = "Kassenbeleg-V1"
PROCESS_TYPE_BESTELLUNG = "Bestellung-V1"
PROCESS_TYPE_SONSTIGER = "SonstigerVorgang"

#: Kassenbeleg-V1 of an aborted receipt with nothing on it (zero amounts, no
#: payments): what a cancelled or dangling transaction is finished with.
ABORTED_RECEIPT = "AVBelegabbruch^0.00_0.00_0.00_0.00_0.00^"

#: BON_TYP values allowed in Kassenbeleg-V1 (DSFinV-K Anhang I, "Transaktionstyp").
BON_TYPES: tuple[str, ...] = (
    "Beleg",
    "AVTransfer",
    "AVBestellung",
    "AVTraining",
    "AVBelegstorno",
    "AVBelegabbruch",
    "AVSachbezug",
    "AVSonstige",
    "AVRechnung",
)

PAYMENT_KINDS: tuple[str, ...] = ("Bar", "Unbar")
SLOTS = 5
BESTELLUNG_SEPARATOR = "\r"
CENT = Decimal("0.01")

# ASCII digits only: \d also matches "\u0661" (ARABIC-INDIC ONE), which Decimal reads
_AMOUNT_2 = re.compile(r"-?[0-9]+\.[0-9]{2}")
_FISKALY_AMOUNT = re.compile(r"-?[0-9]+(\.[0-9]{2,5})")
_FISKALY_QUANTITY = re.compile(r"-?[0-9]+(\.[0-9]{1,5})?")
_CURRENCY = re.compile(r"[A-Z]{3}")


def _error(code: str, message: str) -> FormatError:
    return FormatError(message, code=code)


# --- amounts -------------------------------------------------------------------------


def format_amount(value: Decimal) -> str:
    """Render an amount with a decimal point and exactly two places.

    Refuses floats (``E_AMOUNT_FORMAT``) and amounts that are not whole cents
    (``E_AMOUNT_PRECISION``); ``-0.00`` is written ``0.00``.
    """
    if not isinstance(value, Decimal) or isinstance(value, bool):
        raise _error("E_AMOUNT_FORMAT", f"amount must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise _error("E_AMOUNT_FORMAT", "amount must be finite")
    try:
        quantized = value.quantize(CENT)
    except InvalidOperation as exc:
        raise _error("E_AMOUNT_FORMAT", "amount is too large") from exc
    if quantized != value:
        raise _error("E_AMOUNT_PRECISION", f"amount {value} has more than two decimals")
    if quantized == 0:
        quantized = Decimal("0.00")
    return f"{quantized:f}"


def cut_amount(value: Decimal) -> Decimal:
    """Cut extra decimals toward zero (Anhang I: "werden ggf. abgeschnitten")."""
    try:
        return value.quantize(CENT, rounding=ROUND_DOWN)
    except InvalidOperation as exc:
        raise _error("E_AMOUNT_FORMAT", "amount is too large") from exc


def parse_amount(text: str) -> Decimal:
    """Read an amount written with a decimal point and exactly two places."""
    if not _AMOUNT_2.fullmatch(text):
        raise _error("E_AMOUNT_FORMAT", f"not an amount with two decimals: {text!r}")
    return Decimal(text)


def vat_slot(vat_key: int) -> int:
    """Slot (1-5) of a DSFinV-K VAT key: 1-5 as they are, 6-8 (0 %) in slot 5,
    historic two-digit keys (11-18) by their last digit."""
    if isinstance(vat_key, bool) or not isinstance(vat_key, int):
        raise _error("E_VAT_KEY", f"VAT key must be an int, got {vat_key!r}")
    key = vat_key % 10 if 11 <= vat_key <= 18 else vat_key
    if not 1 <= key <= 8:
        raise _error("E_VAT_KEY", f"unknown DSFinV-K VAT key {vat_key}")
    return key if key <= SLOTS else SLOTS


# --- Kassenbeleg-V1 ------------------------------------------------------------------


@dataclass(frozen=True)
class Payment:
    """One payment entry: amount, ``Bar`` or ``Unbar``, ISO 4217 currency."""

    amount: Decimal
    kind: str
    currency: str = "EUR"

    def __post_init__(self) -> None:
        if self.kind not in PAYMENT_KINDS:
            raise _error("E_PAYMENT_TYPE", f"payment type must be Bar or Unbar: {self.kind!r}")
        if not _CURRENCY.fullmatch(self.currency):
            raise _error("E_CURRENCY", f"not an ISO 4217 code: {self.currency!r}")

    def render(self) -> str:
        text = f"{format_amount(self.amount)}:{self.kind}"
        return text if self.currency == "EUR" else f"{text}:{self.currency}"


@dataclass(frozen=True)
class KassenbelegV1:
    """A parsed Kassenbeleg-V1: BON_TYP, five gross sums by slot, payments."""

    bon_typ: str
    gross: tuple[Decimal, Decimal, Decimal, Decimal, Decimal]
    payments: tuple[Payment, ...]

    def render(self) -> str:
        sums = "_".join(format_amount(amount) for amount in self.gross)
        return f"{self.bon_typ}^{sums}^" + "_".join(p.render() for p in self.payments)

    @property
    def total(self) -> Decimal:
        return sum(self.gross, Decimal("0.00"))


def accumulate_payments(payments: Iterable[Payment]) -> tuple[Payment, ...]:
    """Add up payments of the same kind and currency, keeping first-seen order."""
    sums: dict[tuple[str, str], Decimal] = {}
    for payment in payments:
        key = (payment.kind, payment.currency)
        sums[key] = sums.get(key, Decimal("0.00")) + payment.amount
    return tuple(Payment(amount, kind, currency) for (kind, currency), amount in sums.items())


def build_kassenbeleg(
    bon_typ: str,
    gross_by_vat_key: Mapping[int, Decimal],
    payments: Iterable[Payment],
) -> str:
    """Build the Kassenbeleg-V1 string from gross sums per DSFinV-K VAT key and payments.

    >>> build_kassenbeleg("Beleg", {1: Decimal("21.42")}, [Payment(Decimal("21.42"), "Unbar")])
    'Beleg^21.42_0.00_0.00_0.00_0.00^21.42:Unbar'
    """
    if bon_typ not in BON_TYPES:
        raise _error("E_BON_TYP", f"unknown BON_TYP {bon_typ!r}")
    slots = [Decimal("0.00")] * SLOTS
    for key, amount in gross_by_vat_key.items():
        format_amount(amount)  # type and precision check of every input amount
        slots[vat_slot(key) - 1] += amount
    gross = (slots[0], slots[1], slots[2], slots[3], slots[4])
    return KassenbelegV1(bon_typ, gross, accumulate_payments(payments)).render()


def parse_kassenbeleg(text: str) -> KassenbelegV1:
    """Parse a Kassenbeleg-V1 string (exact format; no whitespace tolerated)."""
    parts = text.split("^")
    if len(parts) != 3:
        raise _error("E_PROCESSDATA", "Kassenbeleg-V1 needs three parts separated by '^'")
    bon_typ, sums, payment_text = parts
    if bon_typ not in BON_TYPES:
        raise _error("E_BON_TYP", f"unknown BON_TYP {bon_typ!r}")
    amounts = sums.split("_")
    if len(amounts) != SLOTS:
        raise _error("E_PROCESSDATA", f"Kassenbeleg-V1 needs {SLOTS} gross sums")
    parsed = [parse_amount(a) for a in amounts]
    gross = (parsed[0], parsed[1], parsed[2], parsed[3], parsed[4])
    payments: list[Payment] = []
    if payment_text:
        for entry in payment_text.split("_"):
            fields = entry.split(":")
            if len(fields) not in (2, 3):
                raise _error("E_PROCESSDATA", f"bad payment entry {entry!r}")
            currency = fields[2] if len(fields) == 3 else "EUR"
            payments.append(Payment(parse_amount(fields[0]), fields[1], currency))
    return KassenbelegV1(bon_typ, gross, tuple(payments))


# --- Bestellung-V1 -------------------------------------------------------------------


@dataclass(frozen=True)
class OrderLine:
    """One Bestellung-V1 line. ``quantity`` keeps the text it is written with."""

    quantity: str
    text: str
    price_per_unit: Decimal

    def render(self) -> str:
        if not _FISKALY_QUANTITY.fullmatch(self.quantity):
            raise _error("E_ORDER_LINE", f"bad quantity {self.quantity!r}")
        if "\r" in self.text or "\n" in self.text:
            raise _error("E_ORDER_LINE", "order line text must not contain line breaks")
        quoted = self.text.replace('"', '""')
        return f'{self.quantity};"{quoted}";{format_amount(self.price_per_unit)}'


def format_quantity(quantity: Decimal) -> str:
    """Write a quantity without exponent and without trailing zeros (``2``, ``0.5``)."""
    if not isinstance(quantity, Decimal) or not quantity.is_finite():
        raise _error("E_ORDER_LINE", "quantity must be a finite Decimal")
    text = f"{quantity.normalize():f}"
    return "0" if text in ("-0", "0") else text


def build_bestellung(lines: Sequence[OrderLine]) -> str:
    """Join order lines with CR (see the module docstring for why CR)."""
    return BESTELLUNG_SEPARATOR.join(line.render() for line in lines)


def parse_bestellung(text: str) -> tuple[OrderLine, ...]:
    """Parse Bestellung-V1; accepts CR, CR LF and LF between lines."""
    if text == "":
        return ()
    lines: list[OrderLine] = []
    for raw in re.split(r"\r\n|\r|\n", text):
        lines.append(_parse_order_line(raw))
    return tuple(lines)


def _parse_order_line(raw: str) -> OrderLine:
    first = raw.find(';"')
    last = raw.rfind('";')
    if first < 0 or last < first + 2:
        raise _error("E_ORDER_LINE", f"not an order line: {raw!r}")
    quantity, inner, price = raw[:first], raw[first + 2 : last], raw[last + 2 :]
    if not _FISKALY_QUANTITY.fullmatch(quantity):
        raise _error("E_ORDER_LINE", f"bad quantity {quantity!r}")
    if '"' in inner.replace('""', ""):
        raise _error("E_ORDER_LINE", f"unescaped quote in text of {raw!r}")
    return OrderLine(quantity, inner.replace('""', '"'), parse_amount(price))


# --- fiskaly standard_v1 -------------------------------------------------------------

#: fiskaly ``receipt_type`` -> BON_TYP, as the fiskaly SIGN DE v2.1.35 OpenAPI
#: (``ProcessDataStandardV1Receipt``) documents it. Note: fiskaly maps CANCELLATION
#: to AVBelegabbruch and ANNULATION to AVBelegstorno.
FISKALY_RECEIPT_TYPES: dict[str, str] = {
    "RECEIPT": "Beleg",
    "TRAINING": "AVTraining",
    "TRANSFER": "AVTransfer",
    "ORDER": "AVBestellung",
    "CANCELLATION": "AVBelegabbruch",
    "ABORT": "AVBelegabbruch",
    "BENEFIT_IN_KIND": "AVSachbezug",
    "INVOICE": "AVRechnung",
    "OTHER": "AVSonstige",
    "ANNULATION": "AVBelegstorno",
}

#: fiskaly ``vat_rate`` (names, and the deprecated quoted rates) -> slot 1-5.
FISKALY_VAT_RATES: dict[str, int] = {
    "NORMAL": 1,
    "REDUCED_1": 2,
    "SPECIAL_RATE_1": 3,
    "SPECIAL_RATE_2": 4,
    "NULL": 5,
    "19": 1,
    "7": 2,
    "10.7": 3,
    "5.5": 4,
    "0": 5,
}

FISKALY_PAYMENT_TYPES: dict[str, str] = {"CASH": "Bar", "NON_CASH": "Unbar"}


def _fiskaly_amount(value: Any, field: str) -> Decimal:
    if not isinstance(value, str) or not _FISKALY_AMOUNT.fullmatch(value):
        raise _error("E_AMOUNT_FORMAT", f"{field} must match ^-?\\d+(\\.\\d{{2,5}})$")
    return Decimal(value)


def _items(obj: Mapping[str, Any], key: str, *, required: bool) -> list[Mapping[str, Any]]:
    value = obj.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise _error("E_PROCESSDATA", f"{key} must be a list of objects")
    return value


def from_fiskaly_receipt(receipt: Mapping[str, Any]) -> tuple[str, str]:
    """Map a fiskaly ``standard_v1.receipt`` object to (processType, processData)."""
    if not isinstance(receipt, Mapping):
        raise _error("E_PROCESSDATA", "receipt must be an object")
    receipt_type = receipt.get("receipt_type")
    if not isinstance(receipt_type, str) or receipt_type not in FISKALY_RECEIPT_TYPES:
        raise _error("E_RECEIPT_TYPE", f"unknown receipt_type {receipt_type!r}")
    slots = [Decimal("0")] * SLOTS
    for entry in _items(receipt, "amounts_per_vat_rate", required=True):
        rate = entry.get("vat_rate")
        if not isinstance(rate, str) or rate not in FISKALY_VAT_RATES:
            raise _error("E_VAT_RATE", f"unknown vat_rate {rate!r}")
        slots[FISKALY_VAT_RATES[rate] - 1] += _fiskaly_amount(entry.get("amount"), "amount")
    sums: dict[tuple[str, str], Decimal] = {}
    for entry in _items(receipt, "amounts_per_payment_type", required=False):
        payment_type = entry.get("payment_type")
        kind = FISKALY_PAYMENT_TYPES.get(payment_type) if isinstance(payment_type, str) else None
        if kind is None:
            raise _error("E_PAYMENT_TYPE", f"unknown payment_type {payment_type!r}")
        currency = entry.get("currency_code", "EUR")
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise _error("E_CURRENCY", f"bad currency_code {currency!r}")
        key = (kind, currency.upper())
        sums[key] = sums.get(key, Decimal("0")) + _fiskaly_amount(entry.get("amount"), "amount")
    cut = [cut_amount(s) for s in slots]
    gross = (cut[0], cut[1], cut[2], cut[3], cut[4])
    payments = tuple(Payment(cut_amount(a), k, c) for (k, c), a in sums.items())
    bon_typ = FISKALY_RECEIPT_TYPES[str(receipt_type)]
    return PROCESS_TYPE_KASSENBELEG, KassenbelegV1(bon_typ, gross, payments).render()


def from_fiskaly_order(order: Mapping[str, Any]) -> tuple[str, str]:
    """Map a fiskaly ``standard_v1.order`` object to (processType, processData)."""
    if not isinstance(order, Mapping):
        raise _error("E_PROCESSDATA", "order must be an object")
    lines: list[OrderLine] = []
    for item in _items(order, "line_items", required=True):
        quantity, text = item.get("quantity"), item.get("text")
        if not isinstance(quantity, str) or not _FISKALY_QUANTITY.fullmatch(quantity):
            raise _error("E_ORDER_LINE", "quantity must match ^-?\\d+(\\.\\d{1,5})?$")
        if not isinstance(text, str) or len(text) > 255:
            raise _error("E_ORDER_LINE", "text must be a string of at most 255 characters")
        price = cut_amount(_fiskaly_amount(item.get("price_per_unit"), "price_per_unit"))
        lines.append(OrderLine(quantity, text, price))
    return PROCESS_TYPE_BESTELLUNG, build_bestellung(lines)
