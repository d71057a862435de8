"""A Kassen-Nachschau: two registers share one TSE; a sale, a cancellation and a
training receipt, both registers closed, the TSE's TAR and one register's DSFinV-K
export on the stick. Each paper receipt (its QR code, read from the PNG the
register printed) is checked against the TAR (the right transaction, same
signature) and the DSFinV-K Bon (same TSE data, amounts from its rows); a receipt
that is in neither, or whose amount was changed, is named with what differs."""

from __future__ import annotations

import json
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest
from receipt_support import Shop, run

from opentse.formats.qr import parse_qr_payload
from opentse.installation import Installation
from opentse.testing import ready_tse

A, B = "KASSE-A", "KASSE-B"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    shop = Shop(tmp_path_factory.mktemp("nachschau"))
    with Installation.open(shop.data) as inst:
        ready_tse(inst.service, "t", client_id=A)
        inst.service.register_client("t", B)
        inst.service.logout("t")
    shop.pos("sale", "sell", A, "--line", "Kaffee:2:2.50:1", "--pay", "bar:5.00")
    shop.pos("other", "sell", B, "--line", "Kuchen:1:3.20:2", "--pay", "bar:3.20")
    shop.pos("storno", "storno", A, "1")
    shop.pos("training", "sell", A, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80",
             "--type", "training")  # fmt: skip
    for client in (A, B):
        shop.close(client)
    shop.export_tar()
    shop.export_dsfinvk(A, "a.zip")
    shop.export_dsfinvk(B, "b.zip")
    return shop


def _exports(shop: Shop) -> list[str]:
    return ["--tse-export", str(shop.root / "tse.tar"), "--dsfinvk", str(shop.root / "a.zip")]


@pytest.mark.parametrize("name", ["sale", "storno", "training"])
def test_each_paper_receipt_is_found_in_both_exports(shop: Shop, name: str) -> None:
    code, out = run("verify-receipt", "--image", str(shop.qr[name]), *_exports(shop), "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["ok"] is True
    codes = [f["code"] for f in report["findings"]]
    assert codes == ["I_RECEIPT_OK", "I_RECEIPT_IN_TSE_EXPORT", "I_RECEIPT_IN_DSFINVK"], out
    bon = report["findings"][2]["message"]
    number = report["fields"]["transactionNumber"]
    assert f"transaction {number} of TSE" in bon and "register KASSE-A" in bon
    kind = {"sale": "Beleg", "storno": "AVBelegstorno", "training": "AVTraining"}[name]
    assert f"({kind})" in bon
    code, out = run("verify-receipt", "--image", str(shop.qr[name]), *_exports(shop))
    assert code == 0 and "I_RECEIPT_IN_DSFINVK" in out and "VERIFIED" in out, out


def test_another_registers_receipt_is_in_the_tar_but_not_this_export(shop: Shop) -> None:
    code, out = run("verify-receipt", shop.text["other"], *_exports(shop), "--json")
    assert code == 1, out
    findings = {f["code"]: f for f in json.loads(out)["findings"]}
    assert set(findings) == {"I_RECEIPT_OK", "I_RECEIPT_IN_TSE_EXPORT", "E_RECEIPT_NOT_IN_DSFINVK"}
    assert "a.zip" in findings["E_RECEIPT_NOT_IN_DSFINVK"]["message"]


def test_a_receipt_with_a_changed_amount_is_named_in_both(shop: Shop) -> None:
    """The shop prints a receipt of 4.00 for a sale the TSE signed as 5.00: the QR
    check alone says the signature fails; the exports say where it differs."""
    payload = parse_qr_payload(shop.text["sale"])
    forged = replace(payload, process_data=payload.process_data.replace("5.00", "4.00"))
    code, out = run("verify-receipt", forged.to_text(), *_exports(shop), "--json")
    assert code == 1, out
    findings = {f["code"]: f for f in json.loads(out)["findings"]}
    assert "E_RECEIPT_SIGNATURE" in findings
    tar = findings["E_RECEIPT_TSE_EXPORT_DIFFERS"]
    assert tar["fields"] == ["processData"] and "tse.tar" in tar["message"]
    bon = findings["E_RECEIPT_DSFINVK_DIFFERS"]
    assert "4.00" in bon["message"] and "5.00" in bon["message"]


def test_a_receipt_of_another_tse_is_not_in_the_tar(shop: Shop, tmp_path: Path) -> None:
    data = tmp_path / "other"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "o", client_id=A, logout=True)
    code, out = run("pos", "sell", "--data", str(data), "--tss", "o", "--client", A,
                    "--line", "Tee:1:1.80:1", "--pay", "bar:1.80", "--json")  # fmt: skip
    assert code == 0, out
    text = json.loads(out)["qr_code_data"]
    code, out = run("verify-receipt", text, "--tse-export", str(shop.root / "tse.tar"), "--json")
    assert code == 1, out
    (ok, other) = json.loads(out)["findings"]
    assert ok["code"] == "I_RECEIPT_OK" and "--tse-export" in ok["message"]  # what to do
    assert other["code"] == "E_RECEIPT_TSE_NOT_IN_EXPORT" and "another TSE" in other["message"]


