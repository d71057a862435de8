"""The CSV dialect of DSFinV-K: write values exactly as index.xml declares them, and
read them back strictly (for the checker).

index.xml of DSFinV-K 2.4 declares for every table: ``<UTF8/>``, ``DecimalSymbol ,``,
``ColumnDelimiter ;``, ``RecordDelimiter &#xD;&#xA;``, ``TextEncapsulator "`` and the
data from row 2 (row 1 is the header). It declares ``DigitGroupingSymbol .`` as
well, but a grouping dot in a value would be read as a decimal place by tools that
ignore the declaration, and Anhang G's samples never group: we never write one and
the reader rejects it. Numbers are written with exactly the column's ``Accuracy``
(money 2, quantities 3, the per-VAT amounts 5); a value with more decimals than the
column allows is an error, never rounded. Booleans are ``0``/``1``; time stamps ISO
8601 with offset; quotes only where a field needs them, doubled inside.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import IO

from opentse.errors import FormatError
from opentse.formats.dsfinvk.tables import (
    BOOLEAN_COLUMNS,
    Column,
    ColumnType,
    Table,
)

#: what a DSFinV-K text field may not hold (E_CSV_CONTROL; the register refuses it
#: as E_TEXT_CONTROL): C0 control characters but TAB, LF and CR (the CSV's own), and DEL
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CONTROL_BYTES = re.compile(b"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def named_controls(value: str) -> str | None:
    """The control characters in ``value`` as a message names them, never raw
    (``U+001B, NUL (U+0000) and 2 more (first at character 4)``); None without any."""
    first = CONTROL.search(value)
    if first is None:
        return None
    chars = list(dict.fromkeys(CONTROL.findall(value)))
    listed = ", ".join("NUL (U+0000)" if c == "\x00" else f"U+{ord(c):04X}" for c in chars[:5])
    more = f" and {len(chars) - 5} more" if len(chars) > 5 else ""
    return f"{listed}{more} (first at character {first.start() + 1})"


DELIMITER = ";"
QUOTE = '"'
RECORD_END = "\r\n"
ENCODING = "utf-8"
DECIMAL_SYMBOL = ","

Value = str | int | Decimal | bool | datetime | date | None

_NUMBER = re.compile(r"-?[0-9]+(?:,([0-9]+))?")  # ASCII digits: \d matches "٣" too
_NEEDS_QUOTES = re.compile(r'[;"\r\n]')
_UNQUOTED = re.compile(r'[^;\r\n"]*')


def _err(code: str, table: Table | str, column: str, message: str) -> FormatError:
    file = table.file if isinstance(table, Table) else table
    return FormatError(f"{file} {column}: {message}", code=code)


def format_timestamp(value: datetime) -> str:
    """ISO 8601 with offset, seconds (milliseconds if the time has a fraction)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise FormatError("time stamp without time zone", code="E_DSFINVK_TIMEZONE")
    spec = "seconds" if value.microsecond == 0 else "milliseconds"
    return value.isoformat(timespec=spec)


