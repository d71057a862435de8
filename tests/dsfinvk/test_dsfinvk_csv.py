"""The CSV dialect, checked against hand-written bytes and Python's csv module."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.errors import FormatError
from opentse.formats.dsfinvk import tables as T
from opentse.formats.dsfinvk.csvwriter import (
    CsvWriter,
    format_number,
    parse_number,
    parse_timestamp,
    read_records,
)

PAYMENT = T.TABLE_BY_FILE["payment.csv"]
LINES = T.TABLE_BY_FILE["lines.csv"]
TX = T.TABLE_BY_FILE["transactions.csv"]
BERLIN = timezone(timedelta(hours=1))
CREATED = datetime(2026, 11, 20, 23, 0, tzinfo=BERLIN)


def write(table: T.Table, rows: list[dict[str, object]]) -> bytes:
    out = io.BytesIO()
    writer = CsvWriter(out, table)
    for row in rows:
        writer.write(row)  # type: ignore[arg-type]
    return out.getvalue()


def key() -> dict[str, object]:
    return {"Z_KASSE_ID": "K1", "Z_ERSTELLUNG": CREATED, "Z_NR": 7}


def test_decimal_comma_no_thousands_separator_crlf() -> None:
    data = write(
        PAYMENT, [{**key(), "ZAHLART_TYP": "Bar", "Z_ZAHLART_BETRAG": Decimal("1234567.89")}]
    )
    assert data == (
        b"Z_KASSE_ID;Z_ERSTELLUNG;Z_NR;ZAHLART_TYP;ZAHLART_NAME;Z_ZAHLART_BETRAG\r\n"
        b"K1;2026-11-20T23:00:00+01:00;7;Bar;;1234567,89\r\n"
    )


def test_money_two_places_quantities_three_vat_amounts_five() -> None:
    assert format_number(Decimal("5"), 2) == "5,00"
    assert format_number(Decimal("-0.5"), 3) == "-0,500"
    assert format_number(Decimal("-0.00"), 2) == "0,00"
    assert format_number(12, 5) == "12,00000"
    assert format_number(Decimal("1E+3"), 2) == "1000,00"


def test_quoting_only_where_needed() -> None:
    data = write(
        LINES,
        [
            {
                **key(),
                "BON_ID": "B1",
                "POS_ZEILE": "1",
                "ARTIKELTEXT": 'Kaffee; "groß"',
                "GV_TYP": "Umsatz",
                "MENGE": Decimal("1.5"),
                "INHAUS": True,
            },
            {
                **key(),
                "BON_ID": "B1",
                "POS_ZEILE": "2",
                "ARTIKELTEXT": "Zwei\r\nZeilen",
                "GV_TYP": "Umsatz",
                "INHAUS": False,
            },
        ],
    )
    records = data.split(b"\r\n")
    assert records[1] == (
        b'K1;2026-11-20T23:00:00+01:00;7;B1;1;;"Kaffee; ""gro\xc3\x9f""";;Umsatz;;1;;;;;;;1,500;;;'
    )
    assert b';"Zwei\r\nZeilen";' in data
    assert b";0;" in data  # INHAUS false
    # Python's csv module reads it back to the same values (an independent decoder)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=";"))
    assert rows[1][6] == 'Kaffee; "groß"'
    assert rows[2][6] == "Zwei\r\nZeilen"
    assert [r for _, r in read_records(data)] == rows


def test_too_long_names_table_and_column() -> None:
    with pytest.raises(FormatError) as exc:
        write(TX, [{**key(), "BON_ID": "x" * 41}])
    assert exc.value.code == "E_DSFINVK_LENGTH"
    assert "transactions.csv BON_ID" in str(exc.value)


def test_too_many_decimals_rejected_never_rounded() -> None:
    with pytest.raises(FormatError) as exc:
        write(PAYMENT, [{**key(), "ZAHLART_TYP": "Bar", "Z_ZAHLART_BETRAG": Decimal("1.005")}])
    assert exc.value.code == "E_DSFINVK_DECIMALS"
    assert "payment.csv Z_ZAHLART_BETRAG" in str(exc.value)


def test_wrong_types_rejected() -> None:
    with pytest.raises(FormatError) as exc:
        write(PAYMENT, [{**key(), "Z_ZAHLART_BETRAG": 1.5}])
    assert exc.value.code == "E_DSFINVK_TYPE"
    with pytest.raises(FormatError) as exc:
        write(PAYMENT, [{**key(), "Z_ERSTELLUNG": datetime(2026, 1, 1)}])
    assert exc.value.code == "E_DSFINVK_TIMEZONE"
    with pytest.raises(FormatError) as exc:
        write(PAYMENT, [{**key(), "NO_SUCH": "x"}])
    assert exc.value.code == "E_DSFINVK_COLUMN"
    with pytest.raises(FormatError):
        write(PAYMENT, [{**key(), "ZAHLART_NAME": True}])  # not a boolean column


def test_empty_table_is_header_only() -> None:
    assert (
        write(PAYMENT, [])
        == b"Z_KASSE_ID;Z_ERSTELLUNG;Z_NR;ZAHLART_TYP;ZAHLART_NAME;Z_ZAHLART_BETRAG\r\n"
    )


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"A;B\nx;y\r\n", "E_CSV_DIALECT"),  # bare LF
        (b'A;B\r\nx"y;z\r\n', "E_CSV_DIALECT"),  # quote inside a field
        (b'A;B\r\n"x"y;z\r\n', "E_CSV_DIALECT"),
        (b'A;B\r\n"x;z\r\n', "E_CSV_DIALECT"),
        (b"A;B\r\nx;y", "E_CSV_DIALECT"),  # no final CR LF
        (b"A;B\r\n\xff;y\r\n", "E_CSV_ENCODING"),
    ],
)
def test_reader_is_strict(data: bytes, code: str) -> None:
    with pytest.raises(FormatError) as exc:
        list(read_records(data))
    assert exc.value.code == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("1.234,56", "E_CSV_GROUPING"),
        ("12.50", "E_CSV_GROUPING"),
        ("1,234", "E_CSV_DECIMALS"),
        ("1 234,00", "E_CSV_NUMBER"),
        ("", "E_CSV_NUMBER"),
    ],
)
def test_number_reader_rejects(text: str, code: str) -> None:
    with pytest.raises(FormatError) as exc:
        parse_number(text, 2)
    assert exc.value.code == code


def test_number_reader_accepts() -> None:
    assert parse_number("1234567,89", 2) == Decimal("1234567.89")
    assert parse_number("-0,5", 2) == Decimal("-0.5")
    assert parse_number("3", 0) == 3


def test_timestamps_need_an_offset() -> None:
    assert parse_timestamp("2026-11-20T23:00:00+01:00") == CREATED
    assert parse_timestamp("2026-11-20T22:00:00Z") == CREATED
    with pytest.raises(FormatError):
        parse_timestamp("2026-11-20T23:00:00")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(st.characters(blacklist_categories=("Cs",)), max_size=60),
            st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False),
        ),
        max_size=5,
    )
)
def test_round_trip_against_python_csv(rows: list[tuple[str, Decimal]]) -> None:
    data = write(
        PAYMENT,
        [
            {**key(), "ZAHLART_TYP": "Bar", "ZAHLART_NAME": name, "Z_ZAHLART_BETRAG": amount}
            for name, amount in rows
        ],
    )
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=";"))
    ours = [fields for _, fields in read_records(data)]
    assert ours == parsed
    for (name, amount), fields in zip(rows, parsed[1:], strict=True):
        assert fields[4] == name
        assert parse_number(fields[5], 2) == amount
        assert "." not in fields[5]
