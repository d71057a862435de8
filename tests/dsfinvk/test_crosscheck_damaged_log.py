"""A TSE export whose Finish log of a sale is damaged (one changed octet: it no
longer decodes): ``dsfinvk check --tse-export`` and ``verify-receipt --tse-export``
name the log file that is there but cannot be read. Both said only that the
transaction 'has no Finish log' in the TAR (the cross-check then 'ok' about the
rest, with no word of a damaged file), sending the auditor after a log that was
never missing."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.installation import Installation
from opentse.testing import ready_tse

APP = build_app()
CLIENT = "KASSE-D"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, str]:
    """(DSFinV-K export, TAR with the 2nd sale's Finish log damaged, that log's
    name, the 2nd sale's QR text)."""
    tmp = tmp_path_factory.mktemp("damaged")
    data = tmp / "data"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "t", client_id=CLIENT, logout=True)
    base = ["--data", str(data), "--tss", "t", "--client", CLIENT]
    qr = []
    for sale in ("Kaffee:1:2.50:1", "Brot:1:3.20:2", "Tee:1:1.80:1"):
        code, out = run("pos", "sell", *base, "--line", sale, "--pay", "bar:10.00", "--json")
        assert code == 0, out
        qr.append(json.loads(out)["qr_code_data"])
    company = ["--company", "C", "--street", "S", "--postal-code", "1", "--city", "X"]
    code, out = run("pos", "close", *base, "--counted-cash", "7.50", *company,
                    "--tax-number", "1")  # fmt: skip
    assert code == 0, out
    export = tmp / "dsfinvk"
    assert run("dsfinvk", "export", "--data", str(data), "--register", CLIENT, str(export))[0] == 0
    tar = tmp / "tse.tar"
    assert run("export", str(tar), "--tss", "t", "--data", str(data))[0] == 0
    with tarfile.open(tar) as archive:  # the stdlib finds the member and its data
        (member,) = [m for m in archive.getmembers() if "_No-2_Finish_" in m.name]
    raw = bytearray(tar.read_bytes())
    raw[member.offset_data + 1] ^= 0x7F  # the outer SEQUENCE's length: undecodable
    tar.write_bytes(raw)
    return export, tar, member.name, qr[1]


def test_the_cross_check_names_the_damaged_finish_log(shop: tuple[Path, Path, str, str]) -> None:
    export, tar, name, _ = shop
    code, out = run("dsfinvk", "check", str(export), "--json", "--tse-export", str(tar))
    assert code == 1, out
    findings = json.loads(out)["crosscheck"]["findings"]
    codes = sorted(f["code"] for f in findings)
    assert codes == ["E_XC_TSE_NOT_FINISHED", "W_XC_LOG_UNREADABLE"], out
    (unreadable,) = [f for f in findings if f["code"] == "W_XC_LOG_UNREADABLE"]
    assert (
        f"1 log file(s) of tse.tar cannot be decoded (damaged or cut short): {name}"
        in (unreadable["message"])
    )
    (finish,) = [f for f in findings if f["code"] == "E_XC_TSE_NOT_FINISHED"]
    assert (
        "TSE transaction 2 has no Finish log in tse.tar; tse.tar has 1 log file(s)"
        in (finish["message"])
    )
    assert f"named with transaction number 2 that cannot be decoded: {name}" in finish["message"]


def test_verify_receipt_names_the_damaged_finish_log(shop: tuple[Path, Path, str, str]) -> None:
    _, tar, name, qr = shop
    code, out = run("verify-receipt", qr, "--json", "--tse-export", str(tar))
    assert code == 1, out
    (differs,) = [
        f for f in json.loads(out)["findings"] if f["code"] == "E_RECEIPT_TSE_EXPORT_DIFFERS"
    ]
    assert "has no Finish log in" in differs["message"]
    assert f"that cannot be decoded: {name}" in differs["message"]


def test_an_intact_tar_has_no_such_words(shop: tuple[Path, Path, str, str], tmp_path: Path) -> None:
    """The words come from the damaged file only: the same sale in an intact copy
    (the damaged octet restored) verifies and cross-checks clean."""
    export, tar, _, qr = shop
    with tarfile.open(tar) as archive:
        (member,) = [m for m in archive.getmembers() if "_No-2_Finish_" in m.name]
    raw = bytearray(tar.read_bytes())
    raw[member.offset_data + 1] ^= 0x7F
    intact = tmp_path / "intact.tar"
    intact.write_bytes(raw)
    code, out = run("dsfinvk", "check", str(export), "--json", "--tse-export", str(intact))
    assert code == 0 and json.loads(out)["crosscheck"]["findings"] == [], out
    code, out = run("verify-receipt", qr, "--json", "--tse-export", str(intact))
    assert code == 0, out
    assert "cannot be decoded" not in out
