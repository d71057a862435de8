"""``opentse pos daily`` makes a till's first register file only for a register the TSE
answers it knows, and ``pos close --out`` refuses an export target it would not write
before the day is closed (review findings: daily wrote an empty file for any
``--client``; close made the closing, then refused the existing ZIP naming a
``--force`` it lacked)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.installation import Installation
from opentse.register.books import Books
from opentse.register.till_file import TillConnection, render
from opentse.testing import ready_tse

APP = build_app()
TSS, CLIENT = "tse-f", "KASSE-F"
MASTER = ["--company", "Café Muster GmbH", "--street", "Musterstraße 1"]
MASTER += ["--postal-code", "12345", "--city", "Musterstadt", "--tax-number", "123/456/78901"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.output


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    with Installation.open(folder) as inst:
        ready_tse(inst.service, TSS, client_id=CLIENT, logout=True)
        inst.service.create_tse("tse-new")  # created, not initialized: cannot answer
    return folder


@pytest.mark.parametrize(
    ("tss", "client", "code_text"),
    [
        (TSS, "KASSE-TYPO", "E_REGISTER_CLIENT_UNKNOWN"),
        ("no-such-tse", CLIENT, "E_REGISTER_TSS_UNKNOWN"),
        ("tse-new", CLIENT, "E_POS_NO_REGISTER"),
    ],
)
def test_daily_of_a_register_the_tse_does_not_confirm_makes_no_file(
    data: Path, tss: str, client: str, code_text: str
) -> None:
    code, out = run("pos", "daily", "--data", str(data), "--tss", tss, "--client", client)
    assert code == 1 and code_text in out, out
    assert not (data / "pos").exists() or list((data / "pos").iterdir()) == []


def test_daily_of_a_known_register_writes_its_first_record(data: Path) -> None:
    base = ["--data", str(data), "--tss", TSS, "--client", CLIENT]
    code, out = run("pos", "daily", *base, "--note", "erster Tag")
    assert code == 0 and "status green, unsigned receipts 0" in out, out
    assert (data / "pos" / f"{CLIENT}.db").is_file()


def test_daily_over_a_service_that_cannot_be_reached_makes_no_file(tmp_path: Path) -> None:
    """A till's first record over --url with the service down: the TSE cannot say
    whether it knows the client, so nothing is written (a record of it said GREEN)."""
    journal = tmp_path / "till.db"
    code, out = run(
        "pos", "daily", "--url", "http://127.0.0.1:9", "--api-key", "k", "--api-secret", "s",
        "--tss", "0b3c5a4e-3f3e-4c4e-9a59-0d6c8f1b2a10",
        "--client", "5f0f4e8a-9a35-4f43-8c34-5b8a1d2c3e4f", "--journal", str(journal),
        "--timeout", "1",
    )  # fmt: skip
    assert code == 1 and "E_POS_NO_REGISTER" in out, out
    assert not journal.exists()


def _open_receipts(data: Path) -> int:
    books = Books(data / "pos" / f"{CLIENT}.db")
    try:
        return int(books.open_count())
    finally:
        books.close_file()


@pytest.mark.parametrize(
    ("make", "name", "text"),
    [
        (lambda p: p.write_bytes(b"an earlier closing"), "earlier.zip", "--force"),
        (lambda p: p.mkdir(), "folder.zip", "is a folder"),
        (lambda p: (p.mkdir(), (p / "notes.txt").write_text("x")), "mine", "no DSFinV-K"),
        (lambda p: p.write_text("x"), "plain", "is a file"),
    ],
)
def test_close_refuses_an_export_target_before_the_day_is_closed(
    data: Path, tmp_path: Path, make: Callable[[Path], object], name: str, text: str
) -> None:
    base = ["--data", str(data), "--tss", TSS, "--client", CLIENT]
    code, out = run("pos", "sell", *base, "--line", "Kaffee:1:2.50:1", "--pay", "bar:2.50")
    assert code == 0, out
    target = tmp_path / name
    make(target)
    code, out = run("pos", "close", *base, "--counted-cash", "2.50", *MASTER, "--out", str(target))
    assert code == 1 and "E_DSFINVK_TARGET" in out and "Nothing was closed" in out, out
    assert text in out.replace("\n", "")
    assert _open_receipts(data) == 1  # the receipt still waits for its closing


def test_close_force_replaces_an_earlier_zip(data: Path, tmp_path: Path) -> None:
    base = ["--data", str(data), "--tss", TSS, "--client", CLIENT]
    code, out = run("pos", "sell", *base, "--line", "Kaffee:1:2.50:1", "--pay", "bar:2.50")
    assert code == 0, out
    target = tmp_path / "closing.zip"
    target.write_bytes(b"an earlier closing")
    args = ["--counted-cash", "2.50", *MASTER, "--out", str(target), "--force"]
    code, out = run("pos", "close", *base, *args)
    assert code == 0, out
    assert _open_receipts(data) == 0
    with zipfile.ZipFile(target) as archive:
        assert "index.xml" in archive.namelist()


def test_close_refuses_master_data_no_export_takes_before_anything_is_signed(
    data: Path, tmp_path: Path
) -> None:
    """A --company longer than cashpointclosing.csv's NAME (60) made a closing whose
    every export failed for good (E_DSFINVK_LENGTH), its difference signed, while the
    message said 'opentse dsfinvk export' would write it again."""
    base = ["--data", str(data), "--tss", TSS, "--client", CLIENT]
    code, out = run("pos", "sell", *base, "--line", "Kaffee:1:2.50:1", "--pay", "bar:2.50")
    assert code == 0, out
    master = [*MASTER[:1], "C" * 61, *MASTER[2:]]
    out_zip = tmp_path / "day.zip"
    args = ["--counted-cash", "3.00", "--out", str(out_zip)]  # a difference to sign
    code, out = run("pos", "close", *base, *args, *master)
    said = " ".join(out.split())
    assert code == 1 and "E_DSFINVK_LENGTH" in said and "NAME" in said, out
    assert "Nothing was closed" in said and not out_zip.exists()
    assert _open_receipts(data) == 1  # no DifferenzSollIst booked, nothing closed
    master[1] = "C" * 60
    code, out = run("pos", "close", *base, *args, *master)
    assert code == 0 and out_zip.is_file(), out
    assert _open_receipts(data) == 0


def test_a_tills_first_sale_in_an_outage_prints_the_serial_its_till_file_names(
    tmp_path: Path,
) -> None:
    """A till set up with pos setup --out whose first sale met an outage printed the
    client UUID as Kassen-Seriennummer (the serial was to be asked of the service):
    the till file names the serial, which stands in until the service is reached."""
    client = "5f0f4e8a-9a35-4f43-8c34-5b8a1d2c3e4f"
    till = tmp_path / "kasse-9.txt"
    till.write_text(
        render(
            TillConnection(
                url="http://127.0.0.1:9", api_key="k", api_secret="s",
                tss="0b3c5a4e-3f3e-4c4e-9a59-0d6c8f1b2a10", client=client,
                serial_number="KASSE-9",
            )
        ),
        encoding="utf-8",
    )  # fmt: skip
    journal = tmp_path / "till.db"
    sale = ["--line", "Tee:1:1.80:1", "--pay", "bar:2.00", "--timeout", "1"]
    code, out = run("pos", "sell", "--session", str(till), "--journal", str(journal), *sale)
    assert code == 0 and "TSE ausgefallen" in out, out
    assert "Kassen-Seriennummer: KASSE-9" in out and client not in out
    other = "6a1b2c3d-0000-4000-8000-000000000001"  # --client wins: not the file's serial
    code, out = run(
        "pos", "sell", "--session", str(till), "--client", other,
        "--journal", str(tmp_path / "other.db"), *sale,
    )  # fmt: skip
    assert code == 0 and "KASSE-9" not in out and other in out.replace("\n", ""), out


def test_close_refuses_a_negative_counted_cash(data: Path) -> None:
    """A drawer holds no negative cash: '--counted-cash -5' closed the day and booked a
    difference of more than the day's cash, for good."""
    base = ["--data", str(data), "--tss", TSS, "--client", CLIENT]
    code, out = run("pos", "sell", *base, "--line", "Kaffee:1:2.50:1", "--pay", "bar:2.50")
    assert code == 0, out
    code, out = run("pos", "close", *base, "--counted-cash", "-5.00", *MASTER)
    assert code == 1 and "E_AMOUNT_SIGN" in out and "--counted-cash" in out, out
    assert _open_receipts(data) == 1
    code, out = run("pos", "close", *base, "--counted-cash", "0.00", *MASTER)
    assert code == 0 and "-2,50" in out, out  # nothing counted: the difference booked


