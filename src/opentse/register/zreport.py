"""The Z report (Kassenabschluss) of a closed business day: text, PDF and JSON.

DSFinV-K 2.4 chapter 5: the closing's totals come from the single records -- by
business case (GV_TYP and VAT key), by VAT key and by payment type -- and the cash
counted at the end of the day must reconcile with them. The books close a day like
this (``pos close``):

- Soll (expected cash) = the float the day started with (the cash counted at the
  previous closing) + the cash payments of the day's receipts that count (model.
  CLOSING_BON_TYPES: sales, invoices, cancellations; Einzahlung/Auszahlung and other
  cash-book entries are cash payments too);
- Ist = the counted cash; a difference is booked and signed as its own Vorgang of
  GV_TYP ``DifferenzSollIst`` before the closing, so the exported cash total
  (Z_SE_BARZAHLUNGEN) is exactly Ist - float.

:func:`close_day` does this over a Register and its books; everything else here is
pure (builds from a :class:`~opentse.register.books_closing.ClosedDay`, renders).
"""

from __future__ import annotations

import dataclasses
import io
import textwrap
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from opentse.errors import FormatError, ProtocolError
from opentse.formats.dsfinvk import tables
from opentse.formats.dsfinvk.export import write_table
from opentse.formats.dsfinvk.model import (
    CLOSING_BON_TYPES,
    ZERO,
    BusinessCaseTotal,
    Closing,
    closing_totals,
)
from opentse.register.books import Books, MasterData
from opentse.register.books_closing import ClosedDay
from opentse.register.money import format_money, require_cents
from opentse.register.recovery_books import printed_as_failure
from opentse.register.sale import CashBookEntry
from opentse.register.shoptime import local_text, shop_zone
from opentse.register.text import check_texts

if TYPE_CHECKING:
    from opentse.register.register import Register

DIFFERENCE_GV_TYP = "DifferenzSollIst"


@dataclass(frozen=True)
class VatKeyTotal:
    key: int
    rate: Decimal
    gross: Decimal
    net: Decimal
    vat: Decimal


@dataclass(frozen=True)
class ZReport:
    """Everything the printed Z report says (all money ``Decimal`` in EUR)."""

    z_kasse_id: str
    z_nr: int
    created: datetime
    business_day: str
    company: str
    first_bon_id: str
    last_bon_id: str
    receipts: int
    receipts_by_type: tuple[tuple[str, int, Decimal], ...]  # (BON_TYP, count, gross)
    tse_failures: int
    business_cases: tuple[BusinessCaseTotal, ...]
    vat: tuple[VatKeyTotal, ...]
    payments: tuple[tuple[str, str, Decimal], ...]
    cash_per_currency: tuple[tuple[str, Decimal], ...]
    total: Decimal
    cash_payments: Decimal
    opening_cash: Decimal
    expected_cash: Decimal
    counted_cash: Decimal | None
    difference: Decimal

    def to_json(self) -> dict[str, Any]:
        """The shape ``pos close --json`` prints (amounts as strings)."""
        return {
            "z_kasse_id": self.z_kasse_id,
            "z_nr": self.z_nr,
            "created": self.created.isoformat(),
            "business_day": self.business_day,
            "first_bon_id": self.first_bon_id,
            "last_bon_id": self.last_bon_id,
            "receipts": self.receipts,
            "receipts_by_type": [
                {"bon_typ": t, "count": n, "gross": str(g)} for t, n, g in self.receipts_by_type
            ],
            "tse_failures": self.tse_failures,
            "business_cases": [
                {
                    "gv_typ": b.gv_typ,
                    "gv_name": b.gv_name,
                    "vat_key": b.key,
                    "gross": str(b.gross),
                    "net": str(b.net),
                    "vat": str(b.vat),
                }
                for b in self.business_cases
            ],
            "vat": [
                {
                    "vat_key": v.key,
                    "rate": str(v.rate),
                    "gross": str(v.gross),
                    "net": str(v.net),
                    "vat": str(v.vat),
                }
                for v in self.vat
            ],
            "payments": [
                {"zahlart_typ": t, "zahlart_name": n, "amount": str(a)} for t, n, a in self.payments
            ],
            "cash_per_currency": [
                {"currency": c, "amount": str(a)} for c, a in self.cash_per_currency
            ],
            "total": str(self.total),
            "cash_payments": str(self.cash_payments),
            "opening_cash": str(self.opening_cash),
            "expected_cash": str(self.expected_cash),
            "counted_cash": None if self.counted_cash is None else str(self.counted_cash),
            "difference": str(self.difference),
        }


