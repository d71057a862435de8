"""The cross-check of an export that holds closings 1 and 3 of a register (not 2):
the TSE transactions of closing 2 lie between the export's first Bon and its last
closing, but belong to a closing the export does not hold, so they are no finding
(they were E_XC_TSE_NOT_IN_DSFINVK errors); a transaction without a Bon inside an
exported closing still is."""

from __future__ import annotations

import json
import time
from pathlib import Path

from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.formats.dsfinvk.export import write_export
from opentse.installation import Installation
from opentse.register.books import Books
from opentse.testing import ready_tse
from opentse.verify import crosscheck_read as xr

APP = build_app()
CLIENT = "KASSE-S"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.output


def test_transactions_of_a_closing_left_out_are_not_findings(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "t", client_id=CLIENT, logout=True)
    base = ["--data", str(data), "--tss", "t", "--client", CLIENT]
    company = ["--company", "C", "--street", "S", "--postal-code", "1", "--city", "X"]
    company += ["--tax-number", "123"]
    for z in range(3):
        code, out = run("pos", "sell", *base, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80",
                        "--json")  # fmt: skip
        assert code == 0 and json.loads(out)["tse_failed"] is False, out
        if z == 2:  # a transaction without a Bon in closing 3, a second after its Bon
            time.sleep(1.1)
            with Installation.open(data) as inst:
                started = inst.service.start_transaction("t", CLIENT, b"", "SonstigerVorgang")
                inst.service.finish_transaction(
                    "t", CLIENT, started.transaction_number, b"Schublade", "SonstigerVorgang"
                )
        code, out = run("pos", "close", *base, "--counted-cash", f"{1.80 * (z + 1):.2f}",
                        *(company if z == 0 else []))  # fmt: skip
        assert code == 0, out
    books = Books(data / "pos" / f"{CLIENT}.db")
    try:
        z1, _z2, z3 = (day.closing for day in books.closed_days())
    finally:
        books.close_file()
    export = write_export([z1, z3], tmp_path / "z1-z3")
    tar = tmp_path / "tse.tar"
    code, out = run("export", str(tar), "--tss", "t", "--data", str(data))
    assert code == 0, out
    result = xr.cross_check_files(export, tar)
    (finding,) = result.findings  # closing 2's transaction is none of them
    assert finding.code == "E_XC_TSE_NOT_IN_DSFINVK", finding
    assert "SonstigerVorgang" in finding.message
    assert result.summary["bons_matched"] == 2
    assert result.summary["tar_transactions_in_scope"] == 3
