"""``dsfinvk export --closed-only``: an inspection during the day (Kassen-Nachschau)
gets the closings made so far although today has receipts not closed yet; the export
names what it leaves out and still passes the checker. Without the flag the range is
refused as before (E_DSFINVK_NOT_CLOSED)."""

from __future__ import annotations

import json
import zipfile
from datetime import datetime
from pathlib import Path

from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.installation import Installation
from opentse.register.shoptime import shop_zone
from opentse.testing import ready_tse

APP = build_app()
TSS, CLIENT = "tse-n", "KASSE-N"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.output


def bon_ids(export: Path) -> set[str]:
    with zipfile.ZipFile(export) as archive:
        lines = archive.read("transactions.csv").decode("utf-8").splitlines()
    header = lines[0].split(";")
    column = header.index("BON_ID")
    return {line.split(";")[column].strip('"') for line in lines[1:]}


def test_closed_only_exports_the_closings_and_names_the_open_day(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Installation.open(data) as inst:
        ready_tse(inst.service, TSS, client_id=CLIENT, logout=True)
    base = ["--data", str(data), "--tss", TSS, "--client", CLIENT]

    def sell(line: str, pay: str) -> str:
        code, out = run("pos", "sell", *base, "--line", line, "--pay", pay, "--json")
        assert code == 0, out
        return str(json.loads(out)["receipt_ref"])

    closed = {sell("Brot:1:3.20:1", "bar:3.20"), sell("Kaffee:2:2.50:1", "bar:5.00")}
    company = ["--company", "Bäckerei Korn", "--street", "Hauptstr. 1", "--postal-code", "10115",
               "--city", "Berlin", "--tax-number", "123/456/78901"]  # fmt: skip
    code, out = run("pos", "close", *base, "--counted-cash", "8.20", *company, "--json")
    assert code == 0, out
    still_open = sell("Kuchen:1:2.90:2", "bar:2.90")
    today = datetime.now(shop_zone()).date().isoformat()
    export = ["dsfinvk", "export", "--data", str(data), "--register", CLIENT]

    code, out = run(*export, str(tmp_path / "refused.zip"))
    assert code == 1 and "E_DSFINVK_NOT_CLOSED" in out and "--closed-only" in out

    midday = tmp_path / "midday.zip"
    code, out = run(*export, "--closed-only", str(midday), "--json")
    assert code == 0, out
    summary = json.loads(out)
    assert summary["closings"] == [1] and summary["receipts"] == 2
    assert summary["not_closed"] == {"days": [today], "open_receipts": 1}
    assert closed <= bon_ids(midday) and still_open not in bon_ids(midday)
    assert run("dsfinvk", "check", str(midday))[0] == 0

    code, out = run(*export, "--closed-only", str(tmp_path / "text.zip"))
    assert code == 0 and f"not in it: the receipts of {today}, not closed yet (1 " in out

    # after the closing nothing is left out, and the flag changes nothing
    code, out = run("pos", "close", *base, "--counted-cash", "11.10", "--json")
    assert code == 0, out
    code, out = run(*export, "--closed-only", str(tmp_path / "evening.zip"), "--json")
    assert code == 0, out
    evening = json.loads(out)
    assert evening["closings"] == [1, 2] and evening["not_closed"]["days"] == []
    assert still_open in bon_ids(tmp_path / "evening.zip")