def test_an_anfangsbestand_on_top_of_the_last_count_is_named(data: Path) -> None:
    """The morning's float booked as Anfangsbestand while the drawer still holds the
    last closing's count (its opening cash) counted that cash twice without a word:
    the next closing booked the whole float as a difference. The entry is booked and
    the command says so, naming the storno that takes it back."""
    base = ["--data", str(data), "--tss", TSS, "--client", CLIENT]
    cash = ["pos", "cash", *base, "--type", "Anfangsbestand", "--json"]
    code, out = run(*cash, "--amount", "50.00")  # the first day: nothing counted yet
    assert code == 0 and json.loads(out)["warning"] is None, out
    code, out = run("pos", "close", *base, "--counted-cash", "50.00", *MASTER)
    assert code == 0, out
    code, out = run(*cash, "--amount", "50.00")
    assert code == 0, out
    body = json.loads(out)
    warning = body["warning"]
    assert "counted 50.00 EUR" in warning and "Geldtransit" in warning
    assert f"opentse pos storno {body['receipt_number']}" in warning
    code, out = run(*cash, "--amount", "10.00")  # booked after it: no second warning
    assert code == 0 and json.loads(out)["warning"] is None, out
    code, out = run("pos", "storno", body["receipt_number"], *base)  # as the warning says
    assert code == 0 and "Storno zu Beleg-Nr.: " + body["receipt_number"] in out, out
