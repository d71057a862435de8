"""Check a DSFinV-K export the way an auditor's tool reads it.

``check_export(path)`` reads index.xml, checks every CSV file against it (header,
dialect, types, lengths, decimal comma, no grouping, value lists), then the rules
across files: keys unique and referenced keys present; every receipt has lines,
VAT amounts and (where it must) payments; lines = receipt totals = closing totals;
VAT rates valid for key and date; and every TSE signature verifies against tse.csv
with processData REBUILT from the CSV rows (Kassenbeleg-V1 from transactions,
transactions_vat and datapayment; Bestellung-V1 from lines), with the Finish log's
signed bytes built as the receipt verification of DSFinV-K Anhang I describes
(serial = SHA-256 of the public key, algorithm OID, counter, log time).
Nothing raises for bad content: everything becomes a Finding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import lzma
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from opentse.errors import FormatError, OpenTSEError
from opentse.formats import processdata as pd
from opentse.formats.dsfinvk import tables as T
from opentse.formats.dsfinvk.csvwriter import (
    parse_date,
    parse_number,
    parse_timestamp,
    read_records,
)
from opentse.formats.dsfinvk.export import gdpdu_dtd
from opentse.formats.dsfinvk.indexxml import (
    DECIMAL_SYMBOL,
    DTD_NAME,
    INDEX_NAME,
    read_index_xml,
)
from opentse.formats.dsfinvk.model import CLOSING_BON_TYPES, PAID_BON_TYPES
from opentse.formats.dsfinvk.tables import ColumnType, Table
from opentse.tr03151 import der, oids
from opentse.tr03151.codec import encode_signed_part
from opentse.tr03151.logmessage import FINISH, LogMessage, TransactionLogData
from opentse.tr03151.logtime import LogTime, TimeFormat
from opentse.tr03151.signature import verify_signature

ZERO = Decimal("0")
CENT = Decimal("0.01")

Row = dict[str, str]
MAX_FILE_SIZE = 2**31  # one CSV file of an export; guards against ZIP bombs
#: a member over BOMB_SIZE that inflates more than BOMB_RATIO times is refused: CSV
#: rows with their ids and times compress 5-30 times, zeros 1,000 times
BOMB_SIZE, BOMB_RATIO = 64 << 20, 200
#: what zipfile raises for a member it cannot give: bad CRC or data, encrypted
#: (RuntimeError), unknown method (NotImplementedError), cut short (EOFError)
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    OSError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    ValueError,
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: stable ``code``, where (file, CSV line, column) and what."""

    code: str
    file: str
    message: str
    line: int | None = None
    column: str | None = None
    #: "error" (exit status 1), "warning", or "info": what could not be checked
    severity: str = "error"
    #: the TSE (serial, hex) a finding about one TSE's numbers is about
    tse_serial: str | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        where += f" {self.column}" if self.column else ""
        return f"{self.severity} {self.code} {where}: {self.message}"


@dataclass(frozen=True, slots=True)
class BonSigned:
    """A Bon with a TSE signature, as the check read it: what an auditor compares a
    paper receipt's QR code with (``opentse verify-receipt --dsfinvk``)."""

    label: str  # Bon 7 (BON_ID ..., register ..., Z_NR ...)
    serial: str  # hex SHA-256 of tse.csv's TSE_PUBLIC_KEY
    number: str  # TSE_TANR as written
    signature: str  # TSE_TA_SIG (base64) as written
    counter: str  # TSE_TA_SIGZ as written
    process_type: str
    process_data: str  # rebuilt from the Bon's rows (else TSE_VORGANGSDATEN)
    verified: bool  # TSE_TA_SIG verifies over the Finish log rebuilt from the rows
    bon_type: str  # BON_TYP


class _Source:
    """The files of an export: a folder or a ZIP."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        self.prefix = ""
        # sizes (inflated, compressed) of the members read so far: the bomb rule
        # counts them together, a bomb split into members under BOMB_SIZE is one too
        self.taken: dict[str, tuple[int, int]] = {}
        if path.is_file():
            self.zip = zipfile.ZipFile(path)
            names = self.zip.namelist()
            if INDEX_NAME not in names:  # an export folder zipped with its folder name
                nested = [n for n in names if n.endswith("/" + INDEX_NAME)]
                if len(nested) == 1:
                    self.prefix = nested[0][: -len(INDEX_NAME)]

    def read(self, name: str) -> bytes | None:
        if self.zip is not None:
            try:
                info = self.zip.getinfo(self.prefix + name)
            except KeyError:
                return None
            if info.file_size > MAX_FILE_SIZE:
                raise FormatError(f"{name}: larger than {MAX_FILE_SIZE} bytes", code="E_EXPORT_ZIP")
            if info.file_size > BOMB_SIZE and info.file_size > BOMB_RATIO * info.compress_size:
                raise FormatError(
                    f"{name}: {info.file_size} bytes from {info.compress_size} compressed "
                    "(a ZIP bomb, not a CSV file)",
                    code="E_EXPORT_ZIP",
                )
            self.taken[name] = (info.file_size, info.compress_size)
            inflated = sum(size for size, _ in self.taken.values())
            compressed = sum(size for _, size in self.taken.values())
            if inflated > BOMB_SIZE and inflated > BOMB_RATIO * compressed:
                raise FormatError(
                    f"{name}: the members read so far inflate to {inflated} bytes from "
                    f"{compressed} compressed (a ZIP bomb split into members)",
                    code="E_EXPORT_ZIP",
                )
            try:
                # zipfile stops at the declared size: a member that inflates to more
                # fails its CRC instead of filling the memory
                with self.zip.open(info) as member:
                    return member.read(info.file_size)
            except ZIP_ERRORS as exc:  # encrypted, unknown method, cut short, bad CRC
                raise FormatError(
                    f"{name}: cannot be read from the ZIP ({exc})", code="E_EXPORT_ZIP"
                ) from None
        file = self.path / name
        return file.read_bytes() if file.is_file() else None

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def check_export(path: Path | str) -> list[Finding]:
    """All findings of the export at ``path`` (folder or ZIP); empty means it passed."""
    return check_export_summary(path)[0]


def check_export_summary(path: Path | str) -> tuple[list[Finding], dict[str, Any]]:
    """The findings and what was checked: registers, closings (Z_NR, business day),
    Bons, Bons with TSE data and TSE signatures verified (an auditor's "ok" needs to
    say of what). The summary is empty when the export cannot be read."""
    findings, summary, _bons = check_export_bons(path)
    return findings, summary


def check_export_bons(
    path: Path | str,
) -> tuple[list[Finding], dict[str, Any], list[BonSigned]]:
    """:func:`check_export_summary` and every Bon with a TSE signature (its
    processData rebuilt from the rows, whether the signature verified)."""
    path = Path(path)
    if not path.exists():
        return [Finding("E_EXPORT_MISSING", str(path), "no such file or folder")], {}, []
    try:
        source = _Source(path)
    except ZIP_ERRORS:
        what = "a ZIP file that cannot be read (cut short?)" if _looks_zip(path) else None
        if what is None and _looks_tar(path):
            what = (
                "a TAR archive, not a DSFinV-K export (a TSE's export? verify it with "
                "`opentse verify`, or give it here as --tse-export)"
            )
        message = what or "neither a folder nor a ZIP file"
        return [Finding("E_EXPORT_ZIP", str(path), message)], {}, []
    try:
        checker = _Checker(source)
        try:
            checker.run()
        except FormatError as exc:  # a file of the ZIP cannot be read at all
            checker.add(exc.code, str(path), exc.message)
        return checker.findings, checker.summary(), checker.bons
    finally:
        source.close()


def header_difference(found: tuple[str, ...], names: tuple[str, ...]) -> str:
    """Where a header row departs from index.xml's columns, position by position
    (the first five), and the column counts when they differ: what an auditor needs
    to see whether the data or only the header's words are off."""
    places = [
        f"column {index + 1} {'none' if got is None else repr(got[:60])}"
        f" where index.xml has {'none' if want is None else repr(want)}"
        for index, (got, want) in enumerate(itertools.zip_longest(found, names))
        if got != want
    ]
    text = "; ".join(places[:5]) + (f"; {len(places) - 5} more" if len(places) > 5 else "")
    if len(found) != len(names):
        text += f" ({len(found)} columns, index.xml declares {len(names)})"
    return text


