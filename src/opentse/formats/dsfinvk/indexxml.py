"""index.xml: the GDPdU description of a DSFinV-K export, written from tables.py and
read back for the checker.

gdpdu-01-09-2004.dtd (shipped beside it) fixes the structure: ``DataSet (Version,
DataSupplier?, Media+)``; ``Table (URL, Name?, Description?, UTF8?, (DecimalSymbol,
DigitGroupingSymbol)?, Range?, VariableLength)``; ``VariableLength (ColumnDelimiter?,
RecordDelimiter?, TextEncapsulator?, ((VariablePrimaryKey+, VariableColumn*) |
VariableColumn+), ForeignKey*)``; a column is ``Name, Description?, (Numeric |
(AlphaNumeric, MaxLength?) | Date)``; ``ForeignKey (Name+, References, Alias*)``.
The dialect values are those of the official DSFinV-K index.xml.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from xml.parsers import expat
from xml.sax.saxutils import escape

from opentse.errors import FormatError
from opentse.formats.dsfinvk.tables import Column, ColumnType, ForeignKey, Table

DTD_NAME = "gdpdu-01-09-2004.dtd"
INDEX_NAME = "index.xml"
GDPDU_VERSION = "1.0"
DECIMAL_SYMBOL = ","
DIGIT_GROUPING_SYMBOL = "."  # declared as in the official index.xml; never written
COLUMN_DELIMITER = ";"
RECORD_DELIMITER = "\r\n"
TEXT_ENCAPSULATOR = '"'
FIRST_DATA_ROW = 2


@dataclass(frozen=True, slots=True)
class DataSupplier:
    name: str = ""
    location: str = ""
    comment: str = ""


@dataclass(frozen=True, slots=True)
class TableDialect:
    """What one ``<Table>`` declares about its file's format."""

    utf8: bool
    decimal_symbol: str | None
    digit_grouping_symbol: str | None
    first_row: int | None
    column_delimiter: str | None
    record_delimiter: str | None
    text_encapsulator: str | None


@dataclass(frozen=True, slots=True)
class IndexXml:
    """index.xml as read: DOCTYPE system id, supplier, tables and their dialects."""

    doctype_system: str | None
    version: str
    supplier: DataSupplier | None
    media_name: str
    tables: tuple[Table, ...]
    dialects: dict[str, TableDialect]


def _el(name: str, text: str, indent: int) -> str:
    pad = "  " * indent
    if text == "":
        return f"{pad}<{name} />"
    return f"{pad}<{name}>{escape(text)}</{name}>"


def _column_lines(column: Column, element: str, indent: int) -> list[str]:
    pad = "  " * indent
    lines = [f"{pad}<{element}>", _el("Name", column.name, indent + 1)]
    if column.description:
        lines.append(_el("Description", column.description, indent + 1))
    if column.type is ColumnType.NUMERIC:
        if column.accuracy:
            lines += [
                f"{pad}  <Numeric>",
                _el("Accuracy", str(column.accuracy), indent + 2),
                f"{pad}  </Numeric>",
            ]
        else:
            lines.append(f"{pad}  <Numeric />")
    elif column.type is ColumnType.DATE:
        lines.append(f"{pad}  <Date />")
    else:
        lines.append(f"{pad}  <AlphaNumeric />")
        if column.max_length is not None:
            lines.append(_el("MaxLength", str(column.max_length), indent + 1))
    lines.append(f"{pad}</{element}>")
    return lines


def _foreign_key_lines(fk: ForeignKey, indent: int) -> list[str]:
    pad = "  " * indent
    lines = [f"{pad}<ForeignKey>"]
    lines += [_el("Name", name, indent + 1) for name in fk.columns]
    lines.append(_el("References", fk.references, indent + 1))
    for own, ref in zip(fk.columns, fk.ref_columns, strict=True):
        if own != ref:
            lines += [
                f"{pad}  <Alias>",
                _el("From", own, indent + 2),
                _el("To", ref, indent + 2),
                f"{pad}  </Alias>",
            ]
    lines.append(f"{pad}</ForeignKey>")
    return lines


