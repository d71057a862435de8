"""Typed input of a DSFinV-K export: one or more closings (Kassenabschluesse) with their
master data, receipts, lines, payments and TSE data. Pure; ``Decimal`` money.

The register side (its bookkeeping store and ``pos close``) fills these; the closing
totals (businesscases, payment, cash_per_currency, Z_SE_*) are derived here from the
receipts, so they cannot disagree with the single records (DSFinV-K 2.4, 5: "Die
Summen des Kassenabschlusses ergeben sich aus den Einzelaufzeichnungen").

What the register must keep so that an auditor can verify its signatures from the
export alone:
- ``CashRegister.serial_number`` (or ``Terminal.serial_number`` for a receipt whose
  ``terminal_id`` names a terminal) is the TSE client id of the transaction;
- each receipt's lines' VAT amounts per key and its payments in the order they were
  signed (``Payment.amount`` in the base currency, ``foreign_amount`` in ``currency``)
  rebuild the Kassenbeleg-V1 that was signed; Bestellung-V1 is rebuilt from the lines
  (MENGE, ARTIKELTEXT, STK_BR); any other processType (SonstigerVorgang) is verified
  from ``TseTransaction.process_data`` only, so keep it;
- ``TseTransaction.end`` is the Finish log's time, ``signature_counter`` and
  ``signature`` are the Finish log's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from opentse.errors import FormatError
from opentse.formats.dsfinvk.tables import BON_TYP, GV_TYP, ZAHLART_TYP

ZERO = Decimal("0.00")

#: Receipt types whose lines and payments count in the closing totals. Training,
#: aborted, order, transfer and "other" Vorgaenge are recorded but are no business
#: cases (DSFinV-K 2.4, Anhang C: AVTraining, AVBelegabbruch, AVBestellung,
#: AVTransfer, AVSonstige).
CLOSING_BON_TYPES = frozenset({"Beleg", "AVRechnung", "AVSachbezug", "AVBelegstorno"})
#: Receipt types that must be settled by payments (their sum = the receipt total).
PAID_BON_TYPES = frozenset({"Beleg"})


def _fail(message: str) -> FormatError:
    return FormatError(message, code="E_DSFINVK_MODEL")


@dataclass(frozen=True, slots=True)
class Company:
    name: str
    street: str
    postal_code: str
    city: str
    country: str = "DEU"
    tax_number: str = ""
    vat_id: str = ""


@dataclass(frozen=True, slots=True)
class Location:
    name: str
    street: str
    postal_code: str
    city: str
    country: str = "DEU"
    vat_id: str = ""


#: KASSE_BRAND / KASSE_MODELL of opentse's own register (``opentse pos``), what a
#: register configured with no brand or model of its own is
REGISTER_BRAND = "opentse"
REGISTER_MODEL = "opentse pos"


@dataclass(frozen=True, slots=True)
class CashRegister:
    """``serial_number`` is KASSE_SERIENNR and must be the TSE client id: an auditor
    rebuilds the signed Finish log with it. ``brand`` and ``model`` (KASSE_BRAND,
    KASSE_MODELL, Stamm_Kassen: the register that wrote the data) name opentse's
    register unless the register is configured with its own."""

    serial_number: str
    brand: str = REGISTER_BRAND
    model: str = REGISTER_MODEL
    software_brand: str = "opentse"
    software_version: str = ""
    base_currency: str = "EUR"
    no_vat_assignment: bool = False


@dataclass(frozen=True, slots=True)
class Terminal:
    """A slave terminal; its serial number is its TSE client id."""

    terminal_id: str
    serial_number: str
    brand: str = ""
    model: str = ""
    software_brand: str = ""
    software_version: str = ""


@dataclass(frozen=True, slots=True)
class Agency:
    agency_id: int
    name: str
    street: str
    postal_code: str
    city: str
    country: str = "DEU"
    tax_number: str = ""
    vat_id: str = ""


def zeitformat(time_format: str) -> str:
    """DSFinV-K's TSE_ZEITFORMAT for a TSE's TR-03151 logTime format. TR-03151's
    ``utcTime`` is ASN.1 UTCTime in DER, which always writes the seconds (X.690
    11.8.2): DSFinV-K calls that ``utcTimeWithSeconds`` and means by ``utcTime`` a
    UTCTime without them, so an auditor's tool would rebuild the wrong logTime."""
    return "utcTimeWithSeconds" if time_format == "utcTime" else time_format


@dataclass(frozen=True, slots=True)
class TseInfo:
    """One TSE: public key as the uncompressed point 04||X||Y, certificate DER."""

    tse_id: int
    public_key: bytes
    certificate: bytes
    signature_algorithm: str = "ecdsa-plain-SHA256"
    time_format: str = "unixTime"  # DSFinV-K names: unixTime, utcTimeWithSeconds, ...
    pd_encoding: str = "UTF-8"

    @property
    def serial_hex(self) -> str:
        """TSE_SERIAL: hex SHA-256 of the public key (TR-03153 7.5)."""
        return hashlib.sha256(self.public_key).hexdigest()