def close_day(
    register: Register,
    books: Books,
    master: MasterData,
    counted_cash: Decimal | str,
    *,
    created: datetime | None = None,
    business_day: date | None = None,
) -> ClosedDay:
    """Kassenabschluss with the counted cash: recovery first (what the TSE signed for
    the till is booked before the day closes), book the difference to the expected cash
    as a signed DifferenzSollIst Vorgang (a TSE failure still books it, marked), then
    close every open receipt (Z_NR + 1). ``E_AMOUNT_PRECISION`` for more than cents.
    ``business_day`` (Z_BUCHUNGSTAG) defaults to the shop's day of the closing, the day
    before while earlier than the day start the books keep (``Books.set_day_start``);
    a shop closing after midnight names the evening's day (``E_BUSINESS_DAY`` outside
    the days of its receipts)."""
    counted = require_cents(counted_cash, "counted cash")
    check_master_texts(master)  # E_TEXT_CONTROL before anything is signed or closed
    # the register's clock, as every receipt of the day: a till on an injected (or
    # corrected) clock had its closings stamped with the host's wall clock
    created = created or register.clock()
    if business_day is None and books.day_start() is not None:
        business_day = books.business_day(created)
    if business_day is not None:  # before the difference is booked and signed
        books.check_business_day(business_day, created)
    # what the TSE signed or holds open for this till goes into the books first (a
    # late signature, a sale whose books commit was lost, recovery's aborts): a
    # closed day is never changed again (recovery_books.py); a TSE that cannot be
    # reached leaves it to the next recovery, as before
    register.recover()
    z_kasse_id = register.config.client_id
    opening = books.last_counted_cash()
    preview = books.preview(z_kasse_id=z_kasse_id, master=master)
    check_master_exportable(preview)  # before the difference is booked and signed
    expected = opening + closing_totals(preview).cash_payments
    if counted != expected:
        register.book(CashBookEntry(DIFFERENCE_GV_TYP, counted - expected, "Kassendifferenz"))
    closing = books.close(
        z_kasse_id=z_kasse_id,
        company=master.company,
        location=master.location,
        register=master.register,
        created=created,
        counted_cash=counted,
        opening_cash=opening,
        business_day=business_day,
    )
    books.set_master(master)
    return books.closed_day(closing.z_nr)


#: the closing's master-data tables (DSFinV-K 4, Stammdatenmodul)
MASTER_TABLES = (tables.CASHPOINTCLOSING, tables.LOCATION, tables.CASHREGISTER)


def check_master_texts(master: MasterData) -> None:
    """Company, location and register texts are plain text (register/text.py): they
    go into every export of the closing (cashpointclosing.csv, location.csv ...)."""
    for part, label in (
        (master.company, "company"),
        (master.location, "location"),
        (master.register, "register"),
    ):
        check_texts(
            (f"{label} {f.name.replace('_', ' ')}", value)
            for f in dataclasses.fields(part)
            if isinstance(value := getattr(part, f.name), str)
        )


def check_master_exportable(preview: Closing) -> None:
    """The closing's master data (company, location, register) fit the DSFinV-K
    master-data tables, before anything is signed or closed. A company name longer
    than cashpointclosing.csv's 60 characters made a closing that every export then
    refused for good (E_DSFINVK_LENGTH), while the message said an export would write
    it again."""
    for table in MASTER_TABLES:
        try:
            write_table(io.BytesIO(), table, [preview])
        except FormatError as exc:
            raise ProtocolError(
                f"the closing's master data cannot be written to DSFinV-K: {exc.message}."
                " Nothing was closed",
                code=exc.code,
            ) from None


def build_zreport(day: ClosedDay) -> ZReport:
    """The Z report of a closed day (totals exactly as the export's closing tables)."""
    closing = day.closing
    totals = closing_totals(closing)
    rates = {v.key: v.rate for v in closing.vat_rates}
    by_key: dict[int, tuple[Decimal, Decimal, Decimal]] = {}
    difference = ZERO
    for b in totals.business_cases:
        g, n, t = by_key.get(b.key, (ZERO, ZERO, ZERO))
        by_key[b.key] = (g + b.gross, n + b.net, t + b.vat)
        if b.gv_typ == DIFFERENCE_GV_TYP:
            difference += b.gross
    kinds: dict[str, tuple[int, Decimal]] = {}
    for r in closing.receipts:
        count, gross = kinds.get(r.bon_typ, (0, ZERO))
        kinds[r.bon_typ] = (count + 1, gross + r.total)
    receipts = closing.receipts
    return ZReport(
        z_kasse_id=closing.z_kasse_id,
        z_nr=closing.z_nr,
        created=closing.created,
        business_day="" if closing.business_day is None else closing.business_day.isoformat(),
        company=closing.company.name,
        first_bon_id=receipts[0].bon_id if receipts else "",
        last_bon_id=receipts[-1].bon_id if receipts else "",
        receipts=len(receipts),
        receipts_by_type=tuple((t, *kinds[t]) for t in sorted(kinds)),
        tse_failures=sum(
            1 for r in receipts if r.tse is None or printed_as_failure(r.tse.signature, r.tse.error)
        ),
        business_cases=totals.business_cases,
        vat=tuple(VatKeyTotal(k, rates.get(k, ZERO), *by_key[k]) for k in sorted(by_key)),
        payments=totals.payments,
        cash_per_currency=totals.cash_per_currency,
        total=totals.all_payments,
        cash_payments=totals.cash_payments,
        opening_cash=day.opening_cash,
        expected_cash=day.opening_cash + totals.cash_payments - difference,
        counted_cash=day.counted_cash,
        difference=difference,
    )


