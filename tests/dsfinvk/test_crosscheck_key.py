"""A DSFinV-K export whose Bons are signed with another key than the TSE whose TAR
is handed over (a key and certificate substituted in tse.csv: the receipts do not
verify against the certified TSE) is an error of the cross-check, not the warning
a TAR of another shop's TSE gives (KassenSichV §146a AO: every record protected by
the certified TSE; DSFinV-K tse.csv names that TSE)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.installation import Installation
from opentse.testing import ready_tse
from opentse.verify import crosscheck_read as xr

APP = build_app()
CLIENT = "KASSE-K"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.output


def _two_tses(folder: Path) -> tuple[Path, Path, str, str]:
    """The register sells on an own TSE (``own``) while the certified TSE
    (``certified``) signs the register's transactions too; the DSFinV-K export is
    the own TSE's books, the TAR the certified TSE's. Returns (export, tar,
    own serial, certified serial)."""
    own, certified = folder / "own", folder / "certified"
    serials = []
    for data, tss in ((own, "tse-own"), (certified, "tse-cert")):
        with Installation.open(data) as inst:
            ready_tse(inst.service, tss, client_id=CLIENT, logout=True)
            serials.append(inst.service.get(tss).record.serial_number.hex())
    base = ["--data", str(own), "--tss", "tse-own", "--client", CLIENT]
    for sale in ("Kaffee:2:2.50:1", "Brot:1:3.20:2"):
        code, out = run("pos", "sell", *base, "--line", sale, "--pay", "bar:10.00", "--json")
        assert code == 0 and json.loads(out)["tse_failed"] is False, out
        with Installation.open(certified) as inst:
            started = inst.service.start_transaction("tse-cert", CLIENT, b"", "Kassenbeleg-V1")
            inst.service.finish_transaction(
                "tse-cert",
                CLIENT,
                started.transaction_number,
                b"Beleg^5.00_0.00_0.00_0.00_0.00^5.00:Bar",
                "Kassenbeleg-V1",
            )
    company = ["--company", "C GmbH", "--street", "Weg 1", "--postal-code", "12345"]
    company += ["--city", "Ort", "--tax-number", "123/456/78901"]
    code, out = run("pos", "close", *base, "--counted-cash", "8.20", *company)
    assert code == 0, out
    export = folder / "dsfinvk"
    code, out = run("dsfinvk", "export", "--data", str(own), "--register", CLIENT, str(export))
    assert code == 0, out
    tar = folder / "tse.tar"
    code, out = run("export", str(tar), "--tss", "tse-cert", "--data", str(certified))
    assert code == 0, out
    return export, tar, serials[0].lower(), serials[1].lower()


def test_bons_signed_by_another_key_than_the_tars_tse_are_an_error(tmp_path: Path) -> None:
    export, tar, own, certified = _two_tses(tmp_path)
    result = xr.cross_check_files(export, tar)
    (key,) = [f for f in result.findings if f.code == "E_XC_TSE_KEY_DIFFERS"]
    assert key.severity == "error"
    assert f"register {CLIENT!r}" in key.message
    assert certified[:16] in key.message and own[:16] in key.message
    assert "2 transaction(s)" in key.message and "do not verify" in key.message
    code, out = run("dsfinvk", "check", str(export), "--tse-export", str(tar))
    assert code == 1, out
    assert "E_XC_TSE_KEY_DIFFERS" in out and "cross-check: NOT OK" in out
    assert "NOTHING COMPARED" not in out