def _table_lines(table: Table, keys: bool) -> list[str]:
    lines = [
        "    <Table>",
        _el("URL", table.file, 3),
        _el("Name", table.name, 3),
        _el("Description", table.file, 3),
        "      <UTF8 />",
        _el("DecimalSymbol", DECIMAL_SYMBOL, 3),
        _el("DigitGroupingSymbol", DIGIT_GROUPING_SYMBOL, 3),
        "      <Range>",
        _el("From", str(FIRST_DATA_ROW), 4),
        "      </Range>",
        "      <VariableLength>",
        _el("ColumnDelimiter", COLUMN_DELIMITER, 4),
        "        <RecordDelimiter>&#13;&#10;</RecordDelimiter>",
        _el("TextEncapsulator", TEXT_ENCAPSULATOR, 4),
    ]
    n_keys = len(table.primary_key) if keys else 0
    for i, column in enumerate(table.columns):
        element = "VariablePrimaryKey" if i < n_keys else "VariableColumn"
        lines += _column_lines(column, element, 4)
    if keys:
        for fk in table.foreign_keys:
            lines += _foreign_key_lines(fk, 4)
    lines += ["      </VariableLength>", "    </Table>"]
    return lines


def build_index_xml(
    tables: Sequence[Table],
    supplier: DataSupplier = DataSupplier(),
    media_name: str = "DSFinV-K",
    *,
    keys: bool = True,
) -> bytes:
    """index.xml for ``tables`` (UTF-8, CR LF). With ``keys`` the leading key columns
    are ``VariablePrimaryKey`` and the foreign keys are declared; without, every column
    is a ``VariableColumn`` as in the published index.xml."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<!DOCTYPE DataSet SYSTEM "{DTD_NAME}">',
        "<DataSet>",
        _el("Version", GDPDU_VERSION, 1),
        "  <DataSupplier>",
        _el("Name", supplier.name, 2),
        _el("Location", supplier.location, 2),
        _el("Comment", supplier.comment, 2),
        "  </DataSupplier>",
        "  <Media>",
        _el("Name", media_name, 2),
    ]
    for table in tables:
        lines += _table_lines(table, keys)
    lines += ["  </Media>", "</DataSet>"]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


# --- reading ---------------------------------------------------------------------------

_DOCTYPE = re.compile(rb'<!DOCTYPE\s+DataSet\s+SYSTEM\s+"([^"]*)"\s*>')


def _bad(message: str) -> FormatError:
    return FormatError(f"index.xml: {message}", code="E_INDEX_XML")


def _text(parent: ET.Element, name: str) -> str | None:
    child = parent.find(name)
    if child is None:
        return None
    return child.text or ""


def _count(text: str) -> bool:
    """ASCII digits int() reads (``"²".isdigit()`` is true, int("²") fails; int()
    refuses more than 4,300 digits): a length, accuracy or row number."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def _read_column(element: ET.Element, table: str) -> Column:
    name = _text(element, "Name")
    if not name:
        raise _bad(f"{table}: a column without Name")
    description = _text(element, "Description") or ""
    numeric = element.find("Numeric")
    if numeric is not None:
        accuracy_text = _text(numeric, "Accuracy") or "0"
        if not _count(accuracy_text):
            raise _bad(f"{table} {name}: Accuracy {accuracy_text!r}")
        return Column(name, ColumnType.NUMERIC, None, int(accuracy_text), description)
    if element.find("AlphaNumeric") is not None:
        max_text = _text(element, "MaxLength")
        if max_text is not None and not _count(max_text):
            raise _bad(f"{table} {name}: MaxLength {max_text!r}")
        max_length = int(max_text) if max_text else None
        return Column(name, ColumnType.ALPHANUMERIC, max_length, 0, description)
    if element.find("Date") is not None:
        return Column(name, ColumnType.DATE, None, 0, description)
    raise _bad(f"{table} {name}: no data type")


