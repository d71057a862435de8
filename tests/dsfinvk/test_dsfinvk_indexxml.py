"""index.xml: well-formed, DTD-valid (lxml), DOCTYPE, and read back to the same tables."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
from lxml import etree

from opentse.errors import FormatError
from opentse.formats.dsfinvk import tables as T
from opentse.formats.dsfinvk.export import gdpdu_dtd
from opentse.formats.dsfinvk.indexxml import DataSupplier, build_index_xml, read_index_xml


def _dtd() -> etree.DTD:
    # libxml2 refuses the DTD's Media model (Command*, Table*, Command*) as
    # non-deterministic; for documents without Command this narrower model is equal.
    text = gdpdu_dtd().replace(
        b"(Name, Command*, Table*, Command*, AcceptNoTables?)", b"(Name, Table*, AcceptNoTables?)"
    )
    assert text != gdpdu_dtd()
    return etree.DTD(io.BytesIO(text))


@pytest.mark.parametrize("keys", [True, False])
def test_index_xml_is_valid_against_the_gdpdu_dtd(keys: bool) -> None:
    data = build_index_xml(T.TABLES, DataSupplier("Café & Co <GmbH>", "Berlin", ""), keys=keys)
    dtd = _dtd()
    doc = etree.parse(io.BytesIO(data))
    assert dtd.validate(doc), dtd.error_log.filter_from_errors()
    assert doc.docinfo.system_url == "gdpdu-01-09-2004.dtd"
    assert doc.docinfo.root_name == "DataSet"


def test_stdlib_parses_it_and_sees_every_table() -> None:
    data = build_index_xml(T.TABLES)
    assert b'<!DOCTYPE DataSet SYSTEM "gdpdu-01-09-2004.dtd">' in data
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    root = ET.fromstring(data)
    tables = root.findall("Media/Table")
    assert [t.findtext("URL") for t in tables] == [t.file for t in T.TABLES]
    for element, table in zip(tables, T.TABLES, strict=True):
        assert element.findtext("DecimalSymbol") == ","
        assert element.findtext("VariableLength/ColumnDelimiter") == ";"
        assert element.findtext("VariableLength/RecordDelimiter") == "\r\n"
        assert element.findtext("VariableLength/TextEncapsulator") == '"'
        keys = [k.findtext("Name") for k in element.findall("VariableLength/VariablePrimaryKey")]
        columns = [c.findtext("Name") for c in element.findall("VariableLength/VariableColumn")]
        assert tuple(keys) == table.primary_key
        assert tuple(keys + columns) == table.column_names


def test_subitems_foreign_key_uses_an_alias() -> None:
    root = ET.fromstring(build_index_xml(T.TABLES))
    sub = next(t for t in root.findall("Media/Table") if t.findtext("URL") == "subitems.csv")
    fk = [
        f
        for f in sub.findall("VariableLength/ForeignKey")
        if f.findtext("References") == "Stamm_USt"
    ]
    assert len(fk) == 1
    assert fk[0].findtext("Alias/From") == "ZI_UST_SCHLUESSEL"
    assert fk[0].findtext("Alias/To") == "UST_SCHLUESSEL"


def test_read_back_gives_the_same_tables() -> None:
    tables = (*T.TABLES[:5], T.tse_table(3), *T.TABLES[6:])
    index = read_index_xml(build_index_xml(tables, DataSupplier("A", "B", "C")))
    assert index.doctype_system == "gdpdu-01-09-2004.dtd"
    assert index.supplier == DataSupplier("A", "B", "C")
    assert index.version == "1.0"
    for read, original in zip(index.tables, tables, strict=True):
        assert read.file == original.file
        assert read.name == original.name
        assert read.columns == original.columns
        assert read.primary_key == original.primary_key
        assert read.foreign_keys == original.foreign_keys
        dialect = index.dialects[read.file]
        assert dialect.utf8 and dialect.first_row == 2
        assert dialect.record_delimiter == "\r\n"


def test_reader_refuses_entities_and_garbage() -> None:
    with pytest.raises(FormatError) as exc:
        read_index_xml(b'<!DOCTYPE x [<!ENTITY a "b">]><DataSet/>')
    assert exc.value.code == "E_INDEX_XML"
    with pytest.raises(FormatError):
        read_index_xml(b"<DataSet><Media>")
    with pytest.raises(FormatError):
        read_index_xml(b"<Other/>")
    with pytest.raises(FormatError):  # found by the damage test: unknown encoding name
        read_index_xml(b'<?xml version="1.0" encoding="TF-8"?><DataSet/>')


def test_reader_accepts_a_byte_order_mark_and_no_keys() -> None:
    index = read_index_xml(b"\xef\xbb\xbf" + build_index_xml(T.TABLES, keys=False))
    assert index.doctype_system == "gdpdu-01-09-2004.dtd"
    assert [t.column_names for t in index.tables] == [t.column_names for t in T.TABLES]
    assert all(t.primary_key == () for t in index.tables)