def render_text(report: ZReport, *, width: int = 48, tz: tzinfo | None = None) -> str:
    """The Z report as fixed-width text (German labels, German money notation); its
    time in the shop's zone ``tz`` (default Europe/Berlin), as the receipts print it."""

    def row(label: str, amount: Decimal | None) -> str:
        value = "-" if amount is None else format_money(amount)
        return f"{label[: width - len(value) - 1]:<{width - len(value)}}{value}"

    created = local_text(report.created, tz or shop_zone())
    rule = "-" * width
    out = [
        f"Z-BON / KASSENABSCHLUSS Nr. {report.z_nr}".center(width),
        *(part.center(width) for part in textwrap.wrap(report.company, width) or [""]),
        rule,
        *_field("Kasse:        ", report.z_kasse_id, width),
        f"Geschäftstag: {report.business_day}",
        f"Erstellt:     {created}",
        f"Vorgänge:     {report.receipts}",
        f"TSE-Ausfall:  {report.tse_failures}",
        rule,
        "Vorgänge nach Art",
    ]
    counted = CLOSING_BON_TYPES
    for typ, count, gross in report.receipts_by_type:
        mark = "" if typ in counted else " (zählt nicht)"
        out.append(row(f"  {typ} x{count}{mark}", gross))
    out += [rule, "Geschäftsvorfälle (GV_TYP [USt-Schlüssel])"]
    for b in report.business_cases:
        out.append(row(f"  {b.gv_typ} {b.gv_name} [{b.key}]".replace("  [", " ["), b.gross))
    out += [rule, "Umsatzsteuer je Schlüssel (brutto, netto, USt)"]
    for v in report.vat:
        out.append(row(f"  {v.key} {_percent(v.rate)} % brutto", v.gross))
        out.append(row("      netto", v.net))
        out.append(row("      USt", v.vat))
    out += [rule, "Zahlarten"]
    for typ, name, amount in report.payments:
        out.append(row(f"  {typ} {name}".rstrip(), amount))
    for currency, amount in report.cash_per_currency:
        out.append(row(f"  Bar in {currency}", amount))
    out += [
        rule,
        row("SUMME Zahlungen", report.total),
        row("davon bar", report.cash_payments),
        rule,
        row("Anfangsbestand", report.opening_cash),
        row("Kassenbestand SOLL", report.expected_cash),
        row("Kassenbestand IST (gezählt)", report.counted_cash),
        row("Differenz (DifferenzSollIst)", report.difference),
        rule,
    ]
    return "\n".join(line[:width] for line in out) + "\n"


def render_pdf(report: ZReport, *, tz: tzinfo | None = None) -> bytes:
    """The text Z report on an A4 page in Courier (fpdf2 core font, latin-1)."""
    lines = render_text(report, width=64, tz=tz).split("\n")
    from fpdf import FPDF  # here: fpdf2 and fontTools cost ~0.4 s to import

    pdf = FPDF(unit="mm", format="A4")
    pdf.set_creator("opentse")
    pdf.set_title(f"Kassenabschluss {report.z_nr}")
    pdf.set_auto_page_break(True, margin=12)
    pdf.add_page()
    pdf.set_font("Courier", size=9)
    for line in lines:
        pdf.cell(0, 4.2, line.encode("latin-1", errors="replace").decode("latin-1"))
        pdf.ln(4.2)
    return bytes(pdf.output())


def _field(label: str, value: str, width: int) -> list[str]:
    """``label value`` on one line, or the label and then the value hard-wrapped (a
    register serial is up to 100 characters and is never cut)."""
    if len(label) + len(value) <= width:
        return [label + value]
    return [label.rstrip(), *(value[i : i + width] for i in range(0, len(value), width))]


def _percent(rate: Decimal) -> str:
    """19, 7, 5,5 (German notation, no trailing zeros)."""
    text = f"{rate.normalize():f}" if rate else "0"
    return text.replace(".", ",")
