"""How ``dsfinvk check`` reads an amount spelt with fewer places than the column's
Accuracy (``11,9`` or ``10`` in a 5-place column) or with leading zeros
(``017,25``): as the same amount, no finding. index.xml's ``<Accuracy>`` gives
the number of decimal places of the column (GDPdU Beschreibungsstandard); DSFinV-K
2.4 asks for the decimal comma and no grouping, and we found no word in either that
makes a shorter spelling invalid, and an auditor's tool reads it as the same number.
More places than the Accuracy are an error (a value the column cannot hold);
docs/dsfinvk.md says so. opentse's own exports always write exactly the Accuracy."""

from __future__ import annotations

from pathlib import Path

from dsfinvk_support import demo_day, edit

from opentse.formats.dsfinvk.check import check_export, check_export_summary
from opentse.formats.dsfinvk.export import write_export


def test_fewer_places_and_leading_zeros_read_as_the_same_amount(tmp_path: Path) -> None:
    export = write_export([demo_day()], tmp_path / "export")
    edit(
        export,
        "datapayment.csv",
        lambda b: b.replace(b";Bar;;EUR;;17,25\r\n", b";Bar;;EUR;;017,25\r\n", 1),
    )
    edit(
        export,
        "lines_vat.csv",
        lambda b: b.replace(b";11,90000;10,00000;1,90000", b";11,9;10;1,90", 1),
    )
    edit(export, "transactions.csv", lambda b: b.replace(b";17,25;", b";0017,25;", 1))
    findings, summary = check_export_summary(export)
    assert findings == []
    # the amounts went into the rebuilt processData as 17.25 / 11.90: signatures verify
    assert summary["signatures_verified"] == 8


def test_more_places_than_the_accuracy_are_an_error(tmp_path: Path) -> None:
    export = write_export([demo_day()], tmp_path / "export")
    edit(export, "transactions.csv", lambda b: b.replace(b";17,25;", b";17,250;", 1))
    codes = [(f.code, f.column) for f in check_export(export)]
    assert ("E_CSV_DECIMALS", "UMS_BRUTTO") in codes
