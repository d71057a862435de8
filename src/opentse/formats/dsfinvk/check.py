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

This module runs the rules in order; each lives in its own module:
:mod:`.source` (folder or ZIP), :mod:`.reading` (index.xml, CSV files, fields),
:mod:`.receipts` (keys, sums, VAT rates), :mod:`.numbering` (BON_NR and TSE_TANR
gaps), :mod:`.closings` (closing totals), :mod:`.signatures` with :mod:`.rebuild`
(TSE signatures), :mod:`.findings` (what is found and how it is named).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentse.errors import FormatError
from opentse.formats.dsfinvk.closings import check_closings
from opentse.formats.dsfinvk.findings import BonSigned, CheckState, Finding
from opentse.formats.dsfinvk.numbering import check_bon_numbers, check_tse_numbers
from opentse.formats.dsfinvk.reading import header_difference, lenient_records, read_export
from opentse.formats.dsfinvk.receipts import check_keys, check_receipts, check_vat_rates
from opentse.formats.dsfinvk.signatures import check_signatures
from opentse.formats.dsfinvk.source import ZIP_ERRORS, ExportSource, looks_tar, looks_zip

__all__ = [
    "BonSigned",
    "Finding",
    "check_export",
    "check_export_bons",
    "check_export_summary",
    "header_difference",
]

# the names verify.crosscheck_read reads the DSFinV-K side with
_Source = ExportSource
_lenient_records = lenient_records


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
        source = ExportSource(path)
    except ZIP_ERRORS:
        what = "a ZIP file that cannot be read (cut short?)" if looks_zip(path) else None
        if what is None and looks_tar(path):
            what = (
                "a TAR archive, not a DSFinV-K export (a TSE's export? verify it with "
                "`opentse verify`, or give it here as --tse-export)"
            )
        message = what or "neither a folder nor a ZIP file"
        return [Finding("E_EXPORT_ZIP", str(path), message)], {}, []
    try:
        check = CheckState(source)
        try:
            _run(check)
        except FormatError as exc:  # a file of the ZIP cannot be read at all
            check.add(exc.code, str(path), exc.message)
        return check.findings, check.summary(), check.bons
    finally:
        source.close()


def _run(check: CheckState) -> None:
    """Every rule, in the order its findings are reported."""
    if not read_export(check):
        return
    check_keys(check)
    check_receipts(check)
    check_bon_numbers(check)
    check_tse_numbers(check)
    check_closings(check)
    check_vat_rates(check)
    check_signatures(check)