def _lenient_records(data: bytes, file: str) -> list[tuple[int, list[str]]] | None:
    """The records of a CSV file whose only fault is a byte order mark, LF (or
    mixed) line ends or a last record without its CR LF (many CSV writers leave it
    out; a file cut short shows in that record's fields), read as if it had none;
    None when it has other faults too."""
    text = data.removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    try:
        return list(read_records(text, file))
    except FormatError:
        return None


def _named(columns: Iterable[str], values: Iterable[str]) -> str:
    """A key as a person reads it: ``Z_KASSE_ID KASSE-1, Z_NR 2, BON_ID B7``."""
    return ", ".join(f"{c} {v}" for c, v in zip(columns, values, strict=True))


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}..{last}"


def _number(text: str) -> int | None:
    """A BON_NR, TSE_TANR or Z_NR as a number, None when it is none."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _closing_left_out(exported: set[int], z_low: str, z_high: str) -> bool:
    """True when a closing between Z_NR ``z_low`` and ``z_high`` of one register is
    not in the export: numbers between their Bons may be that closing's."""
    low, high = _number(z_low), _number(z_high)
    if low is None or high is None:
        return False
    low, high = min(low, high), max(low, high)
    between = high - low - 1
    return between > len(exported) or any(z not in exported for z in range(low + 1, high))


def _left_out_spans(
    present: dict[int, tuple[str, str]],
    exported: dict[str, set[int]],
    continued: Collection[str] = (),
) -> list[tuple[int, int, str]]:
    """The TSE_TANRs (first, last, whose) that closings left out of the export may
    hold: a register's transactions come in the order of its closings, so a closing
    Z that the export lacks (between two exported ones, or before the first) signed
    only numbers between the register's last Bon before Z and its first Bon after
    it, on that TSE. A register in ``continued`` (another register's closings in
    the export end later than its own) may have sold on into a closing after its
    last exported one: numbers after its last Bon. ``present`` maps each TSE_TANR
    to its (Z_KASSE_ID, Z_NR); ``whose`` names the register and the closings left
    out, for the finding that says these numbers were not checked."""
    by_register: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for number, (register, z_text) in present.items():
        z_nr = _number(z_text)
        if z_nr is not None:
            by_register[register].append((z_nr, number))
    spans: list[tuple[int, int, str]] = []
    for register, rows in by_register.items():
        closings = exported[register]
        if not closings:
            continue
        rows.sort()
        zs = sorted(closings)
        # a left-out closing lies before the first exported one or between two
        holes = [(zs[0] - 1, f"register {register}, closing(s) before Z_NR {zs[0]}")]
        holes += [
            (low + 1, f"register {register}, closing(s) Z_NR {_span(low + 1, high - 1)}")
            for low, high in itertools.pairwise(zs)
            if high > low + 1
        ]
        for hole, whose in holes:
            if hole < 1:
                continue
            before = [n for z, n in rows if z < hole]
            after = [n for z, n in rows if z > hole]
            first = max(before) + 1 if before else 0
            last = min(after) - 1 if after else first - 1
            if last >= first:
                spans.append((first, last, whose + " (not in the export)"))
        if register in continued and rows:
            whose = f"register {register}, after its last closing in the export (Z_NR {zs[-1]})"
            spans.append((max(n for _z, n in rows) + 1, _NO_END, whose))
    return sorted(spans)


def _covered(
    first: int, last: int, spans: list[tuple[int, int, str]]
) -> Iterable[tuple[int, int, str]]:
    """The parts of ``first..last`` that each span (first, last, whose) covers."""
    for low, high, whose in spans:
        if high >= first and low <= last:
            yield max(low, first), min(high, last), whose


