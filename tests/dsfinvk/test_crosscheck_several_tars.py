"""`dsfinvk check --tse-export A.tar --tse-export B.tar`: incremental TSE exports
are read as one (a transaction started in the first and finished in the second is
one transaction); one TAR alone was all the option took."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.installation import Installation
from opentse.testing import ready_tse

APP = build_app()
CLIENT = "KASSE-I"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.output


def test_two_incremental_tars_cross_check_as_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "t", client_id=CLIENT, logout=True)
    base = ["--data", str(data), "--tss", "t", "--client", CLIENT]
    for sale in ("Kaffee:2:2.50:1", "Brot:1:3.20:2", "Tee:1:1.80:1"):
        code, out = run("pos", "sell", *base, "--line", sale, "--pay", "bar:10.00", "--json")
        assert code == 0 and json.loads(out)["tse_failed"] is False, out
    company = ["--company", "C", "--street", "S", "--postal-code", "1", "--city", "X"]
    code, out = run("pos", "close", *base, "--counted-cash", "10.00", *company,
                    "--tax-number", "1")  # fmt: skip
    assert code == 0, out
    export = tmp_path / "dsfinvk"
    code, out = run("dsfinvk", "export", "--data", str(data), "--register", CLIENT, str(export))
    assert code == 0, out
    full = tmp_path / "full.tar"
    assert run("export", str(full), "--tss", "t", "--data", str(data))[0] == 0
    with tarfile.open(full) as archive:  # the second sale's Start log: split after it
        (start,) = [n for n in archive.getnames() if "_No-2_Start_" in n]
    split = int(start.split("_Sig-")[1].split("_")[0])
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    export_args = ["--tss", "t", "--data", str(data)]
    assert run("export", str(first), *export_args, "--to-sig", str(split))[0] == 0
    assert run("export", str(second), *export_args, "--from-sig", str(split + 1))[0] == 0
    code, out = run("dsfinvk", "check", str(export), "--json", "--tse-export", str(first),
                    "--tse-export", str(second))  # fmt: skip
    body = json.loads(out)
    assert code == 0 and body["crosscheck"]["findings"] == [], out
    assert body["crosscheck"]["summary"]["bons_matched"] == 3
    assert body["crosscheck"]["tse_export"] == f"{first} + {second}"
    code, out = run("dsfinvk", "check", str(export), "--tse-export", str(first))
    assert code == 1 and "E_XC_TSE_NOT_FINISHED" in out  # the first alone: Start only


def test_a_tar_left_out_between_two_names_the_numbers_it_lacks(tmp_path: Path) -> None:
    """Three incremental TARs, the middle one not given: the Bons of its
    transactions are E_XC_BON_NOT_IN_TSE naming the run of numbers the TARs lack
    and an export between them left out. It said the TARs 'hold transactions 1..4',
    which reads as if the Bon's number were in them."""
    data = tmp_path / "data"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "t", client_id=CLIENT, logout=True)
    base = ["--data", str(data), "--tss", "t", "--client", CLIENT]
    for sale in ("Kaffee:1:2.50:1", "Brot:1:3.20:2", "Tee:1:1.80:1", "Saft:1:2.00:1"):
        code, out = run("pos", "sell", *base, "--line", sale, "--pay", "bar:10.00", "--json")
        assert code == 0 and json.loads(out)["tse_failed"] is False, out
    company = ["--company", "C", "--street", "S", "--postal-code", "1", "--city", "X"]
    code, out = run("pos", "close", *base, "--counted-cash", "9.50", *company,
                    "--tax-number", "1")  # fmt: skip
    assert code == 0, out
    export = tmp_path / "dsfinvk"
    assert run("dsfinvk", "export", "--data", str(data), "--register", CLIENT, str(export))[0] == 0
    full = tmp_path / "full.tar"
    assert run("export", str(full), "--tss", "t", "--data", str(data))[0] == 0
    with tarfile.open(full) as archive:  # sales 2 and 3 in the middle TAR
        names = archive.getnames()
    (end_1,) = [n for n in names if "_No-1_Finish_" in n]
    (end_3,) = [n for n in names if "_No-3_Finish_" in n]
    cut_1, cut_3 = (int(n.split("_Sig-")[1].split("_")[0]) for n in (end_1, end_3))
    first, third = tmp_path / "a.tar", tmp_path / "c.tar"
    export_args = ["--tss", "t", "--data", str(data)]
    assert run("export", str(first), *export_args, "--to-sig", str(cut_1))[0] == 0
    assert run("export", str(third), *export_args, "--from-sig", str(cut_3 + 1))[0] == 0
    code, out = run("dsfinvk", "check", str(export), "--json", "--tse-export", str(first),
                    "--tse-export", str(third))  # fmt: skip
    assert code == 1, out
    missing = json.loads(out)["crosscheck"]["findings"]
    assert [f["code"] for f in missing] == ["E_XC_BON_NOT_IN_TSE"] * 2, out
    held = "which holds transactions 1..4 of this TSE but none of 2..3: their logs"
    for finding in missing:
        assert held in finding["message"]
        assert "an export between the TARs left out" in finding["message"]
