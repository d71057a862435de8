"""Read index.xml and every CSV file of an export, as an auditor's tool does.

index.xml says which tables there are, their columns, types and dialect; each declared
DSFinV-K table is compared with DSFinV-K 2.4, its CSV read in the declared dialect and
every field checked on its own (type, length, decimal comma, value lists, mandatory
fields of Anhang G). A file whose only fault is its line ends or a byte order mark is
reported and read all the same; the rows read feed the rules across files.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

from opentse.errors import FormatError
from opentse.formats.dsfinvk import tables as T
from opentse.formats.dsfinvk.csvwriter import (
    CONTROL_BYTES,
    named_controls,
    parse_date,
    parse_number,
    parse_timestamp,
    read_records,
)
from opentse.formats.dsfinvk.export import gdpdu_dtd
from opentse.formats.dsfinvk.findings import CheckState, Row
from opentse.formats.dsfinvk.indexxml import (
    DECIMAL_SYMBOL,
    DTD_NAME,
    INDEX_NAME,
    read_index_xml,
)
from opentse.formats.dsfinvk.tables import ColumnType, Table

#: C0 control characters but TAB, LF and CR, and DEL: no text of a receipt holds them


def read_export(check: CheckState) -> bool:
    """Read index.xml and the tables it declares into ``check``; False when there is
    no index.xml to read (nothing else can be checked then)."""
    data = check.source.read(INDEX_NAME)
    if data is None:
        check.add("E_INDEX_MISSING", INDEX_NAME, "the export has no index.xml")
        return False
    dtd = check.source.read(DTD_NAME)
    if dtd is None:
        check.add("E_DTD_MISSING", DTD_NAME, "the DTD named by index.xml is missing")
    else:
        if dtd != gdpdu_dtd():
            check.add(
                "W_DTD_DIFFERS",
                DTD_NAME,
                "differs from the GDPdU DTD we ship",
                severity="warning",
            )
    try:
        index = read_index_xml(data)
    except FormatError as exc:
        check.add(exc.code, INDEX_NAME, exc.message)
        return False
    if index.doctype_system != DTD_NAME:
        check.add(
            "E_INDEX_DOCTYPE",
            INDEX_NAME,
            f"DOCTYPE names {index.doctype_system!r}, not {DTD_NAME}",
        )
    declared = {t.file: t for t in index.tables}
    for official in T.TABLES:
        table = declared.get(official.file)
        if table is None:
            check.add("E_TABLE_MISSING", INDEX_NAME, f"{official.file} is not declared")
            continue
        if not _compare_table(check, official, table):
            continue
        dialect = index.dialects[table.file]
        if dialect.decimal_symbol != DECIMAL_SYMBOL:
            check.add(
                "E_INDEX_DIALECT",
                INDEX_NAME,
                f"{table.file}: DecimalSymbol {dialect.decimal_symbol!r}",
            )
        if (dialect.column_delimiter, dialect.record_delimiter, dialect.text_encapsulator) != (
            ";",
            "\r\n",
            '"',
        ) or not dialect.utf8:
            check.add(
                "E_INDEX_DIALECT",
                INDEX_NAME,
                f"{table.file}: not the DSFinV-K dialect (UTF8, ';', CR LF, '\"')",
            )
        # keys as DSFinV-K defines them (the published index.xml declares none)
        table = replace(table, primary_key=official.primary_key, foreign_keys=official.foreign_keys)
        check.tables[table.file] = table
        _read_table(check, table)
    for file in declared:
        if file not in T.TABLE_BY_FILE:
            check.add(
                "W_TABLE_EXTRA",
                INDEX_NAME,
                f"{file} is not a DSFinV-K table",
                severity="warning",
            )
    for name in check.source.undeclared({*declared, INDEX_NAME, DTD_NAME}):
        check.add(
            "W_FILE_UNDECLARED",
            name,
            "in the export, but index.xml does not declare it: an auditor's tool does not"
            " import it, so nothing in it is part of the audit",
            severity="warning",
        )
    return True


def _compare_table(check: CheckState, official: Table, table: Table) -> bool:
    """False when the declared columns are not the official ones (the file is then
    not read: cross-file rules need the official columns)."""
    want = official.columns
    if official.file == "tse.csv":
        extra = len(table.columns) - len(want)
        want = T.tse_table(2 + max(extra, 0)).columns
    if tuple(c.name for c in table.columns) != tuple(c.name for c in want):
        check.add("E_INDEX_COLUMNS", INDEX_NAME, f"{table.file}: columns differ from DSFinV-K 2.4")
        return False
    for mine, theirs in zip(table.columns, want, strict=True):
        if (mine.type, mine.max_length, mine.accuracy) != (
            theirs.type,
            theirs.max_length,
            theirs.accuracy,
        ):
            check.add(
                "E_INDEX_TYPE",
                INDEX_NAME,
                f"{table.file} {mine.name}: type/length/accuracy differ from DSFinV-K",
                column=mine.name,
            )
    return True


def _read_table(check: CheckState, table: Table) -> None:
    data = check.source.read(table.file)
    if data is None:
        check.add("E_CSV_MISSING", table.file, "declared in index.xml but missing")
        return
    rows: list[tuple[int, Row]] = []
    names = table.column_names
    try:
        records = list(read_records(data, table.file))
    except FormatError as exc:
        lenient = lenient_records(data, table.file) if exc.code == "E_CSV_DIALECT" else None
        if lenient is None:
            check.add(exc.code, table.file, exc.message)
            return
        # still an error, but the content is checked too: a byte order mark or LF
        # line ends (a copy through another system) hide no sum or signature
        check.add(exc.code, table.file, f"{exc.message}; the rows are checked all the same")
        records = lenient
    if not records:
        check.add("E_CSV_HEADER", table.file, "no header row")
        return
    # UTF-8 never has these bytes inside a longer character: one search of the file
    # tells whether any field needs looking at
    control = CONTROL_BYTES.search(data) is not None
    header = tuple(records[0][1])
    if header != names:
        # GDPdU reads the data from line 2 (index.xml's <Range><From>2) in the
        # declared column order, whatever the header row says: so does the check
        check.add(
            "E_CSV_HEADER",
            table.file,
            f"header row differs from index.xml: {header_difference(header, names)};"
            " the rows are read in index.xml's column order, as an auditor's"
            " tool reads them",
            1,
        )
    for line, fields in records[1:]:
        if len(fields) != len(names):
            check.add(
                "E_CSV_FIELDS", table.file, f"{len(fields)} fields, {len(names)} columns", line
            )
            continue
        row = dict(zip(names, fields, strict=True))
        for column in table.columns:
            _check_field(check, table, column, row[column.name], line)
            if control and column.type is not ColumnType.NUMERIC:
                _check_control(check, table.file, column.name, row[column.name], line)
        _check_mandatory(check, table.file, row, line)
        rows.append((line, row))
    check.rows[table.file] = rows


def _check_mandatory(check: CheckState, file: str, row: Row, line: int) -> None:
    """Anhang G: mandatory fields filled (TSE fields unless a failure is reported)."""
    needed = set(T.MANDATORY_COLUMNS.get(file, frozenset())) | set(T.Z_KEY)
    if file == "transactions_tse.csv" and not row.get("TSE_TA_FEHLER"):
        needed |= T.TSE_TRANSACTION_COLUMNS
    for name in sorted(needed):
        if not row.get(name):
            check.add("E_CSV_MANDATORY", file, f"{name} must not be empty", line, name)
    group = T.ONE_OF_COLUMNS.get(file)
    if group is not None and not any(row.get(name) for name in group):
        check.add("E_CSV_MANDATORY", file, f"one of {' / '.join(group)} is needed", line)


def _check_field(check: CheckState, table: Table, column: T.Column, value: str, line: int) -> None:
    file, name = table.file, column.name
    if value == "":
        return
    if column.type is ColumnType.NUMERIC:
        try:
            parse_number(value, column.accuracy)
        except FormatError as exc:
            check.add(exc.code, file, exc.message, line, name)
        return
    if column.max_length is not None and len(value) > column.max_length:
        check.add(
            "E_CSV_LENGTH",
            file,
            f"{len(value)} characters, at most {column.max_length}",
            line,
            name,
        )
    values = T.VALUE_LISTS.get((file, name))
    if values is not None and value not in values:
        check.add("E_CSV_VALUE", file, f"{value!r} is not a valid {name}", line, name)
    if name in T.BOOLEAN_COLUMNS.get(file, frozenset()) and value not in ("0", "1"):
        check.add("E_CSV_BOOLEAN", file, f"{value!r} is not 0 or 1", line, name)
    try:
        if name in T.TIMESTAMP_COLUMNS:
            parse_timestamp(value)
        elif name in T.DATE_COLUMNS and "T" not in value:
            parse_date(value)
        elif name in T.DATE_COLUMNS:  # a closing's time stamp is accepted as its date
            parse_timestamp(value)
    except FormatError as exc:
        check.add(exc.code, file, exc.message, line, name)


def _check_control(check: CheckState, file: str, name: str, value: str, line: int) -> None:
    """A control character in a text field: DSFinV-K text fields are plain text, and
    an auditor's import ends a text at NUL or rejects the file. The CSV's own CR and
    LF (inside a quoted field) and TAB are text; numbers are checked as numbers."""
    named = named_controls(value)
    if named is None:
        return
    check.add(
        "E_CSV_CONTROL",
        file,
        f"the control character(s) {named}:"
        " DSFinV-K text fields are plain text, an auditor's import stops at or rejects them",
        line,
        name,
    )


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


def lenient_records(data: bytes, file: str) -> list[tuple[int, list[str]]] | None:
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
