"""What a shop owner types into the search and export forms: a day (the shop's local
day, as typed in Germany or as the date field sends it) and an amount (German or
English separators, a currency, a sign or none). A field that cannot be read is a
ValueError, which the form reports on that field: never a guess, never a 500.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from decimal import Decimal

from opentse.dashboard.pages import shop_zone_of_env
from opentse.register.shoptime import day_bounds

DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y")  # the date field's; as a German types it
#: ``22.11.26`` as a German types it, too: the year 2026 (strptime's %Y read it as the
#: year 26, which the search refused as "invalid date")
_SHORT_YEAR = re.compile(r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{2}")


def parse_date(text: str, *, end: bool = False, zone: tzinfo | None = None) -> int | None:
    """A shop-local day (``zone``, default the dashboard's), ``YYYY-MM-DD`` as the date
    field sends it or ``DD.MM.YYYY`` / ``DD.MM.YY`` (20YY) as typed where there is no
    date picker, as unix
    seconds: its start, or for ``end`` the start of the day after (a local day is 23,
    24 or 25 hours long). ValueError for no such day."""
    if not text:
        return None
    forms = ("%d.%m.%y",) if _SHORT_YEAR.fullmatch(text) else DATE_FORMATS
    for form in forms:
        try:
            day = datetime.strptime(text, form).date()
            break
        except ValueError:
            continue
    else:
        raise ValueError(text)
    if not 1970 <= day.year <= 9998:  # a TSE log time is unix time; the day after exists
        raise ValueError(text)
    start, after = day_bounds(day, zone or shop_zone_of_env())
    return int((after if end else start).timestamp())


MAX_AMOUNT = Decimal(10) ** 15  # larger amounts match no receipt (and 1e999999 cannot round)
_CURRENCY = re.compile(r"^(?:€|EUR)\s*|\s*(?:€|EUR)$", re.IGNORECASE)
_GROUPED = re.compile(r"[1-9][0-9]{0,2}(?:[.,][0-9]{3})+")  # 1.234.567 or 1,234,567


def _amount_body(text: str) -> str:
    """The amount as typed without currency and spaces."""
    body = _CURRENCY.sub("", text.strip().replace("\u00a0", " ").replace("\u202f", " "))
    return body.replace(" ", "")


def has_sign(text: str) -> bool:
    """The amount was typed with a sign (``-12,30``, ``+5``), not just ``12,30``."""
    return _amount_body(text)[:1] in ("+", "-")


def parse_amount(text: str) -> Decimal | None:
    """An amount as a shop owner types it: ``21,42``, ``21.42``, ``-3,00``, ``50,-``,
    ``50 €``, ``EUR 50``, ``1.234,50`` or ``1,234.50`` (a separator before exactly
    three digits groups thousands: ``1.234`` is 1234,00). ValueError for anything
    else, also for more than two decimals (``21,4256``): rounding found receipts of
    other amounts."""
    if not text:
        return None
    body = _amount_body(text)
    sign = ""
    if body[:1] in ("+", "-"):
        sign, body = body[:1], body[1:]
    if body.endswith((",-", ".-")):
        body = body[:-2]
    whole, cents = body, ""
    last = max(body.rfind(","), body.rfind("."))
    if last >= 0 and len(body) - last - 1 in (1, 2):  # the decimal separator
        whole, cents = body[:last], body[last + 1 :]
        if not ascii_digits(cents):
            raise ValueError(text)
    if not ascii_digits(whole):
        if not _GROUPED.fullmatch(whole) or len(set(re.sub(r"[0-9]", "", whole))) != 1:
            raise ValueError(text)
        if cents and whole[-4] == body[last]:  # one separator for groups and cents
            raise ValueError(text)
        whole = re.sub(r"[^0-9]", "", whole)
    value = Decimal(f"{sign}{whole}.{cents or '0'}")
    if abs(value) >= MAX_AMOUNT:
        raise ValueError(text)  # also keeps quantize below the context's precision
    return value.quantize(Decimal("0.01"))


def ascii_digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes '²' or '١', which Decimal() and
    int() refuse (a 500 where the search should say it could not read the amount)."""
    return text.isascii() and text.isdigit()
