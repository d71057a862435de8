"""A demo business day driven through the CLI only: ``opentse pos sell|storno|cash``
on an embedded TSE, ``pos close --counted-cash`` (Z report), ``dsfinvk export`` and
``dsfinvk check`` -- the export passes with every signature verified from its CSVs."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.installation import Installation
from opentse.register.shoptime import shop_zone
from opentse.testing import ADMIN_PIN, ready_tse

APP = build_app()
TSS, CLIENT = "tse-z", "KASSE-Z"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.output


def rows(export: Path, name: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(export) as archive:
        text = archive.read(name).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


def num(text: str) -> Decimal:
    """A DSFinV-K number (decimal comma, no grouping)."""
    assert "." not in text
    return Decimal(text.replace(",", "."))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    with Installation.open(folder) as inst:
        ready_tse(inst.service, TSS, client_id=CLIENT, logout=True)
    return folder


def test_demo_business_day_closes_exports_and_checks(data: Path, tmp_path: Path) -> None:
    base = ["--data", str(data), "--tss", TSS, "--client", CLIENT]

    def sell(*args: str) -> dict[str, object]:
        code, out = run("pos", "sell", *base, *args, "--json")
        assert code == 0, out
        body: dict[str, object] = json.loads(out)
        assert body["tse_failed"] is False
        return body

    cash = sell("--line", "Kaffee:2:2.50:1", "--line", "Brezel:1:0.90:2", "--pay", "bar:10.00")
    assert cash["process_data"] == "Beleg^5.00_0.90_0.00_0.00_0.00^5.90:Bar"
    card = sell(
        "--line", "Wein:1:8.99:1", "--line", "Brot:1:3.20:2", "--line", "Briefmarke:1:0.95:6",
        "--tip", "1.00", "--pay", "karte:14.14",
    )  # fmt: skip
    assert card["process_data"] == "Beleg^8.99_3.20_0.00_0.00_1.95^14.14:Unbar"
    cake = sell("--line", "Kuchen:2:3.10:2", "--pay", "bar:6.20")
    code, out = run("pos", "storno", str(cake["receipt_ref"]), *base, "--json")
    assert code == 0, out
    storno = json.loads(out)
    code, out = run("pos", "storno", str(cake["receipt_ref"]), *base)
    assert code == 1 and "E_POS_STORNO" in out and "cancelled already" in out
    code, out = run("pos", "storno", str(storno["receipt_ref"]), *base)
    assert code == 1 and "E_POS_STORNO" in out  # a cancellation is not cancelled again
    assert storno["process_data"] == "AVBelegstorno^0.00_-6.20_0.00_0.00_0.00^-6.20:Bar"
    training = sell("--type", "training", "--line", "Kaffee:1:2.50:1", "--pay", "bar:2.50")
    assert str(training["process_data"]).startswith("AVTraining^")
    sell("--line", "Pfand Flasche:2:-0.25:1:PfandRueckzahlung", "--pay", "bar:-0.50")
    for kind, amount in (("Einzahlung", "100.00"), ("Auszahlung", "-20.00")):
        code, out = run("pos", "cash", *base, "--type", kind, "--amount", amount, "--json")
        assert code == 0, out
        assert json.loads(out)["tse_failed"] is False
    # the TSE does not know the register (client deregistered): a configuration
    # error, the sale is refused and nothing booked
    admin = ["--tss", TSS, "--pin", ADMIN_PIN, "--data", str(data)]
    assert run("client", "deregister", CLIENT, *admin)[0] == 0
    code, out = run("pos", "sell", *base, "--line", "Tee:1:1.80:1", "--pay", "karte:1.80")
    assert code == 1 and "E_REGISTER_CLIENT_UNKNOWN" in out and "TSE ausgefallen" not in out
    assert run("client", "register", CLIENT, *admin)[0] == 0
    # the TSE cannot be reached at all (a TSE service that is down), same books
    remote = ["--url", "http://127.0.0.1:9", "--api-key", "k", "--api-secret", "s"]
    remote += ["--tss", TSS, "--client", CLIENT, "--journal", str(data / "pos" / f"{CLIENT}.db")]
    for item in ("Tee", "Eis"):
        code, out = run("pos", "sell", *remote, "--line", f"{item}:1:1.80:1", "--pay", "karte:1.80")
        assert code == 0 and "TSE ausgefallen" in out and "not reachable" in out

    # expected cash 5.90 + 6.20 - 6.20 - 0.50 + 100 - 20 = 85.40; 85.00 counted
    pdf = tmp_path / "z1.pdf"
    company = ["--company", "Café Z GmbH", "--street", "Weg 1", "--postal-code", "12345"]
    company += ["--city", "Ort", "--tax-number", "123/456/78901"]
    code, out = run("pos", "close", *base, "--counted-cash", "85.00", *company, "--pdf", str(pdf))
    assert code == 0, out
    assert "KASSENABSCHLUSS Nr. 1" in out and "Kassenbestand SOLL" in out
    assert "85,40" in out and "-0,40" in out
    assert pdf.read_bytes().startswith(b"%PDF")

    export = tmp_path / "export.zip"
    code, out = run("dsfinvk", "export", "--data", str(data), "--register", CLIENT, str(export))
    assert code == 0, out
    code, out = run("dsfinvk", "check", str(export), "--json")
    assert code == 0, out
    assert json.loads(out)["errors"] == 0

    closing = rows(export, "cashpointclosing.csv")[0]
    assert closing["Z_NR"] == "1" and num(closing["Z_SE_BARZAHLUNGEN"]) == Decimal("85.00")
    assert num(closing["Z_SE_ZAHLUNGEN"]) == Decimal("102.74")
    tse_rows = rows(export, "transactions_tse.csv")
    failed = [r for r in tse_rows if r["TSE_TA_FEHLER"]]
    assert len(failed) == 2 and {r["TSE_TA_SIG"] + r["TSE_TANR"] for r in failed} == {""}
    assert "not reachable" in failed[1]["TSE_TA_FEHLER"]
    assert sum(1 for r in tse_rows if r["TSE_TA_SIG"]) == len(tse_rows) - 2 == 9
    types = {r["BON_ID"]: r["BON_TYP"] for r in rows(export, "transactions.csv")}
    assert types[str(storno["receipt_ref"])] == "AVBelegstorno"
    assert types[str(training["receipt_ref"])] == "AVTraining"
    refs = rows(export, "references.csv")
    assert [(r["BON_ID"], r["REF_TYP"], r["REF_BON_ID"], r["REF_Z_NR"]) for r in refs] == [
        (storno["receipt_ref"], "Transaktion", cake["receipt_ref"], "1")
    ]
    cases = {(r["GV_TYP"], r["UST_SCHLUESSEL"]): num(r["Z_UMS_BRUTTO"])
             for r in rows(export, "businesscases.csv")}  # fmt: skip
    assert cases[("TrinkgeldAN", "5")] == Decimal("1.00")
    assert cases[("PfandRueckzahlung", "1")] == Decimal("-0.50")
    assert cases[("Einzahlung", "5")] == 100 and cases[("Auszahlung", "5")] == -20
    assert cases[("DifferenzSollIst", "5")] == Decimal("-0.40")
    assert ("Umsatz", "6") in cases

    # day two: the float carries over; an unclosed day is refused by name
    sell("--line", "Tee:1:1.80:1", "--pay", "bar:2.00")
    today = datetime.now(shop_zone()).date().isoformat()  # the shop's day
    code, out = run("dsfinvk", "export", "--data", str(data), "--register", CLIENT,
                    str(tmp_path / "open.zip"))  # fmt: skip
    assert code == 1 and "E_DSFINVK_NOT_CLOSED" in out and today in out
    assert not (tmp_path / "open.zip").exists()
    code, out = run("pos", "close", *base, "--counted-cash", "86.80", "--json")
    assert code == 0, out
    z2 = json.loads(out)
    assert (z2["z_nr"], z2["opening_cash"], z2["expected_cash"]) == (2, "85.00", "86.80")
    assert z2["difference"] == "0.00" and z2["cash_payments"] == "1.80"
    both = tmp_path / "both.zip"
    code, out = run("dsfinvk", "export", "--data", str(data), "--register", CLIENT,
                    "--from", today, "--to", today, str(both), "--json")  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["closings"] == [1, 2]
    assert run("dsfinvk", "check", str(both))[0] == 0
    assert num(rows(both, "cashpointclosing.csv")[1]["Z_SE_BARZAHLUNGEN"]) == Decimal("1.80")


def test_export_errors_and_check_exit_codes(data: Path, tmp_path: Path) -> None:
    base = ["--data", str(data), "--tss", TSS, "--client", CLIENT]
    export = ["dsfinvk", "export", "--data", str(data), "--register", CLIENT]
    code, out = run(*export, str(tmp_path / "none.zip"))
    assert code == 1 and "E_DSFINVK_NO_BOOKS" in out
    code, out = run("pos", "sell", *base, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80")
    assert code == 0, out
    code, out = run("pos", "close", *base, "--counted-cash", "1.80")
    assert code == 1 and "E_POS_MASTER_DATA" in out
    master = ["--company", "C", "--street", "S", "--postal-code", "1", "--city", "X"]
    code, out = run("pos", "close", *base, "--counted-cash", "1.80", *master)
    assert code == 1 and "E_POS_MASTER_DATA" in out and "--tax-number" in out
    master += ["--vat-id", "DE123456789"]
    code, out = run("pos", "close", *base, "--counted-cash", "1.805", *master)
    assert code == 1 and "E_AMOUNT_PRECISION" in out
    code, out = run("pos", "close", *base, "--counted-cash", "1.80", *master, "--json")
    assert code == 0, out
    assert json.loads(out)["difference"] == "0.00"
    code, out = run(*export, "--from", "2020-01-01", "--to", "2020-01-31", str(tmp_path / "e.zip"))
    assert code == 1 and "E_DSFINVK_EMPTY" in out and "2020-01-01" in out
    code, out = run(*export, "--from", "01.01.2020", str(tmp_path / "e.zip"))
    assert code == 1 and "E_DSFINVK_DATE" in out
    good = tmp_path / "good.zip"
    assert run(*export, str(good))[0] == 0
    code, out = run("dsfinvk", "check", str(good))
    assert code == 0, out
    assert run("dsfinvk", "check", str(tmp_path / "missing.zip"))[0] == 2
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    assert run("dsfinvk", "check", str(junk))[0] == 2
    # one cent moved in the payments: the signature no longer matches (exit 1)
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            content = src.read(info)
            if info.filename in ("datapayment.csv", "payment.csv", "cashpointclosing.csv"):
                content = content.replace(b"1,80", b"1,81")
            dst.writestr(info, content)
    code, out = run("dsfinvk", "check", str(bad), "--json")
    assert code == 1
    assert "E_SIGNATURE_INVALID" in {f["code"] for f in json.loads(out)["findings"]}
