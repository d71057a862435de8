"""A sale as the register books it, and the processData the TSE signs for it.

Lines carry text, quantity, gross unit price and DSFinV-K VAT key; discounts are lines
of business-case type ``Rabatt``; payments are cash, card or other, in any currency.
From these the sale derives its totals per VAT key (gross, net, tax) and the exact
Kassenbeleg-V1 string (DSFinV-K Anhang I) -- so the receipt, the signature and the
DSFinV-K export are computed from the same numbers and agree to the cent.

Change: cash handed back is booked as a negative EUR cash payment, so the payments of
the processData add up to the total (certified TSEs sign e.g.
``Beleg^0.00_0.00_0.00_0.00_912.33^812.33:Bar_100.00:Unbar``).

Cash-book entries (Einzahlung, Auszahlung, Privatentnahme ...) are signed as
``SonstigerVorgang``, whose processData is free; ours is
``<GV_TYP>^<amount>:<Bar|Unbar>[:<currency>][^<text>]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from opentse.errors import ProtocolError
from opentse.formats import processdata as pd
from opentse.formats.dsfinvk.tables import GV_TYP
from opentse.register.money import (
    ZERO,
    VatRate,
    require_cents,
    require_quantity,
    round_cents,
    split_gross,
    vat_percent_on,
    vat_rate,
)
from opentse.register.text import check_text, check_texts

#: DSFinV-K GV_TYP value list (business-case types): the format library's, one source.
GV_TYPES: tuple[str, ...] = GV_TYP

#: Cash-book types and the sign their amount must have (+1 into the drawer, -1 out,
#: 0 either way).
CASH_BOOK_TYPES: dict[str, int] = {
    "Einzahlung": 1,
    "Privateinlage": 1,
    "Anfangsbestand": 1,
    "Auszahlung": -1,
    "Privatentnahme": -1,
    "Lohnzahlung": -1,
    "Geldtransit": 0,
    "DifferenzSollIst": 0,
    "TrinkgeldAN": 0,
}

#: Payment methods of the register -> DSFinV-K ZAHLART_TYP; only ``Bar`` is cash in
#: Kassenbeleg-V1, everything else is ``Unbar``.
PAYMENT_METHODS: dict[str, str] = {
    "cash": "Bar",
    "card": "ECKarte",
    "credit_card": "Kreditkarte",
    "online": "ElZahlungsdienstleister",
    "voucher": "Guthabenkarte",
    "other": "Unbar",
}


def _reject(code: str, message: str) -> ProtocolError:
    return ProtocolError(message, code=code)


def _check_currency(currency: str) -> None:
    if len(currency) != 3 or not currency.isascii() or not currency.isupper():
        raise _reject("E_CURRENCY", f"not an ISO 4217 code: {currency!r}")


#: DSFinV-K lines.csv ARTIKELTEXT is A255: a longer text would make the whole business
#: day impossible to export (E_DSFINVK_LENGTH), so it is refused at the till.
MAX_LINE_TEXT = 255


def _check_text_length(text: str, what: str) -> None:
    if len(text) > MAX_LINE_TEXT:
        raise _reject(
            "E_LINE_TEXT",
            f"{what} has {len(text)} characters; DSFinV-K allows {MAX_LINE_TEXT} (ARTIKELTEXT)",
        )


@dataclass(frozen=True)
class SaleLine:
    """One booked line. ``unit_price`` is gross; ``discount`` (gross) reduces the line."""

    text: str
    quantity: Decimal
    unit_price: Decimal
    vat_key: int
    gv_typ: str = "Umsatz"
    discount: Decimal = ZERO

    def __post_init__(self) -> None:
        object.__setattr__(self, "quantity", require_quantity(self.quantity))
        object.__setattr__(self, "unit_price", require_cents(self.unit_price, "unit price"))
        object.__setattr__(self, "discount", require_cents(self.discount, "discount"))
        vat_rate(self.vat_key)
        if self.gv_typ not in GV_TYPES:
            raise _reject("E_GV_TYP", f"unknown GV_TYP {self.gv_typ!r}")
        if not self.text.strip() or "\r" in self.text or "\n" in self.text:
            raise _reject("E_LINE_TEXT", "line text must be one non-empty line")
        _check_text_length(self.text, "line text")

    @property
    def gross(self) -> Decimal:
        """Quantity x unit price, rounded half up to cents, less the line discount."""
        return round_cents(self.quantity * self.unit_price) - self.discount

    @property
    def rate(self) -> VatRate:
        return vat_rate(self.vat_key)


@dataclass(frozen=True)
class SalePayment:
    """A payment. ``amount`` is in ``currency``; foreign currencies need ``amount_eur``."""

    method: str
    amount: Decimal
    currency: str = "EUR"
    amount_eur: Decimal | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.method not in PAYMENT_METHODS:
            raise _reject("E_PAYMENT_TYPE", f"unknown payment method {self.method!r}")
        object.__setattr__(self, "amount", require_cents(self.amount, "payment"))
        _check_currency(self.currency)
        if self.currency == "EUR":
            object.__setattr__(self, "amount_eur", None)
        elif self.amount_eur is None:
            raise _reject("E_CURRENCY", "a foreign-currency payment needs its EUR value")
        else:
            object.__setattr__(self, "amount_eur", require_cents(self.amount_eur, "EUR value"))

    @property
    def kind(self) -> str:
        """``Bar`` or ``Unbar`` as Kassenbeleg-V1 knows it."""
        return "Bar" if self.method == "cash" else "Unbar"

    @property
    def zahlart_typ(self) -> str:
        return PAYMENT_METHODS[self.method]

    @property
    def base_amount(self) -> Decimal:
        """Value in EUR (the register's base currency)."""
        return self.amount if self.amount_eur is None else self.amount_eur


@dataclass(frozen=True)
class VatTotal:
    """Sums of one VAT key: gross, net and tax (net + tax == gross)."""

    rate: VatRate
    gross: Decimal
    net: Decimal
    tax: Decimal


def _require_lines(sale: Sale) -> None:
    if not sale.lines:
        raise _reject("E_SALE_EMPTY", f"a {sale.bon_typ} needs at least one line")


@dataclass
class Sale:
    """A receipt being booked. Mutable while the customer is at the counter."""

    bon_typ: str = "Beleg"
    lines: list[SaleLine] = field(default_factory=list)
    payments: list[SalePayment] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.bon_typ not in pd.BON_TYPES:
            raise _reject("E_BON_TYP", f"unknown BON_TYP {self.bon_typ!r}")

    # --- booking -----------------------------------------------------------------------

    def add_line(
        self,
        text: str,
        quantity: Decimal | int | str,
        unit_price: Decimal | int | str,
        vat_key: int,
        *,
        gv_typ: str = "Umsatz",
        discount: Decimal | int | str = ZERO,
    ) -> SaleLine:
        check_text(text, "line text")
        line = SaleLine(
            text,
            require_quantity(quantity),
            require_cents(unit_price, "unit price"),
            vat_key,
            gv_typ,
            require_cents(discount, "discount"),
        )
        require_cents(line.gross, "line total")  # quantity x price within the limit too
        self.lines.append(line)
        return line

    def add_discount(self, text: str, amount: Decimal | int | str, vat_key: int) -> SaleLine:
        """A receipt discount (GV_TYP ``Rabatt``) of ``amount`` gross on one VAT key."""
        value = require_cents(amount, "discount")
        if value <= 0:
            raise _reject("E_DISCOUNT", "a discount amount must be positive")
        return self.add_line(text, 1, -value, vat_key, gv_typ="Rabatt")

    def add_payment(
        self,
        method: str,
        amount: Decimal | int | str,
        *,
        currency: str = "EUR",
        amount_eur: Decimal | int | str | None = None,
        name: str = "",
    ) -> SalePayment:
        check_text(name, "payment name")
        payment = SalePayment(
            method,
            require_cents(amount, "payment"),
            currency,
            None if amount_eur is None else require_cents(amount_eur, "EUR value"),
            name,
        )
        self.payments.append(payment)
        return payment

    def check_texts(self) -> None:
        """Every text of the sale is plain text (register/text.py), before it is
        signed: lines built directly, not through add_line, are checked here."""
        check_texts(
            [(f"text of line {n}", line.text) for n, line in enumerate(self.lines, 1)]
            + [(f"name of payment {n}", p.name) for n, p in enumerate(self.payments, 1)]
        )

    # --- sums ----------------------------------------------------------------------------

    def totals_by_vat_key(self, on: date | None = None) -> dict[int, VatTotal]:
        """Gross, net and tax per VAT key used (ascending keys); net per key, not per line,
        at the rates in force on the sale's day ``on`` (None: the current rates)."""
        gross: dict[int, Decimal] = {}
        for line in self.lines:
            gross[line.vat_key] = gross.get(line.vat_key, ZERO) + line.gross
        totals: dict[int, VatTotal] = {}
        for key in sorted(gross):
            net, tax = split_gross(gross[key], key, on)
            rate = replace(vat_rate(key), percent=vat_percent_on(key, on))
            totals[key] = VatTotal(rate, gross[key], net, tax)
        return totals

    @property
    def total(self) -> Decimal:
        return sum((line.gross for line in self.lines), ZERO)

    @property
    def paid(self) -> Decimal:
        return sum((p.base_amount for p in self.payments), ZERO)

    @property
    def cash_paid(self) -> Decimal:
        return sum((p.base_amount for p in self.payments if p.kind == "Bar"), ZERO)

    @property
    def change(self) -> Decimal:
        """Cash handed back (never negative)."""
        return max(self.paid - self.total, ZERO) if self.total >= 0 else ZERO

    # --- checks and derived processData -----------------------------------------------

    def validate(self) -> None:
        """Refuse to sign a sale whose payments do not fit its total.

        Positive totals: payments must cover the total, and only cash may exceed it (the
        excess is change). Negative totals (refunds): payments must equal the total.
        Aborted receipts (AVBelegabbruch) carry no payment duty. Every receipt has a
        line (``E_SALE_EMPTY``): a DSFinV-K Bon needs a Bonpos, and a closing with an
        empty one could never be exported.
        """
        _require_lines(self)
        if self.bon_typ == "AVBelegabbruch":
            return
        total, paid = self.total, self.paid
        if total < 0:
            if paid != total:
                raise _reject("E_PAYMENT_MISMATCH", f"refund of {total} paid back with {paid}")
            return
        if paid < total:
            raise _reject("E_PAYMENT_SHORT", f"payments {paid} do not cover the total {total}")
        if paid - total > self.cash_paid:
            raise _reject("E_CHANGE_NOT_CASH", "only cash payments may exceed the total")

    def processdata_payments(self) -> tuple[pd.Payment, ...]:
        """Payments as Kassenbeleg-V1 lists them: accumulated, change taken off EUR cash."""
        entries = [pd.Payment(p.amount, p.kind, p.currency) for p in self.payments]
        if self.change > 0:
            entries.append(pd.Payment(-self.change, "Bar", "EUR"))
        return tuple(p for p in pd.accumulate_payments(entries) if p.amount != 0)

    @property
    def process_type(self) -> str:
        return pd.PROCESS_TYPE_KASSENBELEG

    def process_data(self) -> str:
        """The Kassenbeleg-V1 string (validates first)."""
        self.validate()
        gross = {key: t.gross for key, t in self.totals_by_vat_key().items()}
        payments = () if self.bon_typ == "AVBelegabbruch" else self.processdata_payments()
        return pd.build_kassenbeleg(self.bon_typ, gross, payments)

    def order_process_data(self) -> str:
        """The Bestellung-V1 string of the lines (a restaurant order, no payments)."""
        return pd.build_bestellung(
            [
                pd.OrderLine(pd.format_quantity(line.quantity), line.text, line.unit_price)
                for line in self.lines
            ]
        )

    # --- variants ----------------------------------------------------------------------

    def storno(self) -> Sale:
        """The cancellation (AVBelegstorno) of this sale: every line and payment negated."""
        return Sale(
            "AVBelegstorno",
            [
                replace(line, quantity=-line.quantity, discount=-line.discount)
                for line in self.lines
            ],
            [
                replace(
                    p,
                    amount=-p.amount,
                    amount_eur=None if p.amount_eur is None else -p.amount_eur,
                )
                for p in self._net_payments()
            ],
        )

    def as_order(self) -> Sale:
        """This sale as a restaurant order (BON_TYP AVBestellung): its lines, no payments.

        An order signed as Bestellung-V1 is no business case (DSFinV-K 2.4, Anhang C):
        it is booked as AVBestellung whatever the TSE answered, so an order the TSE
        failed to sign is not taken for an unpaid sale at the closing. Payments belong
        on the final receipt: an order with payments is refused (``E_ORDER_PAYMENT``).
        """
        if self.payments:
            raise _reject("E_ORDER_PAYMENT", "an order has no payments: pay the final receipt")
        if self.bon_typ not in ("Beleg", "AVBestellung"):
            raise _reject("E_ORDER_BON_TYP", f"a {self.bon_typ} cannot be booked as an order")
        _require_lines(self)
        return Sale("AVBestellung", list(self.lines), [])

    def aborted(self) -> Sale:
        """This sale as an aborted receipt (AVBelegabbruch): lines kept, no payments."""
        return Sale("AVBelegabbruch", list(self.lines), [])

    def _net_payments(self) -> Iterable[SalePayment]:
        """Payments with the change taken off the cash, as money actually kept."""
        change = self.change
        for payment in self.payments:
            if change > 0 and payment.method == "cash" and payment.currency == "EUR":
                kept = min(change, payment.amount)
                change -= kept
                if payment.amount - kept == 0:
                    continue
                yield replace(payment, amount=payment.amount - kept)
            else:
                yield payment
        if change > 0:
            yield SalePayment("cash", -change)


@dataclass(frozen=True)
class CashBookEntry:
    """A money movement without sale (Einzahlung, Auszahlung, Privatentnahme ...).

    ``amount`` is signed: positive into the drawer, negative out of it.
    """

    gv_typ: str
    amount: Decimal
    text: str = ""
    method: str = "cash"
    currency: str = "EUR"

    def __post_init__(self) -> None:
        if self.gv_typ not in CASH_BOOK_TYPES:
            raise _reject("E_GV_TYP", f"{self.gv_typ!r} is not a cash-book business case")
        object.__setattr__(self, "amount", require_cents(self.amount))
        if self.method not in PAYMENT_METHODS:
            raise _reject("E_PAYMENT_TYPE", f"unknown payment method {self.method!r}")
        _check_currency(self.currency)
        sign = CASH_BOOK_TYPES[self.gv_typ]
        if self.amount == 0 or sign * self.amount < 0:
            direction = {1: "positive", -1: "negative", 0: "non-zero"}[sign]
            raise _reject("E_AMOUNT_SIGN", f"{self.gv_typ} needs a {direction} amount")
        if "^" in self.text or "\r" in self.text or "\n" in self.text:
            raise _reject("E_LINE_TEXT", "cash-book text must be one line without '^'")
        _check_text_length(self.text, "cash-book text")
        check_text(self.text, "cash-book text")

    @property
    def vat_key(self) -> int:
        """Money movements are not taxable (DSFinV-K key 5)."""
        return 5

    @property
    def process_type(self) -> str:
        return pd.PROCESS_TYPE_SONSTIGER

    def as_sale(self) -> Sale:
        """The entry as a DSFinV-K Vorgang: BON_TYP Beleg, one line of its GV_TYP on the
        non-taxable key 5, paid with its own amount (books and export; the signed
        processData stays the SonstigerVorgang one)."""
        if self.currency != "EUR":
            raise _reject("E_CURRENCY", "cash-book entries in the books must be in EUR")
        sale = Sale("Beleg")
        sale.add_line(self.text or self.gv_typ, 1, self.amount, self.vat_key, gv_typ=self.gv_typ)
        sale.add_payment(self.method, self.amount)
        return sale

    def process_data(self) -> str:
        kind = "Bar" if self.method == "cash" else "Unbar"
        payment = pd.Payment(self.amount, kind, self.currency).render()
        return f"{self.gv_typ}^{payment}" + (f"^{self.text}" if self.text else "")
