"""A sale paid by card with cash given and all of it handed back as change: the
register signs no cash payment (its net is 0.00), the export has the cash and the
change rows. The check rebuilt 'Beleg^...^8.99:Unbar_0.00:Bar' from them and
reported E_PROCESSDATA_MISMATCH and E_SIGNATURE_INVALID for a correct receipt."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.installation import Installation
from opentse.testing import ready_tse

APP = build_app()
TSS, CLIENT = "tse-z", "KASSE-Z"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.output


def test_cash_handed_back_in_full_checks_clean(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Installation.open(data) as inst:
        ready_tse(inst.service, TSS, client_id=CLIENT, logout=True)
    base = ["--data", str(data), "--tss", TSS, "--client", CLIENT]
    code, out = run(
        "pos", "sell", *base, "--line", "Wein:1:8.99:1", "--pay", "karte:8.99", "--pay",
        "bar:1.00", "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["tse_failed"] is False, out
    company = ["--company", "C GmbH", "--street", "Weg 1", "--postal-code", "12345"]
    code, out = run("pos", "close", *base, "--counted-cash", "0.00", *company, "--city", "Ort",
                    "--vat-id", "DE123456789")  # fmt: skip
    assert code == 0, out
    export = tmp_path / "dsfinvk"
    code, out = run("dsfinvk", "export", "--data", str(data), "--register", CLIENT, str(export))
    assert code == 0, out
    rows = (export / "datapayment.csv").read_text(encoding="utf-8")
    assert ";Bar;;EUR;;1,00" in rows and ";Bar;Rückgeld;EUR;;-1,00" in rows
    signed = (export / "transactions_tse.csv").read_bytes().decode("utf-8")
    assert "Beleg^8.99_0.00_0.00_0.00_0.00^8.99:Unbar\r\n" in signed
    code, out = run("dsfinvk", "check", str(export), "--json")
    body = json.loads(out)
    assert code == 0 and body["findings"] == [], out
    assert body["summary"]["signatures_verified"] == 1


def test_a_register_that_signs_the_zero_cash_sum_checks_clean_too(tmp_path: Path) -> None:
    """Another register may sign 'Beleg^...^8.99:Unbar_0.00:Bar' for the same sale:
    both spellings of the same payments verify."""
    from decimal import Decimal

    from dsfinvk_support import DayBuilder, FakeTSE, line

    from opentse.formats.dsfinvk.check import check_export
    from opentse.formats.dsfinvk.export import write_export
    from opentse.formats.dsfinvk.model import Payment

    day = DayBuilder(FakeTSE())
    payments = [Payment("ECKarte", Decimal("8.99")), Payment("Bar", Decimal("1.00"))]
    payments.append(Payment("Bar", Decimal("-1.00")))
    receipt = day.add([line(1, "Wein", 1, "8.99")], payments)
    assert receipt.tse.process_data.endswith("^8.99:Unbar_0.00:Bar")
    assert check_export(write_export([day.closing()], tmp_path / "e")) == []
