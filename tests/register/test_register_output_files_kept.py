"""A receipt's or Z report's file that exists is kept: ``pos sell``, ``pos storno``
and ``pos close`` wrote --pdf (and --qr, --escpos, --png) over an existing file
without a word, so the PDF of an earlier sale or closing (a document the shop keeps)
was lost when a cashier reused a name. Now an existing file is refused before
anything is booked, naming --force, as ``pos close --out`` and ``dsfinvk export``
refuse an existing export; --force replaces it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.installation import Installation
from opentse.testing import ready_tse

APP = build_app()
TEA = ("--line", "Tee:1:1.80:1", "--pay", "bar:1.80")
MASTER = ("--company", "Café Test GmbH", "--street", "Hauptstr. 1", "--postal-code",
          "12345", "--city", "Musterstadt", "--tax-number", "123/456/78901")  # fmt: skip


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.output


@pytest.fixture
def till(tmp_path: Path) -> list[str]:
    data = tmp_path / "data"
    with Installation.open(data) as inst:
        ready_tse(inst.service, "tse-pos", client_id="POS-1", logout=True)
    return ["--data", str(data), "--tss", "tse-pos", "--client", "POS-1",
            "--journal", str(tmp_path / "j.db")]  # fmt: skip


@pytest.mark.parametrize("option", ["--pdf", "--qr", "--escpos", "--png"])
def test_sell_keeps_an_existing_receipt_file(till: list[str], tmp_path: Path, option: str) -> None:
    target = tmp_path / ("receipt.svg" if option == "--qr" else "receipt.out")
    code, out = run("pos", "sell", *till, *TEA, option, str(target))
    assert code == 0, out
    first = target.read_bytes()
    code, out = run("pos", "sell", *till, *TEA, option, str(target))
    said = " ".join(out.split())
    assert code == 1 and "E_POS_OUTPUT_EXISTS" in said and "--force" in said, out
    assert "Nothing was booked" in said and target.read_bytes() == first
    code, out = run("pos", "sell", *till, *TEA, option, str(target), "--force", "--json")
    assert code == 0, out
    assert target.read_bytes() != first  # replaced, as asked: receipt 2's
    assert json.loads(out)["receipt_number"] == "2"  # the refused sale booked nothing


def test_storno_and_two_options_naming_one_file(till: list[str], tmp_path: Path) -> None:
    pdf = tmp_path / "beleg.pdf"
    code, out = run("pos", "sell", *till, *TEA, "--pdf", str(pdf), "--json")
    assert code == 0, out
    sale = json.loads(out)
    code, out = run("pos", "storno", sale["receipt_ref"], *till, "--pdf", str(pdf))
    assert code == 1 and "E_POS_OUTPUT_EXISTS" in out, out
    other = tmp_path / "storno.pdf"
    code, out = run("pos", "storno", sale["receipt_ref"], *till, "--pdf", str(other),
                    "--png", str(other))  # fmt: skip
    assert code == 1 and "both name" in " ".join(out.split()), out
    assert not other.exists()
    code, out = run("pos", "storno", sale["receipt_ref"], *till, "--pdf", str(tmp_path))
    assert code == 1 and "is a folder" in " ".join(out.split()), out
    code, out = run("pos", "storno", sale["receipt_ref"], *till, "--pdf", str(other), "--json")
    assert code == 0 and json.loads(out)["references"] == sale["receipt_ref"], out
    assert pdf.read_bytes() != other.read_bytes()


def test_close_keeps_an_earlier_z_report(till: list[str], tmp_path: Path) -> None:
    z = tmp_path / "z.pdf"
    z.write_bytes(b"%PDF- the Z report of yesterday")
    code, out = run("pos", "sell", *till, *TEA)
    assert code == 0, out
    code, out = run("pos", "close", *till, *MASTER, "--counted-cash", "1.80", "--pdf", str(z))
    said = " ".join(out.split())
    assert code == 1 and "E_POS_OUTPUT_EXISTS" in said and "Nothing was closed" in said, out
    assert z.read_bytes() == b"%PDF- the Z report of yesterday"
    code, out = run("pos", "close", *till, *MASTER, "--counted-cash", "1.80", "--pdf", str(z),
                    "--force", "--json")  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["z_nr"] == 1  # the refused closing closed nothing
    assert z.read_bytes().startswith(b"%PDF") and b"yesterday" not in z.read_bytes()