def _read_table(element: ET.Element) -> tuple[Table, TableDialect]:
    url = _text(element, "URL")
    if not url:
        raise _bad("a Table without URL")
    variable = element.find("VariableLength")
    if variable is None:
        raise _bad(f"{url}: only VariableLength tables are DSFinV-K tables")
    columns: list[Column] = []
    keys: list[str] = []
    foreign: list[ForeignKey] = []
    for child in variable:
        if child.tag in ("VariablePrimaryKey", "VariableColumn"):
            column = _read_column(child, url)
            columns.append(column)
            if child.tag == "VariablePrimaryKey":
                keys.append(column.name)
        elif child.tag == "ForeignKey":
            names = tuple(n.text or "" for n in child.findall("Name"))
            alias = {a.findtext("From", ""): a.findtext("To", "") for a in child.findall("Alias")}
            foreign.append(
                ForeignKey(
                    names, child.findtext("References", ""), tuple(alias.get(n, n) for n in names)
                )
            )
    range_el = element.find("Range")
    first = None
    if range_el is not None:
        from_text = _text(range_el, "From") or ""
        first = int(from_text) if _count(from_text) else None
    dialect = TableDialect(
        utf8=element.find("UTF8") is not None,
        decimal_symbol=_text(element, "DecimalSymbol"),
        digit_grouping_symbol=_text(element, "DigitGroupingSymbol"),
        first_row=first,
        column_delimiter=_text(variable, "ColumnDelimiter"),
        record_delimiter=_text(variable, "RecordDelimiter"),
        text_encapsulator=_text(variable, "TextEncapsulator"),
    )
    table = Table(
        url,
        _text(element, "Name") or url,
        _text(element, "Description") or "",
        tuple(columns),
        tuple(keys),
        tuple(foreign),
    )
    return table, dialect


def _refuse_entities(data: bytes) -> None:
    """FormatError for an entity declaration in any encoding expat reads (the byte
    test above sees only ASCII-compatible ones); other XML errors are left to the
    parse that follows."""

    def refuse(*_args: object) -> None:
        raise _bad("entity declarations are not allowed")

    parser = expat.ParserCreate()
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(data, True)
    except (expat.ExpatError, LookupError, ValueError):
        return


def read_index_xml(data: bytes) -> IndexXml:
    """Parse index.xml (FormatError ``E_INDEX_XML``); entity declarations are refused."""
    if b"<!ENTITY" in data:
        raise _bad("entity declarations are not allowed")
    _refuse_entities(data)  # also in UTF-16 or another declared encoding
    match = _DOCTYPE.search(data[:4096])
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, LookupError, ValueError) as exc:  # LookupError: bad encoding name
        raise _bad(f"not well-formed XML ({exc})") from None
    if root.tag != "DataSet":
        raise _bad(f"root element is {root.tag}, not DataSet")
    media = root.findall("Media")
    if len(media) != 1:
        raise _bad(f"{len(media)} Media elements, a DSFinV-K export has one")
    supplier_el = root.find("DataSupplier")
    supplier = None
    if supplier_el is not None:
        supplier = DataSupplier(
            _text(supplier_el, "Name") or "",
            _text(supplier_el, "Location") or "",
            _text(supplier_el, "Comment") or "",
        )
    tables: list[Table] = []
    dialects: dict[str, TableDialect] = {}
    for element in media[0].findall("Table"):
        table, dialect = _read_table(element)
        tables.append(table)
        dialects[table.file] = dialect
    return IndexXml(
        doctype_system=match.group(1).decode("utf-8", "replace") if match else None,
        version=_text(root, "Version") or "",
        supplier=supplier,
        media_name=_text(media[0], "Name") or "",
        tables=tuple(tables),
        dialects=dialects,
    )