def test_an_unreadable_tse_export_is_exit_2(shop: Shop, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar")
    code, out = run("verify-receipt", shop.text["sale"], "--tse-export", str(bad), "--json")
    assert code == 2, out
    assert json.loads(out)["unreadable"]["code"] == "E_EXPORT_UNREADABLE"
    code, out = run(
        "verify-receipt", shop.text["sale"], "--dsfinvk", str(tmp_path / "none.zip"), "--json"
    )
    assert code == 2, out
    assert json.loads(out)["unreadable"]["code"] == "E_EXPORT_MISSING"
    tar = str(shop.root / "tse.tar")  # the exports swapped
    code, out = run("verify-receipt", shop.text["sale"], "--dsfinvk", tar, "--json")
    assert code == 2, out
    unreadable = json.loads(out)["unreadable"]
    assert unreadable["code"] == "E_EXPORT_ZIP"
    assert unreadable["message"].startswith(f"{tar}: a TAR archive, not a DSFinV-K export")


def test_the_exports_of_both_registers_at_once(shop: Shop) -> None:
    both = ["--dsfinvk", str(shop.root / "a.zip"), "--dsfinvk", str(shop.root / "b.zip")]
    tar = ["--tse-export", str(shop.root / "tse.tar")]
    for name, register in (("other", B), ("sale", A)):
        code, out = run("verify-receipt", shop.text[name], *tar, *both, "--json")
        assert code == 0, out
        findings = json.loads(out)["findings"]
        assert [f["code"] for f in findings][1:] == ["I_RECEIPT_IN_TSE_EXPORT",
                                                     "I_RECEIPT_IN_DSFINVK"]  # fmt: skip
        assert f"register {register}" in findings[2]["message"]
        assert f"in {shop.root / 'tse.tar'}:" in findings[1]["message"]


def test_a_tar_without_the_receipts_finish_log(shop: Shop, tmp_path: Path) -> None:
    cut = tmp_path / "cut.tar"
    number = parse_qr_payload(shop.text["sale"]).transaction_number
    with tarfile.open(shop.root / "tse.tar") as source, tarfile.open(cut, "w") as target:
        for member in source.getmembers():
            if f"_No-{number}_Finish" not in member.name:
                target.addfile(member, source.extractfile(member))
    code, out = run("verify-receipt", shop.text["sale"], "--tse-export", str(cut), "--json")
    assert code == 1, out
    finding = json.loads(out)["findings"][1]
    assert finding["code"] == "E_RECEIPT_TSE_EXPORT_DIFFERS"
    assert "no Finish log" in finding["message"] and "ask for a later export" in finding["message"]