@dataclass(frozen=True, slots=True)
class VatRate:
    key: int
    rate: Decimal
    description: str = ""


@dataclass(frozen=True, slots=True)
class VatAmount:
    """Gross, net and VAT of one VAT key (lines_vat, transactions_vat rows)."""

    key: int
    gross: Decimal
    net: Decimal
    vat: Decimal


@dataclass(frozen=True, slots=True)
class ItemAmount:
    """itemamounts.csv: base price / discount / surcharge of a line."""

    typ: str
    key: int
    gross: Decimal | None = None
    net: Decimal | None = None
    vat: Decimal | None = None


@dataclass(frozen=True, slots=True)
class SubItem:
    art_nr: str
    quantity: Decimal
    key: int
    name: str = ""
    gtin: str = ""
    product_group_id: str = ""
    product_group: str = ""
    factor: Decimal | None = None
    unit: str = ""
    base_gross: Decimal | None = None
    base_net: Decimal | None = None
    base_vat: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """One receipt line (Bonpos) with its VAT split (Bonpos_USt)."""

    pos: str
    text: str
    gv_typ: str
    vat: tuple[VatAmount, ...]
    quantity: Decimal | None = Decimal("1")
    unit_price: Decimal | None = None  # STK_BR, gross per unit
    art_nr: str = ""
    gv_name: str = ""
    gtin: str = ""
    product_group_id: str = ""
    product_group: str = ""
    unit: str = ""
    factor: Decimal | None = None
    voucher_nr: str = ""
    terminal_id: str = ""
    in_house: bool | None = None
    storno: bool | None = None
    agency_id: int | None = None
    item_amounts: tuple[ItemAmount, ...] = ()
    sub_items: tuple[SubItem, ...] = ()

    @property
    def gross(self) -> Decimal:
        return sum((v.gross for v in self.vat), ZERO)


@dataclass(frozen=True, slots=True)
class Payment:
    """``amount`` in the base currency; ``foreign_amount`` when ``currency`` differs."""

    type: str
    amount: Decimal
    name: str = ""
    currency: str = "EUR"
    foreign_amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Reference:
    ref_type: str
    ref_bon_id: str
    ref_z_kasse_id: str = ""
    ref_z_nr: int | None = None
    ref_date: date | datetime | None = None
    name: str = ""
    pos: str = ""


@dataclass(frozen=True, slots=True)
class Customer:
    name: str = ""
    customer_id: str = ""
    customer_type: str = ""
    street: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = ""
    vat_id: str = ""


@dataclass(frozen=True, slots=True)
class TseTransaction:
    """The TSE data of a receipt: start and Finish log times, Finish counter and
    signature, processData as signed. After a TSE failure only ``error`` is set."""

    tse_id: int
    number: int | None
    start: datetime | None
    end: datetime | None
    process_type: str
    signature_counter: int | None
    signature: bytes
    process_data: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class Receipt:
    """One Vorgang (Bonkopf) with lines, payments and TSE data."""

    bon_id: str
    bon_nr: int
    bon_typ: str
    start: datetime
    end: datetime
    operator_id: str
    lines: tuple[Line, ...]
    payments: tuple[Payment, ...] = ()
    tse: TseTransaction | None = None
    bon_name: str = ""
    terminal_id: str = ""
    storno: bool = False
    operator_name: str = ""
    customer: Customer = field(default_factory=Customer)
    note: str = ""
    references: tuple[Reference, ...] = ()
    allocation_groups: tuple[str, ...] = ()

    @property
    def total(self) -> Decimal:
        return sum((line.gross for line in self.lines), ZERO)

    def vat_totals(self) -> tuple[VatAmount, ...]:
        """transactions_vat: the lines' VAT amounts added up per key."""
        return _sum_vat(v for line in self.lines for v in line.vat)


def _sum_vat(amounts: Iterable[VatAmount]) -> tuple[VatAmount, ...]:
    sums: dict[int, tuple[Decimal, Decimal, Decimal]] = {}
    for v in amounts:
        g, n, t = sums.get(v.key, (ZERO, ZERO, ZERO))
        sums[v.key] = (g + v.gross, n + v.net, t + v.vat)
    return tuple(VatAmount(k, *sums[k]) for k in sorted(sums))


@dataclass(frozen=True, slots=True)
class Closing:
    """One Kassenabschluss: key (Z_KASSE_ID, Z_ERSTELLUNG, Z_NR) and its content."""

    z_kasse_id: str
    created: datetime
    z_nr: int
    company: Company
    location: Location
    register: CashRegister
    tses: tuple[TseInfo, ...]
    vat_rates: tuple[VatRate, ...]
    receipts: tuple[Receipt, ...]
    terminals: tuple[Terminal, ...] = ()
    agencies: tuple[Agency, ...] = ()
    business_day: date | None = None
    taxonomy_version: str = "2.4"


