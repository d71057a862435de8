"""A register on an opentse TSE created with --time-format utcTime: the TSE writes
UTCTime with seconds, which DSFinV-K calls utcTimeWithSeconds: the export's tse.csv
said 'utcTime' (the TSE's own name, DSFinV-K's UTCTime without seconds), and the check
rebuilt the Finish log without seconds only and called every signature of that TSE
invalid (E_SIGNATURE_INVALID, exit 1). The export now says utcTimeWithSeconds; the check
still tries both for other vendors' 'utcTime'."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.installation import Installation
from opentse.testing import ready_tse

APP = build_app()
CLIENT = "KASSE-T"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("time_format", ["utcTime", "generalizedTime"])
def test_a_session_on_a_tse_of_each_time_format_checks_clean(
    tmp_path: Path, time_format: str
) -> None:
    data = tmp_path / "data"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "t", client_id=CLIENT, time_format=time_format, logout=True)
    base = ["--data", str(data), "--tss", "t", "--client", CLIENT]
    for sale in ("Kaffee:2:2.50:1", "Brot:1:3.20:2"):
        code, out = run("pos", "sell", *base, "--line", sale, "--pay", "bar:10.00", "--json")
        assert code == 0 and json.loads(out)["tse_failed"] is False, out
    company = ["--company", "C", "--street", "S", "--postal-code", "1", "--city", "X"]
    code, out = run("pos", "close", *base, "--counted-cash", "8.20", *company,
                    "--tax-number", "123")  # fmt: skip
    assert code == 0, out
    export = tmp_path / "dsfinvk"
    code, out = run("dsfinvk", "export", "--data", str(data), "--register", CLIENT, str(export))
    assert code == 0, out
    # DSFinV-K's name: utcTime there is UTCTime without seconds, which DER never writes
    zeitformat = {"utcTime": "utcTimeWithSeconds"}.get(time_format, time_format)
    assert f";{zeitformat};" in (export / "tse.csv").read_bytes().decode("utf-8")
    code, out = run("dsfinvk", "check", str(export), "--json")
    body = json.loads(out)
    assert code == 0 and body["findings"] == [], out
    assert body["summary"]["signatures_verified"] == body["summary"]["bons_with_tse_data"] == 2