def _merged(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Ranges (first, last) sorted, overlapping or adjacent ones joined."""
    out: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if out and low <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return out


_NO_END = 10**19  # above any TSE_TANR _number reads (at most 18 digits)


def _uncovered(first: int, last: int, spans: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """The parts of ``first..last`` that no span (first, last, whose; sorted) covers."""
    out: list[tuple[int, int]] = []
    for low, high, _whose in spans:
        if high < first or low > last:
            continue
        if low > first:
            out.append((first, low - 1))
        first = max(first, high + 1)
        if first > last:
            return out
    out.append((first, last))
    return out


def _amounts(columns: Iterable[str], amounts: Iterable[Decimal]) -> str:
    """Amount columns as money: ``Z_UMS_BRUTTO 11.90, Z_UMS_NETTO 10.00``."""
    return ", ".join(f"{c} {_money(a)}" for c, a in zip(columns, amounts, strict=True))


def _looks_zip(path: Path) -> bool:
    """Whether a file starts like a ZIP (a local file header), so that one zipfile
    cannot open was cut short or damaged rather than something else."""
    try:
        with path.open("rb") as file:
            return file.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _looks_tar(path: Path) -> bool:
    """Whether a file has a POSIX ustar header (``ustar`` at offset 257): a TSE's TAR
    export given where the DSFinV-K export belongs."""
    try:
        with path.open("rb") as file:
            return file.read(262)[257:262] == b"ustar"
    except OSError:
        return False


def _closing(row: Row) -> tuple[str, str, str]:
    return (row["Z_KASSE_ID"], row["Z_ERSTELLUNG"], row["Z_NR"])


def _bon(row: Row) -> tuple[str, str, str, str]:
    return (*_closing(row), row["BON_ID"])


def _closing_words(key: tuple[str, ...]) -> str:
    """A closing as an auditor names it: the register (Z_KASSE_ID) and Z_NR."""
    return f"register {key[0]}, Z_NR {key[2]}"


def _money(amount: Decimal) -> str:
    """An amount as money (``17.25``), not the CSV's five places or a Decimal repr;
    more places only where they are not zeros."""
    try:
        cents = amount.quantize(CENT)
    except ArithmeticError:  # too many digits to quantize: print it as it is
        return f"{amount:f}"
    return f"{cents if cents == amount else amount:f}"


class _Checker:
    def __init__(self, source: _Source) -> None:
        self.source = source
        self.findings: list[Finding] = []
        self.rows: dict[str, list[tuple[int, Row]]] = {}
        self.tables: dict[str, Table] = {}
        self._bon_numbers: dict[tuple[str, ...], str] | None = None
        self.signatures_verified = 0
        self.bons: list[BonSigned] = []

    def add(
        self,
        code: str,
        file: str,
        message: str,
        line: int | None = None,
        column: str | None = None,
        severity: str = "error",
        tse_serial: str | None = None,
    ) -> None:
        self.findings.append(Finding(code, file, message, line, column, severity, tse_serial))

    def get(self, file: str) -> list[tuple[int, Row]]:
        return self.rows.get(file, [])

    def summary(self) -> dict[str, Any]:
        """What the export holds and what of it was verified."""
        closings = [
            {"register": r["Z_KASSE_ID"], "z_nr": r["Z_NR"], "business_day": r["Z_BUCHUNGSTAG"]}
            for _l, r in self.get("cashpointclosing.csv")
        ]
        closings.sort(key=lambda c: (c["register"], _int(c["z_nr"]), c["z_nr"]))
        return {
            "registers": sorted({c["register"] for c in closings}),
            "closings": closings,
            "bons": len(self.get("transactions.csv")),
            "bons_with_tse_data": sum(
                1 for _l, r in self.get("transactions_tse.csv") if r["TSE_TA_SIG"]
            ),
            "signatures_verified": self.signatures_verified,
        }

    def bon(self, row: Row) -> str:
        """A receipt as an auditor names it: its number (BON_NR), BON_ID, register
        and closing; rows of every receipt table carry the key, only
        transactions.csv the number."""
        if self._bon_numbers is None:
            self._bon_numbers = {_bon(r): r["BON_NR"] for _l, r in self.get("transactions.csv")}
        number = self._bon_numbers.get(_bon(row), "")
        return (
            f"Bon {number + ' ' if number else ''}(BON_ID {row['BON_ID']}, "
            f"{_closing_words(_closing(row))})"
        )

    # --- files and index.xml ---------------------------------------------------------

    def run(self) -> None:
        data = self.source.read(INDEX_NAME)
        if data is None:
            self.add("E_INDEX_MISSING", INDEX_NAME, "the export has no index.xml")
            return
        dtd = self.source.read(DTD_NAME)
        if dtd is None:
            self.add("E_DTD_MISSING", DTD_NAME, "the DTD named by index.xml is missing")
        else:
            if dtd != gdpdu_dtd():
                self.add(
                    "W_DTD_DIFFERS",
                    DTD_NAME,
                    "differs from the GDPdU DTD we ship",
                    severity="warning",
                )
        try:
            index = read_index_xml(data)
        except FormatError as exc:
            self.add(exc.code, INDEX_NAME, exc.message)
            return
        if index.doctype_system != DTD_NAME:
            self.add(
                "E_INDEX_DOCTYPE",
                INDEX_NAME,
                f"DOCTYPE names {index.doctype_system!r}, not {DTD_NAME}",
            )
        declared = {t.file: t for t in index.tables}
        for official in T.TABLES:
            table = declared.get(official.file)
            if table is None:
                self.add("E_TABLE_MISSING", INDEX_NAME, f"{official.file} is not declared")
                continue
            if not self._compare_table(official, table):
                continue
            dialect = index.dialects[table.file]
            if dialect.decimal_symbol != DECIMAL_SYMBOL:
                self.add(
                    "E_INDEX_DIALECT",
                    INDEX_NAME,
                    f"{table.file}: DecimalSymbol {dialect.decimal_symbol!r}",
                )
            if (dialect.column_delimiter, dialect.record_delimiter, dialect.text_encapsulator) != (
                ";",
                "\r\n",
                '"',
            ) or not dialect.utf8:
                self.add(
                    "E_INDEX_DIALECT",
                    INDEX_NAME,
                    f"{table.file}: not the DSFinV-K dialect (UTF8, ';', CR LF, '\"')",
                )
            # keys as DSFinV-K defines them (the published index.xml declares none)
            table = replace(
                table, primary_key=official.primary_key, foreign_keys=official.foreign_keys
            )
            self.tables[table.file] = table
            self._read_table(table)
        for file in declared:
            if file not in T.TABLE_BY_FILE:
                self.add(
                    "W_TABLE_EXTRA",
                    INDEX_NAME,
                    f"{file} is not a DSFinV-K table",
                    severity="warning",
                )
        self._check_keys()
        self._check_receipts()
        self._check_bon_numbers()
        self._check_tse_numbers()
        self._check_closings()
        self._check_vat_rates()
        self._check_signatures()

    def _compare_table(self, official: Table, table: Table) -> bool:
        """False when the declared columns are not the official ones (the file is then
        not read: cross-file rules need the official columns)."""
        want = official.columns
        if official.file == "tse.csv":
            extra = len(table.columns) - len(want)
            want = T.tse_table(2 + max(extra, 0)).columns
        if tuple(c.name for c in table.columns) != tuple(c.name for c in want):
            self.add(
                "E_INDEX_COLUMNS", INDEX_NAME, f"{table.file}: columns differ from DSFinV-K 2.4"
            )
            return False
        for mine, theirs in zip(table.columns, want, strict=True):
            if (mine.type, mine.max_length, mine.accuracy) != (
                theirs.type,
                theirs.max_length,
                theirs.accuracy,
            ):
                self.add(
                    "E_INDEX_TYPE",
                    INDEX_NAME,
                    f"{table.file} {mine.name}: type/length/accuracy differ from DSFinV-K",
                    column=mine.name,
                )
        return True

    def _read_table(self, table: Table) -> None:
        data = self.source.read(table.file)
        if data is None:
            self.add("E_CSV_MISSING", table.file, "declared in index.xml but missing")
            return
        rows: list[tuple[int, Row]] = []
        names = table.column_names
        try:
            records = list(read_records(data, table.file))
        except FormatError as exc:
            lenient = _lenient_records(data, table.file) if exc.code == "E_CSV_DIALECT" else None
            if lenient is None:
                self.add(exc.code, table.file, exc.message)
                return
            # still an error, but the content is checked too: a byte order mark or LF
            # line ends (a copy through another system) hide no sum or signature
            self.add(exc.code, table.file, f"{exc.message}; the rows are checked all the same")
            records = lenient
        if not records:
            self.add("E_CSV_HEADER", table.file, "no header row")
            return
        header = tuple(records[0][1])
        if header != names:
            # GDPdU reads the data from line 2 (index.xml's <Range><From>2) in the
            # declared column order, whatever the header row says: so does the check
            self.add(
                "E_CSV_HEADER",
                table.file,
                f"header row differs from index.xml: {header_difference(header, names)};"
                " the rows are read in index.xml's column order, as an auditor's"
                " tool reads them",
                1,
            )
        for line, fields in records[1:]:
            if len(fields) != len(names):
                self.add(
                    "E_CSV_FIELDS", table.file, f"{len(fields)} fields, {len(names)} columns", line
                )
                continue
            row = dict(zip(names, fields, strict=True))
            for column in table.columns:
                self._check_field(table, column, row[column.name], line)
            self._check_mandatory(table.file, row, line)
            rows.append((line, row))
        self.rows[table.file] = rows

    def _check_mandatory(self, file: str, row: Row, line: int) -> None:
        """Anhang G: mandatory fields filled (TSE fields unless a failure is reported)."""
        needed = set(T.MANDATORY_COLUMNS.get(file, frozenset())) | set(T.Z_KEY)
        if file == "transactions_tse.csv" and not row.get("TSE_TA_FEHLER"):
            needed |= T.TSE_TRANSACTION_COLUMNS
        for name in sorted(needed):
            if not row.get(name):
                self.add("E_CSV_MANDATORY", file, f"{name} must not be empty", line, name)
        group = T.ONE_OF_COLUMNS.get(file)
        if group is not None and not any(row.get(name) for name in group):
            self.add("E_CSV_MANDATORY", file, f"one of {' / '.join(group)} is needed", line)

    def _check_field(self, table: Table, column: T.Column, value: str, line: int) -> None:
        file, name = table.file, column.name
        if value == "":
            return
        if column.type is ColumnType.NUMERIC:
            try:
                parse_number(value, column.accuracy)
            except FormatError as exc:
                self.add(exc.code, file, exc.message, line, name)
            return
        if column.max_length is not None and len(value) > column.max_length:
            self.add(
                "E_CSV_LENGTH",
                file,
                f"{len(value)} characters, at most {column.max_length}",
                line,
                name,
            )
        values = T.VALUE_LISTS.get((file, name))
        if values is not None and value not in values:
            self.add("E_CSV_VALUE", file, f"{value!r} is not a valid {name}", line, name)
        if name in T.BOOLEAN_COLUMNS.get(file, frozenset()) and value not in ("0", "1"):
            self.add("E_CSV_BOOLEAN", file, f"{value!r} is not 0 or 1", line, name)
        try:
            if name in T.TIMESTAMP_COLUMNS:
                parse_timestamp(value)
            elif name in T.DATE_COLUMNS and "T" not in value:
                parse_date(value)
            elif name in T.DATE_COLUMNS:  # a closing's time stamp is accepted as its date
                parse_timestamp(value)
        except FormatError as exc:
            self.add(exc.code, file, exc.message, line, name)

    # --- helpers ---------------------------------------------------------------------

    def num(self, file: str, line: int, row: Row, column: str) -> Decimal:
        """A numeric field as Decimal (0 when empty or unreadable; already reported)."""
        text = row.get(column, "")
        if not text:
            return ZERO
        try:
            return parse_number(text, 5)
        except FormatError:
            return ZERO

    # --- keys ------------------------------------------------------------------------

    def _check_keys(self) -> None:
        keysets: dict[str, set[tuple[str, ...]]] = {}
        for file, table in self.tables.items():
            seen: set[tuple[str, ...]] = set()
            for line, row in self.get(file):
                key = tuple(row[c] for c in table.primary_key)
                if key in seen:
                    named = _named(table.primary_key, key)
                    self.add("E_KEY_DUPLICATE", file, f"{named}: this key occurs twice", line)
                seen.add(key)
            keysets[table.name] = seen
        by_name = {t.name: t for t in self.tables.values()}
        for file, table in self.tables.items():
            for fk in table.foreign_keys:
                target = by_name.get(fk.references)
                if target is None or target.file not in self.rows:
                    continue  # the referenced file is missing or unreadable: reported
                index = [
                    target.primary_key.index(c) for c in fk.ref_columns if c in target.primary_key
                ]
                if len(index) != len(fk.ref_columns):
                    continue
                present = {tuple(k[i] for i in index) for k in keysets[fk.references]}
                for line, row in self.get(file):
                    values = tuple(row[c] for c in fk.columns)
                    if "" in values:
                        continue
                    if values not in present:
                        self.add(
                            "E_KEY_MISSING",
                            file,
                            f"{_named(fk.columns, values)}: no such row in {target.file}",
                            line,
                        )

    # --- receipts --------------------------------------------------------------------

    def _check_receipts(self) -> None:
        lines: dict[tuple[str, ...], int] = defaultdict(int)
        line_vat: dict[tuple[str, ...], list[Decimal]] = defaultdict(lambda: [ZERO] * 3)
        line_vat_by_key: dict[tuple[str, ...], list[Decimal]] = defaultdict(lambda: [ZERO] * 3)
        lines_with_vat: set[tuple[str, ...]] = set()
        rates = self._rates()
        for _line, row in self.get("lines.csv"):
            lines[_bon(row)] += 1
        for line, row in self.get("lines_vat.csv"):
            f = "lines_vat.csv"
            g, n, v = (self.num(f, line, row, c) for c in ("POS_BRUTTO", "POS_NETTO", "POS_UST"))
            if g != n + v:
                self.add(
                    "E_VAT_SUM",
                    f,
                    f"{self.bon(row)} line {row['POS_ZEILE']}: POS_BRUTTO {_money(g)} != "
                    f"POS_NETTO {_money(n)} + POS_UST {_money(v)}",
                    line,
                )
            rate = rates.get((*_closing(row), row["UST_SCHLUESSEL"]))
            if rate is not None and abs(v - (g * rate / (100 + rate))) > CENT:
                self.add(
                    "E_VAT_AMOUNT",
                    f,
                    f"{self.bon(row)} line {row['POS_ZEILE']}: POS_UST {_money(v)} is not "
                    f"{rate} % of POS_BRUTTO {_money(g)}",
                    line,
                    "POS_UST",
                )
            lines_with_vat.add((*_bon(row), row["POS_ZEILE"]))
            for target, key in (
                (line_vat, _bon(row)),
                (line_vat_by_key, (*_bon(row), row["UST_SCHLUESSEL"])),
            ):
                target[key][0] += g
                target[key][1] += n
                target[key][2] += v
        for line, row in self.get("lines.csv"):
            if (*_bon(row), row["POS_ZEILE"]) not in lines_with_vat:
                self.add(
                    "E_LINE_NO_VAT",
                    "lines.csv",
                    f"line {row['POS_ZEILE']} of {self.bon(row)} has no lines_vat row",
                    line,
                )
        tx_vat: dict[tuple[str, ...], Decimal] = defaultdict(lambda: ZERO)
        for line, row in self.get("transactions_vat.csv"):
            f = "transactions_vat.csv"
            g, n, v = (self.num(f, line, row, c) for c in ("BON_BRUTTO", "BON_NETTO", "BON_UST"))
            if g != n + v:
                self.add(
                    "E_VAT_SUM",
                    f,
                    f"{self.bon(row)}: BON_BRUTTO {_money(g)} != BON_NETTO {_money(n)} + "
                    f"BON_UST {_money(v)}",
                    line,
                )
            if [g, n, v] != line_vat_by_key.get((*_bon(row), row["UST_SCHLUESSEL"]), [ZERO] * 3):
                self.add(
                    "E_SUM_LINES",
                    f,
                    f"{self.bon(row)} key {row['UST_SCHLUESSEL']}: not the sum of its "
                    "lines_vat rows",
                    line,
                )
            tx_vat[_bon(row)] += g
        paid: dict[tuple[str, ...], Decimal] = defaultdict(lambda: ZERO)
        for line, row in self.get("datapayment.csv"):
            paid[_bon(row)] += self.num("datapayment.csv", line, row, "BASISWAEH_BETRAG")
        has_tse = {_bon(row) for _line, row in self.get("transactions_tse.csv")}
        f = "transactions.csv"
        for line, row in self.get(f):
            bon = _bon(row)
            total = self.num(f, line, row, "UMS_BRUTTO")
            if lines[bon] == 0:
                self.add("E_RECEIPT_NO_LINES", f, f"{self.bon(row)} has no lines", line)
            if line_vat[bon][0] != total:
                self.add(
                    "E_SUM_LINES",
                    f,
                    f"{self.bon(row)}: UMS_BRUTTO {_money(total)} != sum of lines "
                    f"{_money(line_vat[bon][0])}",
                    line,
                    "UMS_BRUTTO",
                )
            if tx_vat[bon] != total:
                self.add(
                    "E_SUM_VAT",
                    f,
                    f"{self.bon(row)}: UMS_BRUTTO {_money(total)} != transactions_vat "
                    f"{_money(tx_vat[bon])}",
                    line,
                    "UMS_BRUTTO",
                )
            if bon in paid and paid[bon] != total:
                self.add(
                    "E_SUM_PAYMENTS",
                    f,
                    f"{self.bon(row)}: payments {_money(paid[bon])} != UMS_BRUTTO {_money(total)}",
                    line,
                )
            if bon not in paid and row["BON_TYP"] in PAID_BON_TYPES and total != 0:
                self.add("E_RECEIPT_NO_PAYMENT", f, f"{self.bon(row)} has no payments", line)
            if bon not in has_tse:
                self.add(
                    "E_RECEIPT_NO_TSE", f, f"{self.bon(row)} has no transactions_tse row", line
                )

    def _exported_closings(self) -> dict[str, set[int]]:
        """Each register's Z_NRs in this export (cashpointclosing.csv)."""
        out: dict[str, set[int]] = defaultdict(set)
        for _line, row in self.get("cashpointclosing.csv"):
            z_nr = _number(row["Z_NR"])
            if z_nr is not None:
                out[row["Z_KASSE_ID"]].add(z_nr)
        return out

    def _closed_earlier(self) -> set[str]:
        """Registers whose last closing in the export (Z_ERSTELLUNG) is earlier than
        another register's: their receipts after it are in a closing the export
        does not hold (a later business day, or not closed yet)."""
        last: dict[str, datetime] = {}
        for _line, row in self.get("cashpointclosing.csv"):
            try:
                created = parse_timestamp(row["Z_ERSTELLUNG"])
            except (FormatError, ValueError):
                continue
            register = row["Z_KASSE_ID"]
            if register not in last or created > last[register]:
                last[register] = created
        end = max(last.values(), default=None)
        return {register for register, created in last.items() if created != end}

    def _check_bon_numbers(self) -> None:
        """A register numbers its receipts without gaps (aborted, training and failed
        ones included), so a BON_NR missing between two of the export's receipts is a
        receipt left out: a warning, since only the TSE's export can prove it
        (``--tse-export``). Only what was exported is looked at: numbers between
        two Bons whose closings have a closing between them that the export does not
        hold (a chosen range, closings left out) are that closing's, no gap.
        Registers with non-numeric BON_NR are not looked at."""
        exported = self._exported_closings()
        numbered: dict[str, list[tuple[int, int, Row]]] = defaultdict(list)
        for line, row in self.get("transactions.csv"):
            number = _number(row["BON_NR"])
            if number is not None:
                numbered[row["Z_KASSE_ID"]].append((number, line, row))
        for register, rows in numbered.items():
            rows.sort(key=lambda item: (item[0], item[1]))
            for (before, _l, low), (after, line, high) in itertools.pairwise(rows):
                if after <= before + 1:
                    continue
                if _closing_left_out(exported[register], low["Z_NR"], high["Z_NR"]):
                    continue
                missing = _span(before + 1, after - 1)
                self.add(
                    "W_BON_NR_GAP",
                    "transactions.csv",
                    f"register {register}: receipt number(s) (BON_NR) {missing} missing "
                    f"between Bon {before} (BON_ID {low['BON_ID']}, Z_NR {low['Z_NR']}) and "
                    f"Bon {after} (BON_ID {high['BON_ID']}, Z_NR {high['Z_NR']}): receipts "
                    "left out of the export? The TSE's export tells (--tse-export)",
                    line,  # the Bon after the gap
                    "BON_NR",
                    severity="warning",
                )

    def _check_tse_numbers(self) -> None:
        """The TSE numbers its transactions without gaps, and BON_NR is not signed: a
        Bon left out and the rest renumbered still leaves a TSE_TANR that no Bon has.
        One warning per TSE lists them: other registers on the same TSE and failed
        starts explain such numbers too, the TSE's export tells (``--tse-export``).
        Numbers a closing left out of the export may hold (of any register on that
        TSE, :func:`_left_out_spans`) are that closing's, no gap."""
        serials = {
            (*_closing(r), r["TSE_ID"]): r["TSE_SERIAL"].lower() for _l, r in self.get("tse.csv")
        }
        exported = self._exported_closings()
        numbers: dict[str, dict[int, tuple[str, str]]] = defaultdict(dict)
        for _line, row in self.get("transactions_tse.csv"):
            number = _number(row["TSE_TANR"])
            serial = serials.get((*_closing(row), row["TSE_ID"]))
            if serial and number is not None:
                numbers[serial][number] = (row["Z_KASSE_ID"], row["Z_NR"])
        continued = self._closed_earlier()
        for serial, present in sorted(numbers.items()):
            ordered = sorted(present)
            explained = _left_out_spans(present, exported, continued)
            holes = [(b + 1, a - 1) for b, a in itertools.pairwise(ordered) if a > b + 1]
            gaps = [gap for low, high in holes for gap in _uncovered(low, high, explained)]
            self._unchecked_numbers(serial, ordered, holes, explained)
            if not gaps:
                continue
            count = sum(last - first + 1 for first, last in gaps)
            listed = ", ".join(_span(first, last) for first, last in gaps[:20])
            more = f" and {len(gaps) - 20} more ranges" if len(gaps) > 20 else ""
            self.add(
                "W_TSE_TANR_GAP",
                "transactions_tse.csv",
                f"TSE {serial[:16]}...: {count} transaction number(s) between "
                f"{ordered[0]} and {ordered[-1]} have no Bon in this export ({listed}{more}): "
                "other registers on this TSE, failed starts, or Bons left out? The TSE's "
                "export tells (--tse-export)",
                severity="warning",
                tse_serial=serial,
            )

    def _unchecked_numbers(
        self,
        serial: str,
        ordered: list[int],
        holes: list[tuple[int, int]],
        explained: list[tuple[int, int, str]],
    ) -> None:
        """I_TSE_TANR_UNCHECKED: the numbers between a TSE's Bons that W_TSE_TANR_GAP
        does not warn of because a closing the export does not hold may have signed
        them. Not checked is not checked: the finding says which numbers, whose
        closings, and that only the TSE's export (``--tse-export``) tells."""
        parts: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for low, high in holes:
            for first, last, whose in _covered(low, high, explained):
                parts[whose].append((first, last))
        if not parts:
            return
        every = _merged(r for ranges in parts.values() for r in ranges)
        count = sum(last - first + 1 for first, last in every)
        groups = []
        for whose, ranges in sorted(parts.items(), key=lambda item: min(item[1])):
            merged = _merged(ranges)
            listed = ", ".join(_span(first, last) for first, last in merged[:20])
            more = f" and {len(merged) - 20} more ranges" if len(merged) > 20 else ""
            groups.append(f"{listed}{more}: {whose}")
        self.add(
            "I_TSE_TANR_UNCHECKED",
            "transactions_tse.csv",
            f"TSE {serial[:16]}...: {count} transaction number(s) between {ordered[0]} and "
            f"{ordered[-1]} have no Bon in this export and were not checked, as closings "
            f"the export does not hold may have signed them ({'; '.join(groups)}); only the "
            "TSE's export tells whether they are those closings' Bons or Bons left out "
            "(--tse-export)",
            severity="info",
            tse_serial=serial,
        )

    # --- closing totals --------------------------------------------------------------

    def _check_closings(self) -> None:
        counted = {
            _bon(row)
            for _l, row in self.get("transactions.csv")
            if row["BON_TYP"] in CLOSING_BON_TYPES
        }
        line_info = {
            (*_bon(row), row["POS_ZEILE"]): (row["GV_TYP"], row["GV_NAME"], row["AGENTUR_ID"])
            for _l, row in self.get("lines.csv")
        }
        cases: dict[tuple[str, ...], list[Decimal]] = defaultdict(lambda: [ZERO] * 3)
        for line, row in self.get("lines_vat.csv"):
            if _bon(row) not in counted:
                continue
            info = line_info.get((*_bon(row), row["POS_ZEILE"]))
            if info is None:
                continue
            key = (*_closing(row), *info, row["UST_SCHLUESSEL"])
            for i, c in enumerate(("POS_BRUTTO", "POS_NETTO", "POS_UST")):
                cases[key][i] += self.num("lines_vat.csv", line, row, c)
        self._compare_totals(
            "businesscases.csv",
            cases,
            ("GV_TYP", "GV_NAME", "AGENTUR_ID", "UST_SCHLUESSEL"),
            ("Z_UMS_BRUTTO", "Z_UMS_NETTO", "Z_UST"),
        )
        pays: dict[tuple[str, ...], list[Decimal]] = defaultdict(lambda: [ZERO])
        cash: dict[tuple[str, ...], list[Decimal]] = defaultdict(lambda: [ZERO])
        all_pay: dict[tuple[str, ...], Decimal] = defaultdict(lambda: ZERO)
        all_cash: dict[tuple[str, ...], Decimal] = defaultdict(lambda: ZERO)
        base = {_closing(r): r["KASSE_BASISWAEH_CODE"] for _l, r in self.get("cashregister.csv")}
        for line, row in self.get("datapayment.csv"):
            if _bon(row) not in counted:
                continue
            amount = self.num("datapayment.csv", line, row, "BASISWAEH_BETRAG")
            pays[(*_closing(row), row["ZAHLART_TYP"], row["ZAHLART_NAME"])][0] += amount
            all_pay[_closing(row)] += amount
            if row["ZAHLART_TYP"] == "Bar":
                all_cash[_closing(row)] += amount
                currency = row["ZAHLWAEH_CODE"]
                if currency != base.get(_closing(row), "EUR"):
                    amount = self.num("datapayment.csv", line, row, "ZAHLWAEH_BETRAG")
                cash[(*_closing(row), currency)][0] += amount
        self._compare_totals(
            "payment.csv",
            pays,
            ("ZAHLART_TYP", "ZAHLART_NAME"),
            ("Z_ZAHLART_BETRAG",),
        )
        self._compare_totals(
            "cash_per_currency.csv",
            cash,
            ("ZAHLART_WAEH",),
            ("ZAHLART_BETRAG_WAEH",),
        )
        bon_ids = {_bon(r) for _l, r in self.get("transactions.csv")}
        f = "cashpointclosing.csv"
        for line, row in self.get(f):
            zkey = _closing(row)
            for column, want in (
                ("Z_SE_ZAHLUNGEN", all_pay[zkey]),
                ("Z_SE_BARZAHLUNGEN", all_cash[zkey]),
            ):
                got = self.num(f, line, row, column)
                if got != want:
                    self.add(
                        "E_SUM_CLOSING",
                        f,
                        f"{_closing_words(zkey)}: {column} {_money(got)}, but the "
                        f"payments of its receipts add up to {_money(want)}",
                        line,
                        column,
                    )
            for column in ("Z_START_ID", "Z_ENDE_ID"):
                if row[column] and (*zkey, row[column]) not in bon_ids:
                    self.add(
                        "E_KEY_MISSING", f, f"{column} {row[column]} is no receipt", line, column
                    )

    def _compare_totals(
        self,
        file: str,
        want: dict[tuple[str, ...], list[Decimal]],
        key_columns: tuple[str, ...],
        columns: tuple[str, ...],
    ) -> None:
        """The closing's rows of ``file`` (keyed by the closing and ``key_columns``)
        against the sums of the single records; a finding names the register, Z_NR,
        the row's key and each amount that differs."""
        have: dict[tuple[str, ...], tuple[int, list[Decimal]]] = {}
        for line, row in self.get(file):
            key = (*_closing(row), *(row[c] for c in key_columns))
            have[key] = (line, [self.num(file, line, row, c) for c in columns])

        def where(key: tuple[str, ...]) -> str:
            named = ", ".join(f"{c} {v}" for c, v in zip(key_columns, key[3:], strict=True) if v)
            return f"{_closing_words(key)}, {named}"

        for key, amounts in want.items():
            if key not in have:
                if any(amounts):
                    self.add(
                        "E_SUM_CLOSING",
                        file,
                        f"{where(key)}: no row, but the single records add up to "
                        f"{_amounts(columns, amounts)}",
                    )
                continue
            line, got = have.pop(key)
            if got != amounts:
                differ = "; ".join(
                    f"{c} {_money(g)}, but the single records add up to {_money(a)}"
                    for c, g, a in zip(columns, got, amounts, strict=True)
                    if g != a
                )
                self.add("E_SUM_CLOSING", file, f"{where(key)}: {differ}", line)
        for key, (line, got) in have.items():
            if any(got):
                self.add(
                    "E_SUM_CLOSING",
                    file,
                    f"{where(key)}: {_amounts(columns, got)}, but no single record has this key",
                    line,
                )

    # --- VAT rates -------------------------------------------------------------------

    def _rates(self) -> dict[tuple[str, str, str, str], Decimal]:
        out = {}
        for line, row in self.get("vat.csv"):
            out[(*_closing(row), row["UST_SCHLUESSEL"])] = self.num(
                "vat.csv", line, row, "UST_SATZ"
            )
        return out

    def _check_vat_rates(self) -> None:
        rates = self._rates()
        for line, row in self.get("vat.csv"):
            key = _int(row["UST_SCHLUESSEL"])
            if key < T.FIRST_INDIVIDUAL_VAT_KEY and not any(p.key == key for p in T.VAT_PERIODS):
                self.add("E_VAT_KEY", "vat.csv", f"{key} is no VAT key of Anlage 2", line)
        ends: dict[tuple[str, ...], datetime] = {}
        for _l, row in self.get("transactions.csv"):
            try:
                ends[_bon(row)] = parse_timestamp(row["BON_ENDE"])
            except FormatError:
                continue
        for line, row in self.get("transactions_vat.csv"):
            key_text = row["UST_SCHLUESSEL"]
            rate = rates.get((*_closing(row), key_text))
            end = ends.get(_bon(row))
            if rate is None or end is None or not (key_text.isascii() and key_text.isdigit()):
                continue
            key = _int(key_text)
            if key >= T.FIRST_INDIVIDUAL_VAT_KEY:
                continue
            valid = T.vat_rate(key, end.date())
            if valid is None:
                self.add(
                    "E_VAT_KEY_DATE",
                    "transactions_vat.csv",
                    f"{self.bon(row)}: VAT key {key} is not valid on {end.date()}",
                    line,
                    "UST_SCHLUESSEL",
                )
            elif valid != rate:
                self.add(
                    "E_VAT_RATE",
                    "transactions_vat.csv",
                    f"{self.bon(row)}: VAT key {key} has {valid} % on {end.date()}, vat.csv "
                    f"says {rate} %",
                    line,
                    "UST_SCHLUESSEL",
                )

    # --- TSE signatures --------------------------------------------------------------

    def _check_signatures(self) -> None:
        tses = {}
        for line, row in self.get("tse.csv"):
            tse = self._read_tse(line, row)
            if tse is not None:
                tses[(*_closing(row), row["TSE_ID"])] = tse
        registers = {_closing(r): r["KASSE_SERIENNR"] for _l, r in self.get("cashregister.csv")}
        terminals = {
            (*_closing(r), r["TERMINAL_ID"]): r["TERMINAL_SERIENNR"]
            for _l, r in self.get("slaves.csv")
        }
        receipts = {_bon(r): r for _l, r in self.get("transactions.csv")}
        vat_rows: dict[tuple[str, ...], list[tuple[int, Row]]] = defaultdict(list)
        for item in self.get("transactions_vat.csv"):
            vat_rows[_bon(item[1])].append(item)
        pay_rows: dict[tuple[str, ...], list[tuple[int, Row]]] = defaultdict(list)
        for item in self.get("datapayment.csv"):
            pay_rows[_bon(item[1])].append(item)
        line_rows: dict[tuple[str, ...], list[tuple[int, Row]]] = defaultdict(list)
        for item in self.get("lines.csv"):
            line_rows[_bon(item[1])].append(item)
        f = "transactions_tse.csv"
        for line, row in self.get(f):
            if not row["TSE_TA_SIG"]:
                if not row["TSE_TA_FEHLER"]:
                    self.add(
                        "E_TSE_NO_SIGNATURE",
                        f,
                        f"{self.bon(row)}: neither a signature nor TSE_TA_FEHLER",
                        line,
                    )
                continue
            tse = tses.get((*_closing(row), row["TSE_ID"]))
            receipt = receipts.get(_bon(row))
            if tse is None or receipt is None:
                continue  # reported as a missing key
            process_type = row["TSE_TA_VORGANGSART"]
            rebuilt = self._rebuild(
                process_type,
                receipt,
                vat_rows[_bon(row)],
                pay_rows[_bon(row)],
                line_rows[_bon(row)],
                line,
                row["TSE_VORGANGSDATEN"],
            )
            written = row["TSE_VORGANGSDATEN"]
            if rebuilt is not None and written and written != rebuilt:
                self.add(
                    "E_PROCESSDATA_MISMATCH",
                    f,
                    f"{self.bon(row)}: TSE_VORGANGSDATEN {written!r} but the rows give {rebuilt!r}",
                    line,
                    "TSE_VORGANGSDATEN",
                )
            process_data = rebuilt if rebuilt is not None else written
            if process_data is None or (rebuilt is None and not written):
                self.add(
                    "E_PROCESSDATA_UNKNOWN",
                    f,
                    f"{self.bon(row)}: processData of {process_type!r} cannot be rebuilt",
                    line,
                )
                continue
            clients = []
            terminal = terminals.get((*_closing(row), receipt["TERMINAL_ID"]))
            if terminal:
                clients.append(terminal)
            clients.append(registers.get(_closing(row), ""))
            unreadable = _unreadable_tse_field(row, tse[2], tse[3], process_data)
            error = unreadable or self._verify(tse, row, process_data, clients)
            self.bons.append(
                BonSigned(
                    self.bon(row),
                    hashlib.sha256(tse[0]).hexdigest(),
                    row["TSE_TANR"],
                    row["TSE_TA_SIG"],
                    row["TSE_TA_SIGZ"],
                    process_type,
                    process_data,
                    error is None,
                    receipt["BON_TYP"],
                )
            )
            if error is None:
                self.signatures_verified += 1
            elif unreadable:  # not "does not verify": it could not be tried
                self.add(
                    "E_SIGNATURE_UNCHECKED",
                    f,
                    f"{self.bon(row)}: TSE_TA_SIG cannot be verified: {unreadable}",
                    line,
                    "TSE_TA_SIG",
                )
            else:
                self.add(
                    "E_SIGNATURE_INVALID",
                    f,
                    f"{self.bon(row)}: TSE_TA_SIG does not verify over the Finish log rebuilt "
                    f"from the rows ({error}): an amount, payment or Bon type, or a TSE field "
                    "(TSE_TANR, TSE_TA_SIGZ, TSE_TA_ENDE, TSE_TA_VORGANGSART) differs from what "
                    "the TSE signed, or TSE_PUBLIC_KEY is not the key that signed it",
                    line,
                    "TSE_TA_SIG",
                )

    def _read_tse(self, line: int, row: Row) -> tuple[bytes, str, str, str] | None:
        """(public key point, algorithm OID, time format, encoding) of a tse.csv row."""
        f = "tse.csv"
        try:
            key = base64.b64decode(row["TSE_PUBLIC_KEY"], validate=True)
        except binascii.Error:
            self.add("E_TSE_KEY", f, "TSE_PUBLIC_KEY is not base64", line, "TSE_PUBLIC_KEY")
            return None
        if key[:1] == b"\x30":  # SubjectPublicKeyInfo instead of the point
            try:
                spki = serialization.load_der_public_key(key)
            except (ValueError, UnsupportedAlgorithm):
                spki = None
            if not isinstance(spki, ec.EllipticCurvePublicKey):
                self.add("E_TSE_KEY", f, "TSE_PUBLIC_KEY is no EC key", line, "TSE_PUBLIC_KEY")
                return None
            key = spki.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        if hashlib.sha256(key).hexdigest() != row["TSE_SERIAL"].lower():
            self.add(
                "E_TSE_SERIAL",
                f,
                "TSE_SERIAL is not the SHA-256 of TSE_PUBLIC_KEY",
                line,
                "TSE_SERIAL",
            )
        cert_text = "".join(v for k, v in row.items() if k.startswith("TSE_ZERTIFIKAT_"))
        if cert_text:
            try:
                cert = x509.load_der_x509_certificate(base64.b64decode(cert_text, validate=True))
                cert_key = cert.public_key()
                if (
                    not isinstance(cert_key, ec.EllipticCurvePublicKey)
                    or cert_key.public_bytes(
                        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
                    )
                    != key
                ):
                    self.add(
                        "E_TSE_CERTIFICATE",
                        f,
                        "the certificate's key is not TSE_PUBLIC_KEY",
                        line,
                        "TSE_ZERTIFIKAT_I",
                    )
            except (ValueError, binascii.Error, UnsupportedAlgorithm):
                self.add(
                    "E_TSE_CERTIFICATE",
                    f,
                    "TSE_ZERTIFIKAT_* is no base64 DER certificate",
                    line,
                    "TSE_ZERTIFIKAT_I",
                )
        try:
            alg = oids.algorithm_oid(row["TSE_SIG_ALGO"])
        except ValueError:
            self.add(
                "E_TSE_ALGORITHM",
                f,
                f"unknown TSE_SIG_ALGO {row['TSE_SIG_ALGO']!r} (known: ecdsa-plain-SHA256 and "
                "the other ecdsa-plain- and ecsdsa-plain- names of BSI TR-03111): the Bons of "
                "this TSE cannot be verified",
                line,
                "TSE_SIG_ALGO",
            )
            return None
        return key, alg, row["TSE_ZEITFORMAT"], row["TSE_PD_ENCODING"]

    def _rebuild(
        self,
        process_type: str,
        receipt: Row,
        vat_rows: Iterable[tuple[int, Row]],
        pay_rows: Iterable[tuple[int, Row]],
        line_rows: Iterable[tuple[int, Row]],
        line: int,
        written: str = "",
    ) -> str | None:
        """processData as an auditor rebuilds it from the CSV rows (None: cannot);
        ``written`` (TSE_VORGANGSDATEN) decides only between two spellings of the
        same data."""
        try:
            if process_type == pd.PROCESS_TYPE_KASSENBELEG:
                gross: dict[int, Decimal] = defaultdict(lambda: ZERO)
                for ln, r in vat_rows:
                    slot = T.vat_slot(_int(r["UST_SCHLUESSEL"]))
                    if slot is None:
                        self.add(
                            "E_PROCESSDATA_VAT_KEY",
                            "transactions_vat.csv",
                            f"{self.bon(r)}: VAT key {r['UST_SCHLUESSEL']} has no processData slot",
                            ln,
                        )
                        return None
                    gross[slot] += self.num("transactions_vat.csv", ln, r, "BON_BRUTTO")
                payments = []
                base = "EUR"
                for ln, r in pay_rows:
                    if r["ZAHLART_TYP"] == "Keine":
                        continue
                    kind = "Bar" if r["ZAHLART_TYP"] == "Bar" else "Unbar"
                    currency = r["ZAHLWAEH_CODE"] or base
                    column = "BASISWAEH_BETRAG" if currency == base else "ZAHLWAEH_BETRAG"
                    amount = self.num("datapayment.csv", ln, r, column)
                    payments.append(pd.Payment(amount, kind, currency))
                # a kind that adds up to 0.00 (cash given and all of it handed back as
                # change) is no payment: registers leave it out of what they sign (ours
                # does); one that wrote it as 0.00 is accepted too
                summed = pd.accumulate_payments(payments)
                paid = [p for p in summed if p.amount != 0]
                rebuilt = pd.build_kassenbeleg(receipt["BON_TYP"], dict(gross), paid)
                if len(paid) < len(summed) and written != rebuilt:
                    with_zero = pd.build_kassenbeleg(receipt["BON_TYP"], dict(gross), summed)
                    return with_zero if written == with_zero else rebuilt
                return rebuilt
            if process_type == pd.PROCESS_TYPE_BESTELLUNG:
                order = [
                    pd.OrderLine(
                        pd.format_quantity(self.num("lines.csv", ln, r, "MENGE")),
                        r["ARTIKELTEXT"],
                        self.num("lines.csv", ln, r, "STK_BR"),
                    )
                    for ln, r in line_rows
                ]
                return pd.build_bestellung(order)
        except FormatError as exc:
            self.add(
                exc.code,
                "transactions_tse.csv",
                f"{self.bon(receipt)}: processData cannot be rebuilt: {exc.message}",
                line,
            )
            return None
        return None

    def _verify(
        self, tse: tuple[bytes, str, str, str], row: Row, process_data: str, clients: list[str]
    ) -> str | None:
        """None if the signature verifies for one of the client ids, else why not."""
        point, alg, time_format, encoding = tse
        try:
            signature = base64.b64decode(row["TSE_TA_SIG"], validate=True)
            end = parse_timestamp(row["TSE_TA_ENDE"])
            number = int(row["TSE_TANR"])
            counter = int(row["TSE_TA_SIGZ"])
            log_times = _log_times(time_format, end)
            data = process_data.encode("ascii" if encoding == "ASCII" else "utf-8")
        except (ValueError, binascii.Error, FormatError, UnicodeEncodeError) as exc:
            return f"TSE fields unreadable ({exc})"
        serial = hashlib.sha256(point).digest()
        last = "no client id"
        for client, log_time in itertools.product(clients, log_times):
            message = LogMessage(
                certified=TransactionLogData(
                    FINISH, client, data, row["TSE_TA_VORGANGSART"], number
                ),
                serial_number=serial,
                signature_algorithm=alg,
                signature_counter=counter,
                log_time=log_time,
            )
            try:
                signed = encode_signed_part(message)
            except OpenTSEError as exc:
                return exc.message
            for variant in (signed, _ber_process_data(signed, data)):
                try:
                    verify_signature(point, alg, variant, signature)
                    return None
                except OpenTSEError as exc:
                    last = exc.message
        return last


def _unreadable_tse_field(
    row: Row, time_format: str, encoding: str, process_data: str
) -> str | None:
    """Why a Bon's signature cannot be verified at all (a TSE field or the TSE's
    format unreadable), in the auditor's words; None when every field reads."""
    checks: list[tuple[str, str, Any]] = [
        ("TSE_TANR", "is not a whole number", int),
        ("TSE_TA_SIGZ", "is not a whole number", int),
        ("TSE_TA_SIG", "is not base64", lambda v: base64.b64decode(v, validate=True)),
        ("TSE_TA_ENDE", "is not a DSFinV-K time stamp", parse_timestamp),
    ]
    for column, why, read in checks:
        value = row[column]
        try:
            read(value)
        except (ValueError, binascii.Error, FormatError):
            shown = value if len(value) <= 40 else value[:40] + "..."
            return f"{column} {shown!r} {why}"
    if time_format not in _TIME_FORMATS:
        return f"tse.csv TSE_ZEITFORMAT {time_format!r} is none of {', '.join(_TIME_FORMATS)}"
    if encoding == "ASCII" and not process_data.isascii():
        return "the processData is not ASCII, as tse.csv TSE_PD_ENCODING says"
    return None


_TIME_FORMATS = (
    "utcTime",
    "utcTimeWithSeconds",
    "unixTime",
    "generalizedTime",
    "generalizedTimeWithMilliseconds",
)


def _ber_process_data(signed: bytes, data: bytes) -> bytes:
    """The same Finish log with processData as BER constructed indefinite length
    (``a2 80 04 LL <data> 00 00``), as D-Trust TSEs sign it (tr03151.md): an auditor
    cannot know the encoding from the CSV files, so both are tried."""
    definite = der.context(2, data)
    ber = b"\xa2\x80" + der.octet_string(data) + b"\x00\x00"
    return signed.replace(definite, ber, 1)


def _int(text: str) -> int:
    """A Numeric key field as int; 0 when empty or not an integer (reported elsewhere).
    ASCII digits only (``"²".isdigit()`` is true) and no more than int() reads."""
    if not (text.isascii() and text.isdigit()):
        return 0
    try:
        return int(text)
    except ValueError:  # over the 4,300 digits int() converts
        return 0


def _log_times(time_format: str, end: datetime) -> list[LogTime]:
    """The Finish log's logTime as the TSE may have written it: ``utcTime`` names
    ASN.1 UTCTime, which TSEs write without seconds (DSFinV-K's ``utcTime``) or with
    them (``utcTimeWithSeconds``, as DER requires and opentse writes; opentse's exports
    before 2026-11-22 called it ``utcTime``): both are tried, the format's own first."""
    first = _log_time(time_format, end)
    if time_format == "utcTime":
        return [first, _log_time("utcTimeWithSeconds", end)]
    return [first]


def _log_time(time_format: str, end: datetime) -> LogTime:
    """The Finish log's logTime in the TSE's format (DSFinV-K 4.7 TSE_ZEITFORMAT)."""
    unix = int(end.timestamp())
    if time_format == "unixTime":
        return LogTime(TimeFormat.UNIX, unix)
    t = end.astimezone(UTC)
    if time_format == "utcTimeWithSeconds":
        return LogTime(TimeFormat.UTC, unix)
    if time_format == "utcTime":
        return LogTime(TimeFormat.UTC, unix - t.second, t.strftime("%y%m%d%H%MZ"))
    if time_format == "generalizedTime":
        return LogTime(TimeFormat.GENERALIZED, unix)
    if time_format == "generalizedTimeWithMilliseconds":
        text = t.strftime("%Y%m%d%H%M%S") + f".{t.microsecond // 1000:03d}Z"
        return LogTime(TimeFormat.GENERALIZED, unix, text)
    raise ValueError(f"unknown TSE_ZEITFORMAT {time_format!r}")