def format_number(value: Decimal | int, accuracy: int) -> str:
    """Decimal comma, exactly ``accuracy`` places, no grouping; ValueError if the value
    has more significant decimals than that."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise TypeError(f"a number must be int or Decimal, not {type(value).__name__}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError("not a finite number")
    try:
        quantized = number.quantize(Decimal(1).scaleb(-accuracy))
    except InvalidOperation as exc:
        raise ValueError("number too large") from exc
    if quantized != number:
        raise ValueError(f"{number} has more than {accuracy} decimal places")
    if quantized == 0:
        quantized = abs(quantized)
    return f"{quantized:f}".replace(".", DECIMAL_SYMBOL)


def format_value(table: Table, column: Column, value: Value) -> str:
    """One field as it stands in the file (before quoting); FormatError naming the
    table and column when the value does not fit the declared type or length."""
    if value is None:
        return ""
    if type(value) is str and column.type is not ColumnType.NUMERIC:  # the common case
        if column.max_length is not None and len(value) > column.max_length:
            raise _err(
                "E_DSFINVK_LENGTH",
                table,
                column.name,
                f"{len(value)} characters, at most {column.max_length} allowed",
            )
        return value
    if column.type is ColumnType.NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise _err("E_DSFINVK_TYPE", table, column.name, "needs an int or Decimal")
        try:
            return format_number(value, column.accuracy)
        except ValueError as exc:
            raise _err(
                "E_DSFINVK_DECIMALS",
                table,
                column.name,
                f"{value} has more decimals than the {column.accuracy} allowed",
            ) from exc
    if isinstance(value, bool):
        if column.name not in BOOLEAN_COLUMNS.get(table.file, frozenset()):
            raise _err("E_DSFINVK_TYPE", table, column.name, "is not a boolean column")
        text = "1" if value else "0"
    elif isinstance(value, datetime):
        text = format_timestamp(value)
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise _err("E_DSFINVK_TYPE", table, column.name, f"cannot write {type(value).__name__}")
    if column.max_length is not None and len(text) > column.max_length:
        raise _err(
            "E_DSFINVK_LENGTH",
            table,
            column.name,
            f"{len(text)} characters, at most {column.max_length} allowed",
        )
    return text


def quote(field: str) -> str:
    """Enclose in quotes only when the field holds ; " CR or LF; double inner quotes."""
    if _NEEDS_QUOTES.search(field):
        return QUOTE + field.replace(QUOTE, QUOTE * 2) + QUOTE
    return field


def encode_record(fields: Iterable[str]) -> bytes:
    return (DELIMITER.join(quote(f) for f in fields) + RECORD_END).encode(ENCODING)


class CsvWriter:
    """Streams one table: the header row at once, then one record per ``write``."""

    def __init__(self, stream: IO[bytes], table: Table) -> None:
        self.stream = stream
        self.table = table
        self.rows = 0
        stream.write(encode_record(table.column_names))

    def write(self, row: Mapping[str, Value] | Sequence[Value]) -> None:
        """Write a row given as {column: value} (missing columns empty) or in order."""
        table = self.table
        if isinstance(row, Mapping):
            unknown = set(row) - set(table.column_names)
            if unknown:
                name = sorted(unknown)[0]
                raise _err("E_DSFINVK_COLUMN", table, name, "is not a column of this table")
            values: Sequence[Value] = [row.get(c.name) for c in table.columns]
        else:
            if len(row) != len(table.columns):
                raise _err(
                    "E_DSFINVK_COLUMN",
                    table,
                    "*",
                    f"{len(row)} values for {len(table.columns)} columns",
                )
            values = row
        fields = [format_value(table, c, v) for c, v in zip(table.columns, values, strict=True)]
        self.stream.write(encode_record(fields))
        self.rows += 1


# --- reading ---------------------------------------------------------------------------


def read_records(data: bytes, file: str = "csv") -> Iterator[tuple[int, list[str]]]:
    """Split a DSFinV-K CSV file into (line number, fields), strictly: UTF-8, records
    end in CR LF (a bare CR or LF outside quotes is an error), quotes only around a
    whole field with doubled quotes inside. FormatError ``E_CSV_DIALECT``."""
    try:
        text = data.decode(ENCODING)
    except UnicodeDecodeError as exc:
        raise FormatError(f"{file}: not UTF-8 ({exc.reason})", code="E_CSV_ENCODING") from exc
    if text.startswith("\ufeff"):
        raise FormatError(f"{file}: starts with a byte order mark", code="E_CSV_DIALECT")
    pos, line, n = 0, 1, len(text)
    while pos < n:
        end = text.find(RECORD_END, pos)
        quote_at = text.find(QUOTE, pos, end if end >= 0 else n)
        if end >= 0 and quote_at < 0:  # fast path: a record without quotes
            record = text[pos:end]
            if "\r" in record or "\n" in record:
                raise _dialect(file, line, "bare CR or LF (records end in CR LF)")
            yield line, record.split(DELIMITER)
            pos, line = end + 2, line + 1
            continue
        fields, pos, span = _quoted_record(text, pos, file, line)
        yield line, fields
        line += span


