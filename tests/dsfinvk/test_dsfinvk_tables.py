"""Table definitions against column lists written from the DSFinV-K 2.4 text."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from opentse.formats.dsfinvk import tables as T

KEY = ["Z_KASSE_ID", "Z_ERSTELLUNG", "Z_NR"]

# Written from DSFinV-K 2.4 (3.2.1 Bonkopf, 3.1.1 Bonpos, 4.7 Stamm_TSE,
# 3.2.6 TSE_Transaktionen, 4.1 Stamm_Abschluss), not from tables.py.
OFFICIAL = {
    "transactions.csv": [
        *KEY,
        "BON_ID",
        "BON_NR",
        "BON_TYP",
        "BON_NAME",
        "TERMINAL_ID",
        "BON_STORNO",
        "BON_START",
        "BON_ENDE",
        "BEDIENER_ID",
        "BEDIENER_NAME",
        "UMS_BRUTTO",
        "KUNDE_NAME",
        "KUNDE_ID",
        "KUNDE_TYP",
        "KUNDE_STRASSE",
        "KUNDE_PLZ",
        "KUNDE_ORT",
        "KUNDE_LAND",
        "KUNDE_USTID",
        "BON_NOTIZ",
    ],
    "lines.csv": [
        *KEY,
        "BON_ID",
        "POS_ZEILE",
        "GUTSCHEIN_NR",
        "ARTIKELTEXT",
        "POS_TERMINAL_ID",
        "GV_TYP",
        "GV_NAME",
        "INHAUS",
        "P_STORNO",
        "AGENTUR_ID",
        "ART_NR",
        "GTIN",
        "WARENGR_ID",
        "WARENGR",
        "MENGE",
        "FAKTOR",
        "EINHEIT",
        "STK_BR",
    ],
    "tse.csv": [
        *KEY,
        "TSE_ID",
        "TSE_SERIAL",
        "TSE_SIG_ALGO",
        "TSE_ZEITFORMAT",
        "TSE_PD_ENCODING",
        "TSE_PUBLIC_KEY",
        "TSE_ZERTIFIKAT_I",
        "TSE_ZERTIFIKAT_II",
    ],
    "transactions_tse.csv": [
        *KEY,
        "BON_ID",
        "TSE_ID",
        "TSE_TANR",
        "TSE_TA_START",
        "TSE_TA_ENDE",
        "TSE_TA_VORGANGSART",
        "TSE_TA_SIGZ",
        "TSE_TA_SIG",
        "TSE_TA_FEHLER",
        "TSE_VORGANGSDATEN",
    ],
    "cashpointclosing.csv": [
        *KEY,
        "Z_BUCHUNGSTAG",
        "TAXONOMIE_VERSION",
        "Z_START_ID",
        "Z_ENDE_ID",
        "NAME",
        "STRASSE",
        "PLZ",
        "ORT",
        "LAND",
        "STNR",
        "USTID",
        "Z_SE_ZAHLUNGEN",
        "Z_SE_BARZAHLUNGEN",
    ],
    "transactions_vat.csv": [
        *KEY,
        "BON_ID",
        "UST_SCHLUESSEL",
        "BON_BRUTTO",
        "BON_NETTO",
        "BON_UST",
    ],
    "datapayment.csv": [
        *KEY,
        "BON_ID",
        "ZAHLART_TYP",
        "ZAHLART_NAME",
        "ZAHLWAEH_CODE",
        "ZAHLWAEH_BETRAG",
        "BASISWAEH_BETRAG",
    ],
    "payment.csv": [*KEY, "ZAHLART_TYP", "ZAHLART_NAME", "Z_ZAHLART_BETRAG"],
}

FILES = [
    "cashpointclosing.csv",
    "location.csv",
    "cashregister.csv",
    "slaves.csv",
    "pa.csv",
    "tse.csv",
    "vat.csv",
    "businesscases.csv",
    "payment.csv",
    "cash_per_currency.csv",
    "transactions.csv",
    "transactions_vat.csv",
    "allocation_groups.csv",
    "datapayment.csv",
    "references.csv",
    "transactions_tse.csv",
    "lines.csv",
    "lines_vat.csv",
    "itemamounts.csv",
    "subitems.csv",
]


@pytest.mark.parametrize("file", sorted(OFFICIAL))
def test_columns_are_the_official_ones(file: str) -> None:
    assert list(T.TABLE_BY_FILE[file].column_names) == OFFICIAL[file]


def test_all_twenty_tables_each_starting_with_the_closing_key() -> None:
    assert sorted(t.file for t in T.TABLES) == sorted(FILES)
    assert len(T.TABLES) == 20
    assert sum(len(t.columns) for t in T.TABLES) == 219
    for table in T.TABLES:
        assert list(table.column_names[:3]) == KEY
        assert table.column_names[: len(table.primary_key)] == table.primary_key


def test_types_lengths_and_accuracy() -> None:
    tx = T.TABLE_BY_FILE["transactions.csv"]
    assert tx.column("BON_ID").max_length == 40
    assert tx.column("UMS_BRUTTO").type is T.ColumnType.NUMERIC
    assert tx.column("UMS_BRUTTO").accuracy == 2
    assert tx.column("BON_NOTIZ").max_length == 255
    lines = T.TABLE_BY_FILE["lines.csv"]
    assert lines.column("MENGE").accuracy == 3
    assert lines.column("STK_BR").accuracy == 5
    assert T.TABLE_BY_FILE["lines_vat.csv"].column("POS_UST").accuracy == 5
    tse = T.TABLE_BY_FILE["tse.csv"]
    assert tse.column("TSE_SERIAL").max_length == 68
    assert tse.column("TSE_ZERTIFIKAT_I").max_length == 1000
    assert T.TABLE_BY_FILE["transactions_tse.csv"].column("TSE_TA_SIG").max_length == 512


def test_tse_table_grows_for_long_certificates() -> None:
    assert T.tse_table(2) is T.TSE
    wide = T.tse_table(4)
    assert wide.column_names[-2:] == ("TSE_ZERTIFIKAT_III", "TSE_ZERTIFIKAT_IV")
    assert wide.column("TSE_ZERTIFIKAT_IV").max_length == 1000


def test_foreign_keys_reference_existing_keys() -> None:
    for table in T.TABLES:
        for fk in table.foreign_keys:
            target = T.TABLE_BY_NAME[fk.references]
            assert set(fk.ref_columns) <= set(target.primary_key), (table.file, fk)
            assert set(fk.columns) <= set(table.column_names)


@pytest.mark.parametrize(
    ("key", "day", "rate"),
    [
        (1, date(2020, 6, 30), "19.00"),
        (1, date(2020, 7, 1), "16.00"),
        (2, date(2020, 12, 31), "5.00"),
        (2, date(2021, 1, 1), "7.00"),
        (1, date(2026, 11, 20), "19.00"),
        (3, date(2022, 6, 1), "9.50"),
        (5, date(2026, 11, 20), "0.00"),
        (21, date(2021, 3, 1), "16.00"),
    ],
)
def test_vat_rate_by_key_and_date(key: int, day: date, rate: str) -> None:
    assert T.vat_rate(key, day) == Decimal(rate)


def test_vat_keys_not_valid_on_a_date() -> None:
    assert T.vat_rate(21, date(2020, 9, 1)) is None  # historic 16 % only after it ended
    assert T.vat_rate(8, date(2022, 12, 31)) is None  # § 12 Abs. 3 from 2023
    assert T.vat_rate(9, date(2024, 1, 1)) is None


def test_vat_slots() -> None:
    assert [T.vat_slot(k) for k in (1, 2, 3, 4, 5, 6, 7, 8)] == [1, 2, 3, 4, 5, 5, 5, 5]
    assert [T.vat_slot(k) for k in (11, 12, 21, 22, 13, 43)] == [1, 2, 1, 2, 3, 3]
    assert T.vat_slot(1000) is None
