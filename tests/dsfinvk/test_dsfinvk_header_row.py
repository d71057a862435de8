"""A CSV whose header row departs from index.xml: the finding names the columns
(position, the header's word, index.xml's), and the rows are still read in
index.xml's column order, as the auditor's GDPdU tool reads them (index.xml's
<Range><From>2: the header row is not read). The checker once dropped the whole
table: one misspelt header word in transactions.csv gave 27 errors about receipts
that were all there ('Z_START_ID ... is no receipt', closing sums without records)
and '0 Bons, 0 TSE signatures verified', while the message about the header itself
did not say which column differed."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from dsfinvk_support import demo_day, edit
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.formats.dsfinvk.check import check_export, header_difference
from opentse.formats.dsfinvk.export import write_export


@pytest.fixture
def export(tmp_path: Path) -> Path:
    return write_export([demo_day()], tmp_path / "export")


def _header(export: Path, file: str) -> list[str]:
    text = (export / file).read_text("utf-8")
    return next(csv.reader(io.StringIO(text), delimiter=";"))


def test_a_misspelt_header_word_is_one_finding_naming_it(export: Path) -> None:
    column = _header(export, "transactions.csv").index("UMS_BRUTTO") + 1  # stdlib reader
    edit(export, "transactions.csv", lambda b: b.replace(b"UMS_BRUTTO", b"UMS_BRUTTX", 1))
    findings = check_export(export)
    assert [(f.code, f.file, f.line) for f in findings] == [("E_CSV_HEADER", "transactions.csv", 1)]
    assert f"column {column} 'UMS_BRUTTX' where index.xml has 'UMS_BRUTTO'" in findings[0].message


def test_rows_are_read_in_index_order_whatever_the_header_says(export: Path) -> None:
    """BON_NR and BON_TYP swapped in the header and in every row: read as index.xml
    orders them, BON_TYP holds numbers (a value-list error) and the signatures, whose
    processData starts with BON_TYP, no longer verify."""
    names = _header(export, "transactions.csv")
    nr, typ = names.index("BON_NR"), names.index("BON_TYP")

    def swap(data: bytes) -> bytes:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=";"))
        for row in rows:
            if row:
                row[nr], row[typ] = row[typ], row[nr]
        out = io.StringIO(newline="")
        csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(rows)
        return out.getvalue().encode("utf-8")

    edit(export, "transactions.csv", swap)
    findings = check_export(export)
    header = [f for f in findings if f.code == "E_CSV_HEADER"]
    assert len(header) == 1
    assert f"column {nr + 1} 'BON_TYP' where index.xml has 'BON_NR'" in header[0].message
    assert f"column {typ + 1} 'BON_NR' where index.xml has 'BON_TYP'" in header[0].message
    flagged = {(f.file, f.column) for f in findings if f.line and f.line > 1}
    assert ("transactions.csv", "BON_TYP") in flagged


def test_an_extra_header_column_is_named_with_the_counts(export: Path) -> None:
    edit(export, "vat.csv", lambda b: b.replace(b"\r\n", b";EXTRA\r\n", 1))
    findings = check_export(export)
    assert [(f.code, f.file) for f in findings] == [("E_CSV_HEADER", "vat.csv")]
    assert "'EXTRA' where index.xml has none" in findings[0].message
    assert "columns, index.xml declares" in findings[0].message


_WORD = st.text(alphabet="ABCXYZ_", min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(st.lists(_WORD, min_size=1, max_size=12), st.lists(_WORD, min_size=1, max_size=12))
def test_header_difference_names_every_differing_position(
    found: list[str], names: list[str]
) -> None:
    text = header_difference(tuple(found), tuple(names))
    differing = [
        i
        for i in range(max(len(found), len(names)))
        if (found[i] if i < len(found) else None) != (names[i] if i < len(names) else None)
    ]
    for index in differing[:5]:
        assert f"column {index + 1} " in text
    if len(differing) > 5:
        assert f"; {len(differing) - 5} more" in text
    assert ("declares" in text) == (len(found) != len(names))
    assert (text == "") == (found == names)


def test_the_cross_check_reads_the_rows_in_index_order_too(export: Path) -> None:
    """A misspelt TSE_TANR in the header: the cross-check read the rows by the
    header's words, found no TSE_TANR and compared no Bon (every TAR transaction
    then 'has no Bon'); it reads them as the check does."""
    from opentse.verify.crosscheck_read import read_dsfinvk

    before = read_dsfinvk(export)
    assert before.findings == [] and len(before.bons) == 8
    edit(export, "transactions_tse.csv", lambda b: b.replace(b"TSE_TANR", b"TSE_TANX", 1))
    edit(export, "tse.csv", lambda b: b.replace(b"TSE_SERIAL", b"TSE_SERIEN", 1))
    after = read_dsfinvk(export)
    assert after.findings == []
    assert [(b.serial, b.number, b.signature) for b in after.bons] == [
        (b.serial, b.number, b.signature) for b in before.bons
    ]
