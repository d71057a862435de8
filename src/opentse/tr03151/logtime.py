"""The three logTime formats of TR-03151; one is fixed for the life of a TSE."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum


class TimeFormat(str, Enum):
    """Value = the name used in the QR code and the fiskaly API; ``tar_prefix`` for names."""

    UNIX = "unixTime"
    UTC = "utcTime"
    GENERALIZED = "generalizedTime"

    @property
    def tar_prefix(self) -> str:
        return _TAR_PREFIXES[self]

    @classmethod
    def from_tar_prefix(cls, prefix: str) -> TimeFormat:
        table = {"unixt": cls.UNIX, "utc": cls.UTC, "gent": cls.GENERALIZED}
        try:
            return table[prefix.lower()]
        except KeyError:
            raise ValueError(f"unknown time prefix {prefix!r}") from None


_TAR_PREFIXES = {
    TimeFormat.UNIX: "Unixt",
    TimeFormat.UTC: "Utc",
    TimeFormat.GENERALIZED: "Gent",
}


@dataclass(slots=True, unsafe_hash=True)  # a value: never changed; not frozen (7x cheaper init)
class LogTime:
    """A log time: whole UTC seconds since the epoch plus the format it is written in.

    ``text`` keeps the literal UTCTime/GeneralizedTime string when a decoder read one
    (vendors may write fractions); the signature covers the bytes, never this object.
    """

    format: TimeFormat
    unix: int
    text: str | None = None

    def as_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.unix, tz=UTC)

    def tar_time(self) -> str:
        """The ``<time>`` part of a TAR file name as this format writes it."""
        if self.format is TimeFormat.UNIX:
            return str(self.unix)
        if self.text is not None:
            return self.text
        dt = self.as_datetime()
        if self.format is TimeFormat.UTC:
            return dt.strftime("%y%m%d%H%M%SZ")
        return dt.strftime("%Y%m%d%H%M%SZ")
