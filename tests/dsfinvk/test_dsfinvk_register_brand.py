"""cashregister.csv (Stamm_Kassen) named no register: KASSE_BRAND and KASSE_MODELL
were empty in every export of opentse's register, which built its master data with
its serial and software version only. They name opentse's register now (opentse /
opentse pos), a register configured with its own keeps it, and books closed before
(brand and model kept empty) are exported with opentse's too. Read back with the
standard library's zipfile and csv, not our checker."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import replace
from pathlib import Path

from dsfinvk_support import demo_day
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.formats.dsfinvk.export import write_export
from opentse.formats.dsfinvk.model import CashRegister
from opentse.installation import Installation
from opentse.testing import ready_tse

COMPANY = ["--company", "C", "--street", "S", "--postal-code", "1", "--city", "X"]
COMPANY += ["--tax-number", "123"]


def _cashregister(export: Path) -> list[dict[str, str]]:
    with zipfile.ZipFile(export) as archive:
        text = archive.read("cashregister.csv").decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";", quotechar='"'))


def test_opentse_pos_names_its_register(tmp_path: Path) -> None:
    app, runner = build_app(), CliRunner()
    data, books = tmp_path / "data", tmp_path / "books.db"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "t", client_id="KASSE-1", logout=True)
    base = ["--data", str(data), "--tss", "t", "--client", "KASSE-1", "--journal", str(books)]
    sold = runner.invoke(app, ["pos", "sell", *base, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80"])
    assert sold.exit_code == 0, sold.output
    closed = runner.invoke(app, ["pos", "close", *base, "--counted-cash", "1.80", *COMPANY])
    assert closed.exit_code == 0, closed.output
    out = tmp_path / "export.zip"
    done = runner.invoke(app, ["dsfinvk", "export", str(out), "--journal", str(books)])
    assert done.exit_code == 0, done.output
    [row] = _cashregister(out)
    assert row["KASSE_SERIENNR"] == "KASSE-1"
    assert (row["KASSE_BRAND"], row["KASSE_MODELL"]) == ("opentse", "opentse pos")
    assert row["KASSE_SW_BRAND"] == "opentse" and row["KASSE_SW_VERSION"]


def test_own_brand_kept_and_empty_books_named(tmp_path: Path) -> None:
    day = demo_day()
    own = replace(day, register=CashRegister(day.register.serial_number, "Kassenbau", "K 7"))
    [row] = _cashregister(write_export([own], tmp_path / "own.zip"))
    assert (row["KASSE_BRAND"], row["KASSE_MODELL"]) == ("Kassenbau", "K 7")
    kept_empty = replace(day, register=CashRegister(day.register.serial_number, "", ""))
    [row] = _cashregister(write_export([kept_empty], tmp_path / "old.zip"))
    assert (row["KASSE_BRAND"], row["KASSE_MODELL"]) == ("opentse", "opentse pos")
