"""The shop's local calendar: business days and printed times in the shop's time zone.

Times are kept timezone-aware in UTC (the TSE logs UTC; the books and the journal
store UTC). What a German shop calls a day is its local one: the day a receipt belongs
to (the VAT rate in force, DSFinV-K Anlage 2), the business day of a closing
(Z_BUCHUNGSTAG), the days the books still have open and the outage journal's daily
record all follow the shop's zone -- a receipt at 00:30 in Berlin is on the new day,
although it is 23:30 or 22:30 UTC of the old one. Receipts and the Z report print
local time.

The zone comes from the IANA database through :mod:`zoneinfo`; the ``tzdata``
package is a dependency, so a machine without the system's zoneinfo files (a minimal
Debian image) still finds Europe/Berlin instead of quietly counting in UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from opentse.errors import ProtocolError

#: The zone of a German shop (CET/CEST).
DEFAULT_SHOP_TIMEZONE = "Europe/Berlin"


def shop_zone(name: str | None = None) -> ZoneInfo:
    """The IANA zone ``name`` (default Europe/Berlin), or ``E_TIMEZONE``."""
    key = name or DEFAULT_SHOP_TIMEZONE
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ProtocolError(f"unknown time zone {key!r}", code="E_TIMEZONE") from exc


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ProtocolError("a point in time must be timezone-aware", code="E_TIMEZONE")
    return at


def local_day(at: datetime, zone: tzinfo) -> date:
    """The shop's calendar day of an instant."""
    return _aware(at).astimezone(zone).date()


#: The latest hour a shop's business day may start at: a day starting later would
#: book a whole working afternoon on the day before.
LATEST_DAY_START = time(12, 0)


def parse_day_start(text: str) -> time:
    """``HH:MM`` (00:00 .. 12:00), the local time a shop's business day starts at (a bar
    open until 05:00 says 06:00), or ``E_DAY_START``."""
    try:
        hours, minutes = text.split(":")
        if len(hours) != 2 or len(minutes) != 2:
            raise ValueError(text)
        start = time(int(hours), int(minutes))
    except ValueError:
        raise ProtocolError(
            f"day start {text!r}: give the local time as HH:MM, e.g. 06:00",
            code="E_DAY_START",
        ) from None
    if start > LATEST_DAY_START:
        raise ProtocolError(
            f"day start {text}: at most {LATEST_DAY_START:%H:%M} (a later start would book "
            "the afternoon on the day before)",
            code="E_DAY_START",
        )
    return start


def business_day(at: datetime, zone: tzinfo, day_start: time | None = None) -> date:
    """The shop's business day of an instant: its local day, or the day before while
    the local time is earlier than ``day_start`` (a bar's 02:00 belongs to the
    evening before)."""
    local = _aware(at).astimezone(zone)
    if day_start is not None and local.time() < day_start:
        return local.date() - timedelta(days=1)
    return local.date()


def local_time(at: datetime, zone: tzinfo) -> datetime:
    """The same instant with the shop's offset (for printing and the export)."""
    return _aware(at).astimezone(zone)


def day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of a local day in UTC (23, 24 or 25 hours long)."""
    start = datetime.combine(day, time(), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


#: How receipts, the Z report and the journal print a point in time.
PRINTED_FORMAT = "%d.%m.%Y %H:%M:%S"


def local_text(at: datetime, zone: tzinfo, fmt: str = PRINTED_FORMAT) -> str:
    """``at`` in the shop's wall-clock time, as ``fmt``; in the hour the clocks go
    back (02:00-03:00 on the last Sunday of October in Berlin) the offset follows,
    "25.10.2026 02:30:00 (UTC+02:00)": that wall-clock time happens twice, and a
    receipt must name its one instant (KassenSichV §6 Nr. 2)."""
    local = local_time(at, zone)
    text = local.strftime(fmt)
    offset = local.utcoffset()
    if offset is None or local.replace(fold=1 - local.fold).utcoffset() == offset:
        return text
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{text} (UTC{sign}{hours:02d}:{rest:02d})"
