"""What ``dsfinvk check`` collects and how it names what it found.

A :class:`Finding` is one problem (stable code, file, CSV line, column); a
:class:`BonSigned` is a Bon whose signature was tried (``verify-receipt --dsfinvk``
compares paper receipts with these). :class:`CheckState` holds what every rule reads
(the rows of each table read so far) and appends to (findings, Bons): the rules live
in their own modules as functions of it. The naming helpers make every finding name a
Bon, a closing or an amount the way an auditor does, the same in every rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from opentse.errors import FormatError
from opentse.formats.dsfinvk.csvwriter import parse_number
from opentse.formats.dsfinvk.source import ExportSource
from opentse.formats.dsfinvk.tables import Table

ZERO = Decimal("0")
CENT = Decimal("0.01")

Row = dict[str, str]


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


class CheckState:
    """One check of one export: the tables read, the findings and Bons so far."""

    def __init__(self, source: ExportSource) -> None:
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
        closings.sort(key=lambda c: (c["register"], as_int(c["z_nr"]), c["z_nr"]))
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
            self._bon_numbers = {bon_key(r): r["BON_NR"] for _l, r in self.get("transactions.csv")}
        number = self._bon_numbers.get(bon_key(row), "")
        return (
            f"Bon {number + ' ' if number else ''}(BON_ID {row['BON_ID']}, "
            f"{closing_words(closing_key(row))})"
        )

    def num(self, file: str, line: int, row: Row, column: str) -> Decimal:
        """A numeric field as Decimal (0 when empty or unreadable; already reported)."""
        text = row.get(column, "")
        if not text:
            return ZERO
        try:
            return parse_number(text, 5)
        except FormatError:
            return ZERO


def closing_key(row: Row) -> tuple[str, str, str]:
    return (row["Z_KASSE_ID"], row["Z_ERSTELLUNG"], row["Z_NR"])


def bon_key(row: Row) -> tuple[str, str, str, str]:
    return (*closing_key(row), row["BON_ID"])


def closing_words(key: tuple[str, ...]) -> str:
    """A closing as an auditor names it: the register (Z_KASSE_ID) and Z_NR."""
    return f"register {key[0]}, Z_NR {key[2]}"


def named(columns: Iterable[str], values: Iterable[str]) -> str:
    """A key as a person reads it: ``Z_KASSE_ID KASSE-1, Z_NR 2, BON_ID B7``."""
    return ", ".join(f"{c} {v}" for c, v in zip(columns, values, strict=True))


def money(amount: Decimal) -> str:
    """An amount as money (``17.25``), not the CSV's five places or a Decimal repr;
    more places only where they are not zeros."""
    try:
        cents = amount.quantize(CENT)
    except ArithmeticError:  # too many digits to quantize: print it as it is
        return f"{amount:f}"
    return f"{cents if cents == amount else amount:f}"


def amount_words(columns: Iterable[str], values: Iterable[Decimal]) -> str:
    """Amount columns as money: ``Z_UMS_BRUTTO 11.90, Z_UMS_NETTO 10.00``."""
    return ", ".join(f"{c} {money(a)}" for c, a in zip(columns, values, strict=True))


def as_int(text: str) -> int:
    """A Numeric key field as int; 0 when empty or not an integer (reported elsewhere).
    ASCII digits only (``"²".isdigit()`` is true) and no more than int() reads."""
    if not (text.isascii() and text.isdigit()):
        return 0
    try:
        return int(text)
    except ValueError:  # over the 4,300 digits int() converts
        return 0
