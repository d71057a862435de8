"""The receipt (Beleg) with every field KassenSichV §6 asks for.

§6 Satz 1 (as worded since 2024): 1. full name and address of the seller; 2. date of
issue, time the transaction started and time it ended; 3. quantity and kind of the
items; 4. the transaction number; 5. the amount and the tax on it per rate (or a note
that the sale is exempt); 6. serial number of the register and of the security module;
7. the signature (Prüfwert) and the signature counter. Satz 2: these must be readable
without a machine *or* from the QR code of DSFinV-K Anhang I -- ``qr_only`` prints the
TSE fields only as QR code.

A receipt made while the TSE was down says "TSE ausgefallen" and has no transaction
number (AEAO zu §146a, Nr. 7.2); its times are the register's own. A receipt signed by
opentse, which is not BSI-certified, says so on a line of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal

from opentse.errors import ProtocolError
from opentse.formats.qr import build_qr_payload
from opentse.register.money import ZERO, vat_rate
from opentse.register.sale import PAYMENT_METHODS, Sale
from opentse.register.shoptime import local_day, shop_zone

NOT_CERTIFIED_TEXT = "Keine zertifizierte TSE (opentse)"
TSE_FAILED_TEXT = "TSE ausgefallen"

#: Receipt headings for BON_TYP values other than a plain sale.
BON_TYP_HEADINGS: dict[str, str] = {
    "AVTraining": "TRAININGSBELEG - KEIN VERKAUF",
    "AVBelegstorno": "STORNO",
    "AVBelegabbruch": "BELEGABBRUCH",
    "AVBestellung": "BESTELLUNG",
    "AVTransfer": "TRANSFER",
    "AVSachbezug": "SACHBEZUG",
    "AVRechnung": "RECHNUNG",
    "AVSonstige": "SONSTIGER VORGANG",
}

#: Payment labels printed for the register's payment methods.
PAYMENT_LABELS: dict[str, str] = {
    "cash": "Bar",
    "card": "EC-Karte",
    "credit_card": "Kreditkarte",
    "online": "Online-Zahlung",
    "voucher": "Gutschein",
    "other": "Unbar",
}


def _reject(message: str) -> ProtocolError:
    return ProtocolError(message, code="E_RECEIPT")


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None:
        raise _reject(f"{what} must be timezone-aware")
    return value


@dataclass(frozen=True)
class Seller:
    """§6 Nr. 1: full name and full address; optional VAT id or tax number."""

    name: str
    address_lines: tuple[str, ...]
    tax_id: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip() or not any(line.strip() for line in self.address_lines):
            raise _reject("the seller's full name and address are required (§6 Nr. 1)")


@dataclass(frozen=True)
class ReceiptLine:
    """§6 Nr. 3: quantity and kind of one item, with its price."""

    text: str
    quantity: Decimal
    unit_price: Decimal
    gross: Decimal
    vat_key: int

    @property
    def letter(self) -> str:
        return vat_rate(self.vat_key).letter


@dataclass(frozen=True)
class TaxLine:
    """§6 Nr. 5: net amount and tax for one rate (exemptions name themselves)."""

    vat_key: int
    percent: Decimal
    net: Decimal
    tax: Decimal
    gross: Decimal

    @property
    def letter(self) -> str:
        return vat_rate(self.vat_key).letter

    @property
    def exemption_note(self) -> str:
        """Text for 0 % keys (the §6 Nr. 5 "Hinweis"); empty for taxed rates."""
        rate = vat_rate(self.vat_key)
        return rate.description if rate.percent == 0 else ""


@dataclass(frozen=True)
class ReceiptPayment:
    label: str
    amount: Decimal
    currency: str = "EUR"


@dataclass(frozen=True)
class TseSignature:
    """What the TSE returned for the Finish of the transaction (§6 Nr. 2, 4, 6, 7)."""

    transaction_number: int
    signature_counter: int
    start_time: datetime
    end_time: datetime
    signature: bytes
    public_key: bytes
    serial_number: str
    signature_algorithm: str
    time_format: str
    client_id: str
    process_type: str
    process_data: str

    def __post_init__(self) -> None:
        _aware(self.start_time, "TSE start time")
        _aware(self.end_time, "TSE end time")

    def qr_payload(self) -> str:
        """The DSFinV-K Anhang I QR text (formats.qr builds and checks it)."""
        return build_qr_payload(
            client_id=self.client_id,
            process_type=self.process_type,
            process_data=self.process_data,
            transaction_number=self.transaction_number,
            signature_counter=self.signature_counter,
            start_time=self.start_time,
            log_time=self.end_time,
            signature_algorithm=self.signature_algorithm,
            time_format=self.time_format,
            signature=self.signature,
            public_key=self.public_key,
        )


@dataclass(frozen=True)
class Receipt:
    """Everything a printed or electronic receipt shows; renderers only lay it out."""

    seller: Seller
    register_serial: str
    issued_at: datetime
    lines: tuple[ReceiptLine, ...]
    taxes: tuple[TaxLine, ...]
    total: Decimal
    payments: tuple[ReceiptPayment, ...] = ()
    change: Decimal = ZERO
    bon_typ: str = "Beleg"
    receipt_number: str = ""
    tse: TseSignature | None = None
    tse_serial: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None
    tse_failed: bool = False
    not_certified: bool = False
    qr_only: bool = False
    currency: str = "EUR"
    footer: tuple[str, ...] = ()
    #: the receipt numbers this one points at (a cancellation's original)
    refers_to: tuple[str, ...] = ()
    #: the TSE start of this bill's first order (Bestellung-V1), printed as
    #: TSE-Erstbestellung (DSFinV-K 2.7): the receipt's own field, as a bill paid in
    #: an outage has no TSE data to carry it while its orders were signed
    first_order_start: datetime | None = None

    def __post_init__(self) -> None:
        _aware(self.issued_at, "issue date")
        if not self.register_serial:
            raise _reject("the register's serial number is required (§6 Nr. 6)")
        if self.tse_failed and self.tse is not None:
            raise _reject("a receipt cannot be both signed and marked 'TSE ausgefallen'")
        if not self.tse_failed and self.tse is None:
            raise _reject("an unsigned receipt must be marked tse_failed")
        if self.tse_failed and (self.start_time is None or self.end_time is None):
            raise _reject("without TSE the register's own start and end times are required")
        times = (
            (self.start_time, "start time"),
            (self.end_time, "end time"),
            (self.first_order_start, "first order's start"),
        )
        for value, what in times:
            if value is not None:
                _aware(value, what)
        if self.tse_failed and self.qr_only:
            raise _reject("a receipt without TSE data has no QR code to rely on")

    @property
    def training(self) -> bool:
        return self.bon_typ == "AVTraining"

    @property
    def transaction_number(self) -> int | None:
        return None if self.tse is None else self.tse.transaction_number

    @property
    def tse_serial_number(self) -> str:
        return self.tse.serial_number if self.tse is not None else self.tse_serial

    @property
    def started_at(self) -> datetime:
        if self.tse is not None:
            return self.tse.start_time
        assert self.start_time is not None  # guaranteed by __post_init__
        return self.start_time

    @property
    def ended_at(self) -> datetime:
        if self.tse is not None:
            return self.tse.end_time
        assert self.end_time is not None
        return self.end_time

    @property
    def qr_payload(self) -> str | None:
        return None if self.tse is None else self.tse.qr_payload()

    @classmethod
    def from_sale(
        cls,
        sale: Sale,
        *,
        seller: Seller,
        register_serial: str,
        issued_at: datetime,
        tse: TseSignature | None = None,
        tse_serial: str = "",
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        not_certified: bool = False,
        qr_only: bool = False,
        receipt_number: str = "",
        footer: tuple[str, ...] = (),
        zone: tzinfo | None = None,
        refers_to: tuple[str, ...] = (),
        first_order_start: datetime | None = None,
    ) -> Receipt:
        """Lay a booked sale out as a receipt; without ``tse`` it is a TSE-failed one.

        Net and tax per rate (§6 Nr. 5) at the rates in force on the receipt's day: the
        shop's local day (``zone``, default Europe/Berlin) of the transaction's end, the
        day the books and the DSFinV-K export take, so all three agree to the cent."""
        ended = tse.end_time if tse is not None else (end_time or issued_at)
        totals = sale.totals_by_vat_key(local_day(_aware(ended, "end time"), zone or shop_zone()))
        payments = tuple(
            ReceiptPayment(
                p.name or PAYMENT_LABELS.get(p.method, PAYMENT_METHODS[p.method]),
                p.amount,
                p.currency,
            )
            for p in sale.payments
        )
        return cls(
            seller=seller,
            register_serial=register_serial,
            issued_at=issued_at,
            lines=tuple(
                ReceiptLine(line.text, line.quantity, line.unit_price, line.gross, line.vat_key)
                for line in sale.lines
            ),
            taxes=tuple(
                TaxLine(key, t.rate.percent, t.net, t.tax, t.gross) for key, t in totals.items()
            ),
            total=sale.total,
            payments=payments,
            change=sale.change,
            bon_typ=sale.bon_typ,
            receipt_number=receipt_number,
            tse=tse,
            tse_serial=tse_serial,
            start_time=start_time,
            end_time=end_time,
            tse_failed=tse is None,
            not_certified=not_certified,
            qr_only=qr_only,
            footer=footer,
            refers_to=refers_to,
            first_order_start=first_order_start,
        )