@dataclass(frozen=True, slots=True)
class BusinessCaseTotal:
    gv_typ: str
    gv_name: str
    agency_id: int | None
    key: int
    gross: Decimal
    net: Decimal
    vat: Decimal


@dataclass(frozen=True, slots=True)
class ClosingTotals:
    """What the Z report and the Kassenabschlussmodul tables say."""

    business_cases: tuple[BusinessCaseTotal, ...]
    payments: tuple[tuple[str, str, Decimal], ...]  # (ZAHLART_TYP, ZAHLART_NAME, amount)
    cash_per_currency: tuple[tuple[str, Decimal], ...]  # (currency, amount)
    all_payments: Decimal
    cash_payments: Decimal


def closing_totals(closing: Closing) -> ClosingTotals:
    """Add up the receipts that count (CLOSING_BON_TYPES) into the closing totals."""
    cases: dict[tuple[str, str, int | None, int], tuple[Decimal, Decimal, Decimal]] = {}
    pays: dict[tuple[str, str], Decimal] = {}
    cash: dict[str, Decimal] = {}
    all_payments = cash_payments = ZERO
    base = closing.register.base_currency
    for receipt in closing.receipts:
        if receipt.bon_typ not in CLOSING_BON_TYPES:
            continue
        for line in receipt.lines:
            for v in line.vat:
                key = (line.gv_typ, line.gv_name, line.agency_id, v.key)
                g, n, t = cases.get(key, (ZERO, ZERO, ZERO))
                cases[key] = (g + v.gross, n + v.net, t + v.vat)
        for p in receipt.payments:
            pays[(p.type, p.name)] = pays.get((p.type, p.name), ZERO) + p.amount
            all_payments += p.amount
            if p.type == "Bar":
                cash_payments += p.amount
                amount = p.amount if p.currency == base else (p.foreign_amount or ZERO)
                cash[p.currency] = cash.get(p.currency, ZERO) + amount
    return ClosingTotals(
        business_cases=tuple(
            BusinessCaseTotal(gv, name, agency, key, *cases[(gv, name, agency, key)])
            for gv, name, agency, key in sorted(cases, key=lambda k: (k[0], k[1], k[2] or 0, k[3]))
        ),
        payments=tuple((t, n, pays[(t, n)]) for t, n in sorted(pays)),
        cash_per_currency=tuple((c, cash[c]) for c in sorted(cash)),
        all_payments=all_payments,
        cash_payments=cash_payments,
    )


def validate_closing(closing: Closing) -> None:
    """Refuse a closing whose records contradict each other (FormatError
    ``E_DSFINVK_MODEL``): an export must never need a correction by the checker."""
    keys = {v.key for v in closing.vat_rates}
    tses = {t.tse_id for t in closing.tses}
    seen: set[str] = set()
    for receipt in closing.receipts:
        where = f"closing {closing.z_nr} receipt {receipt.bon_id}"
        if receipt.bon_id in seen:
            raise _fail(f"{where}: BON_ID used twice")
        seen.add(receipt.bon_id)
        if receipt.bon_typ not in BON_TYP:
            raise _fail(f"{where}: unknown BON_TYP {receipt.bon_typ!r}")
        if not receipt.lines:
            raise _fail(f"{where}: a receipt needs at least one line")
        positions: set[str] = set()
        for line in receipt.lines:
            if line.pos in positions:
                raise _fail(f"{where}: POS_ZEILE {line.pos} used twice")
            positions.add(line.pos)
            if line.gv_typ not in GV_TYP:
                raise _fail(f"{where} line {line.pos}: unknown GV_TYP {line.gv_typ!r}")
            if not line.vat:
                raise _fail(f"{where} line {line.pos}: no VAT amounts")
            for v in line.vat:
                if v.key not in keys:
                    raise _fail(f"{where} line {line.pos}: VAT key {v.key} not in the VAT table")
                if v.gross != v.net + v.vat:
                    raise _fail(f"{where} line {line.pos}: gross is not net + VAT")
        for p in receipt.payments:
            if p.type not in ZAHLART_TYP:
                raise _fail(f"{where}: unknown ZAHLART_TYP {p.type!r}")
        paid = sum((p.amount for p in receipt.payments), ZERO)
        if receipt.payments and paid != receipt.total:
            raise _fail(f"{where}: payments {paid} differ from the total {receipt.total}")
        if receipt.bon_typ in PAID_BON_TYPES and not receipt.payments and receipt.total != 0:
            raise _fail(f"{where}: a receipt with a total needs payments")
        if receipt.tse is not None and receipt.tse.tse_id not in tses:
            raise _fail(f"{where}: TSE_ID {receipt.tse.tse_id} not in the TSE table")