def _dialect(file: str, line: int, message: str) -> FormatError:
    return FormatError(f"{file} line {line}: {message}", code="E_CSV_DIALECT")


def _quoted_record(text: str, pos: int, file: str, line: int) -> tuple[list[str], int, int]:
    """Read one record that holds quotes; returns fields, next position, lines used."""
    n = len(text)
    fields: list[str] = []
    span = 1
    while True:
        if pos < n and text[pos] == QUOTE:
            end = pos + 1
            parts: list[str] = []
            while True:
                q = text.find(QUOTE, end)
                if q < 0:
                    raise _dialect(file, line, "unclosed quote")
                parts.append(text[end:q])
                if text.startswith(QUOTE * 2, q):
                    parts.append(QUOTE)
                    end = q + 2
                    continue
                pos = q + 1
                break
            value = "".join(parts)
            if pos < n and text[pos] not in (DELIMITER, "\r"):
                raise _dialect(file, line, "text after a closing quote")
            span += value.count("\n")
        else:
            m = _UNQUOTED.match(text, pos)
            assert m is not None
            value = m.group(0)
            pos = m.end()
            if pos < n and text[pos] == QUOTE:
                raise _dialect(file, line, "quote inside an unquoted field")
        fields.append(value)
        if pos >= n:
            raise _dialect(file, line, "last record not ended by CR LF")
        if text[pos] == DELIMITER:
            pos += 1
            continue
        if text.startswith(RECORD_END, pos):
            return fields, pos + 2, span
        raise _dialect(file, line, "bare CR or LF (records end in CR LF)")


def parse_number(text: str, accuracy: int) -> Decimal:
    """A Numeric field: optional minus, digits, decimal comma, at most ``accuracy``
    places; no grouping. FormatError E_CSV_GROUPING / E_CSV_DECIMALS / E_CSV_NUMBER.
    A column of accuracy 0 (TSE_TANR, TSE_TA_SIGZ, Z_NR ...) holds whole numbers: its
    messages say so, not "decimal comma", which such a column never has."""
    whole = accuracy == 0
    m = _NUMBER.fullmatch(text)
    if m is None:
        if "." in text:
            what = "a whole number has none" if whole else "grouping or decimal point"
            raise FormatError(f"{text!r} has a '.' ({what})", code="E_CSV_GROUPING")
        if whole:
            raise FormatError(f"{text!r} is not a whole number", code="E_CSV_NUMBER")
        raise FormatError(f"{text!r} is not a number with decimal comma", code="E_CSV_NUMBER")
    places = m.group(1)
    if places is not None and len(places) > accuracy:
        if whole:
            raise FormatError(
                f"{text!r} is not a whole number (no decimal places)", code="E_CSV_DECIMALS"
            )
        raise FormatError(
            f"{text!r} has more than {accuracy} decimal places", code="E_CSV_DECIMALS"
        )
    return Decimal(text.replace(DECIMAL_SYMBOL, "."))


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 with offset (``Z`` or ``+hh:mm``); FormatError E_CSV_TIMESTAMP."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise FormatError(
            f"{text!r} is not an ISO 8601 time stamp", code="E_CSV_TIMESTAMP"
        ) from exc
    if value.tzinfo is None or "T" not in text:
        raise FormatError(
            f"{text!r} has no offset (ISO 8601 with offset required)", code="E_CSV_TIMESTAMP"
        )
    return value


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise FormatError(f"{text!r} is not an ISO 8601 date", code="E_CSV_DATE") from exc
