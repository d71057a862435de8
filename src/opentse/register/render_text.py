"""Plain-text receipts for 58 mm (32 columns) and 80 mm (48 columns) printers.

German labels as printed by common registers (fiskaly lists them for SIGN DE:
TSE-Transaktion, TSE-Start, TSE-Stop, TSE-Seriennummer, TSE-Zeitformat,
TSE-Hashalgorithmus, TSE-PublicKey). Amounts right-aligned, base64 values hard-wrapped.
TSE times are printed exactly as logged (UTC, as in the QR code); the issue date and
the register's own times in the shop's local time (shoptime.py).
"""

from __future__ import annotations

import base64
import re
import textwrap
from datetime import datetime, tzinfo
from decimal import Decimal

from opentse.formats.qr import format_qr_time
from opentse.register.money import format_money, format_quantity_de
from opentse.register.receipt import (
    BON_TYP_HEADINGS,
    NOT_CERTIFIED_TEXT,
    TSE_FAILED_TEXT,
    Receipt,
    TaxLine,
)
from opentse.register.render_qr import fits_qr
from opentse.register.shoptime import local_text, shop_zone

WIDTHS = (32, 48)
#: under the TSE block of a signed receipt whose QR text no QR code holds (fits_qr)
NO_QR_TEXT = "Kein QR-Code: TSE-Daten zu lang"
#: C0 controls and DEL; a TAB becomes a space (render_text's lines are plain text)
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


def _plain(line: str) -> str:
    """The line without control characters, each shown as '?'. A text booked before
    the register refused them (text.py) is printed with it: on ESC/POS an ESC in a line
    text is a printer command (ESC i cuts the paper mid-receipt), on a terminal an
    escape sequence. TAB is a space."""
    return _CONTROL.sub("?", line.replace("\t", " "))


def printed_qr(receipt: Receipt) -> str | None:
    """The QR text the receipt prints as a QR code: None while TSE failed, and None
    when no QR code holds it (a long order's Bestellung-V1 processData); the text then
    carries every TSE field, also on a QR-only receipt."""
    payload = receipt.qr_payload
    return payload if payload is not None and fits_qr(payload) else None


def default_timezone() -> tzinfo:
    """The default shop zone, Europe/Berlin (never a silent UTC: tzdata is a dependency)."""
    return shop_zone()


def format_percent(percent: Decimal) -> str:
    return f"{percent.normalize():f}".replace(".", ",") + " %"


class _Layout:
    def __init__(self, width: int) -> None:
        if width not in WIDTHS:
            raise ValueError(f"width must be one of {WIDTHS}")
        self.width = width
        self.lines: list[str] = []

    def add(self, text: str = "") -> None:
        self.lines.extend(textwrap.wrap(text, self.width) or [""])

    def center(self, text: str) -> None:
        for part in textwrap.wrap(text, self.width) or [""]:
            self.lines.append(part.center(self.width).rstrip())

    def rule(self, char: str = "-") -> None:
        self.lines.append(char * self.width)

    def pair(self, left: str, right: str) -> None:
        """``left`` and right-aligned ``right``; long left text wraps above."""
        room = self.width - len(right) - 1
        parts = textwrap.wrap(left, room) if room >= 8 else []
        if not parts:
            self.add(left)
            self.lines.append(right.rjust(self.width))
            return
        self.lines.extend(parts[:-1])
        self.lines.append(parts[-1].ljust(room) + " " + right)

    def field(self, label: str, value: str) -> None:
        """``Label: value`` on one line, or label then the value hard-wrapped."""
        line = f"{label}: {value}"
        if len(line) <= self.width:
            self.lines.append(line)
            return
        self.lines.append(f"{label}:")
        for start in range(0, len(value), self.width):
            self.lines.append(value[start : start + self.width])


def _local(value: datetime, tz: tzinfo) -> str:
    return local_text(value, tz)


def _tax_table(out: _Layout, taxes: tuple[TaxLine, ...]) -> None:
    """§6 Nr. 5 per rate: a table of 12-column amounts on 80 mm paper while every
    amount leaves a blank before it (up to 9.999.999,99); else a block per rate, as on
    58 mm: '12.345.670,00' and its neighbours ran together into one number."""
    amounts = [format_money(v) for tax in taxes for v in (tax.net, tax.tax, tax.gross)]
    if out.width >= 48 and all(len(amount) < 12 for amount in amounts):
        out.lines.append(f"{'MwSt':<12}{'Netto':>12}{'Steuer':>12}{'Brutto':>12}")
        for tax in taxes:
            label = f"{tax.letter} {format_percent(tax.percent)}"
            out.lines.append(
                f"{label:<12}{format_money(tax.net):>12}"
                f"{format_money(tax.tax):>12}{format_money(tax.gross):>12}"
            )
            if tax.exemption_note:
                out.add(f"  {tax.letter}: {tax.exemption_note}")
        return
    for tax in taxes:
        out.lines.append(f"{tax.letter} = MwSt {format_percent(tax.percent)}")
        out.pair("  Netto", format_money(tax.net))
        out.pair("  Steuer", format_money(tax.tax))
        out.pair("  Brutto", format_money(tax.gross))
        if tax.exemption_note:
            out.add(f"  {tax.exemption_note}")


def tse_fields(receipt: Receipt) -> list[tuple[str, str]]:
    """(label, value) of the §6 TSE block, in print order; empty while TSE failed."""
    tse = receipt.tse
    if tse is None:
        return []
    fields = [
        ("TSE-Transaktion", str(tse.transaction_number)),
        ("TSE-Signaturzähler", str(tse.signature_counter)),
        ("TSE-Start", format_qr_time(tse.start_time)),
        ("TSE-Stop", format_qr_time(tse.end_time)),
    ]
    if receipt.first_order_start is not None:
        fields.append(("TSE-Erstbestellung", format_qr_time(receipt.first_order_start)))
    fields += [
        ("TSE-Seriennummer", tse.serial_number),
        ("TSE-Zeitformat", tse.time_format),
        ("TSE-Hashalgorithmus", tse.signature_algorithm),
        ("TSE-Signatur", _b64(tse.signature)),
        ("TSE-PublicKey", _b64(tse.public_key)),
    ]
    return fields


def _first_order(out: _Layout, receipt: Receipt) -> None:
    """TSE-Erstbestellung stays on a QR-only bill and on one the TSE did not sign: the
    QR code of DSFinV-K Anhang I has no field for the first order's start (DSFinV-K
    2.7, the relief for tills that sign orders), so it is printed or it is nowhere.
    It is the order's TSE time, printed as logged (UTC), as TSE-Start."""
    if receipt.first_order_start is not None:
        out.field("TSE-Erstbestellung", format_qr_time(receipt.first_order_start))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def render_text(receipt: Receipt, width: int = 48, tz: tzinfo | None = None) -> str:
    """The receipt as plain text lines (``\\n``-separated, no trailing spaces)."""
    zone = tz or default_timezone()
    out = _Layout(width)
    out.center(receipt.seller.name)
    for line in receipt.seller.address_lines:
        out.center(line)
    if receipt.seller.tax_id:
        out.center(receipt.seller.tax_id)
    out.rule()
    if receipt.bon_typ in BON_TYP_HEADINGS:
        out.center(BON_TYP_HEADINGS[receipt.bon_typ])
    if receipt.tse_failed:
        out.center(f"*** {TSE_FAILED_TEXT} ***")
    if receipt.receipt_number:
        out.field("Beleg-Nr.", receipt.receipt_number)
    if receipt.refers_to:  # which receipt a cancellation takes back
        label = "Storno zu Beleg-Nr." if receipt.bon_typ == "AVBelegstorno" else "Zu Beleg-Nr."
        out.field(label, ", ".join(receipt.refers_to))
    out.field("Datum", _local(receipt.issued_at, zone))
    out.rule()
    for item in receipt.lines:
        out.pair(item.text, f"{format_money(item.gross)} {item.letter}")
        if item.quantity != 1:
            out.add(f"  {format_quantity_de(item.quantity)} x {format_money(item.unit_price)}")
    out.rule()
    out.pair(f"SUMME {receipt.currency}", format_money(receipt.total))
    for payment in receipt.payments:
        suffix = "" if payment.currency == receipt.currency else f" {payment.currency}"
        out.pair(payment.label + suffix, format_money(payment.amount))
    if receipt.change:
        out.pair("Rückgeld", format_money(receipt.change))
    out.rule()
    _tax_table(out, receipt.taxes)
    out.rule()
    out.field("Kassen-Seriennummer", receipt.register_serial)
    if receipt.tse_failed:
        out.add(TSE_FAILED_TEXT)
        out.field("Vorgangsbeginn", _local(receipt.started_at, zone))
        out.field("Vorgangsende", _local(receipt.ended_at, zone))
        _first_order(out, receipt)
        if receipt.tse_serial_number:
            out.field("TSE-Seriennummer", receipt.tse_serial_number)
    elif receipt.qr_only and printed_qr(receipt) is not None:
        out.add("TSE-Daten im QR-Code")
        _first_order(out, receipt)
    else:
        for label, value in tse_fields(receipt):
            out.field(label, value)
        if printed_qr(receipt) is None:
            out.add(NO_QR_TEXT)
    if receipt.not_certified:
        out.add(NOT_CERTIFIED_TEXT)
    if receipt.footer:
        out.rule()
        for line in receipt.footer:
            out.center(line)
    return "\n".join(_plain(line.rstrip()) for line in out.lines)
