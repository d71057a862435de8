"""A shop whose TSE was replaced (``opentse tse replace``) or whose till moved: the
tills name the new TSE instead of selling on "TSE ausgefallen" without a word, till
files are pointed at the successor, closings show the till's site and its clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.formats.dsfinvk.model import CashRegister, Company, Location
from opentse.register import EmbeddedBackend, OutageLog, Register, RegisterConfig, Sale, Seller
from opentse.register.books import Books, MasterData
from opentse.register.zreport import close_day
from opentse.testing import memory_service, ready_tse

APP = build_app()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.output


def run_json(*args: str) -> tuple[int, dict[str, object], str]:
    """Exit code, stdout's JSON and stderr of a ``--json`` command."""
    result = CliRunner().invoke(APP, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_close_day_stamps_the_closing_with_the_registers_clock(tmp_path: Path) -> None:
    """close_day took datetime.now() for the closing's time (Z_ERSTELLUNG) while every
    receipt of the day used the register's clock: a till on an injected clock (tests,
    a corrected clock) closed 'before' its own receipts or on another day."""
    service = memory_service(now=1_767_258_000)  # 2026-01-01 09:00 UTC
    ready_tse(service, "t1", client_id="KASSE-1", logout=True)
    at = datetime(2026, 1, 1, 18, 30, tzinfo=UTC)
    books = Books(tmp_path / "till.db")
    register = Register(
        EmbeddedBackend(service, "t1"),
        RegisterConfig(Seller("Laden", ("Weg 1", "12345 Ort")), "KASSE-1"),
        OutageLog(tmp_path / "till.db"),
        clock=lambda: at,
        books=books,
    )
    sale = Sale()
    sale.add_line("Brot", 1, "3.80", 2)
    sale.add_payment("cash", "3.80")
    register.sell(sale)
    master = MasterData(
        Company("Laden GmbH", "Weg 1", "12345", "Ort", tax_number="12/345/67890"),
        Location("Laden", "Weg 1", "12345", "Ort"),
        CashRegister("KASSE-1"),
    )
    day = close_day(register, books, master, "3.80")
    assert day.closing.created == at
    books.close_file()
    register.journal.close()


def _shop(data: Path) -> None:
    """An embedded TSE t1 (admin PIN 123456) with till K1 registered."""
    from opentse.installation import Installation

    with Installation.open(data) as inst:
        ready_tse(inst.service, "t1", client_id="K1", logout=True)


def test_status_no_check_of_an_unknown_till_makes_no_file(tmp_path: Path) -> None:
    """pos status --no-check with a mistyped --client made an empty register file and
    said GREEN for a till that never signed anything; now it is refused, no file."""
    data = tmp_path / "data"
    _shop(data)
    code, out = run("pos", "status", "--data", str(data), "--tss", "t1", "--client", "K9",
                    "--no-check")  # fmt: skip
    assert code == 1 and "E_POS_NO_REGISTER" in out and "GREEN" not in out
    assert not (data / "pos" / "K9.db").exists()
    # a till that has booked reads its journal without the TSE as before
    code, out = run("pos", "sell", "--data", str(data), "--tss", "t1", "--client", "K1",
                    "--line", "Tee:1:1.80:1", "--pay", "bar:1.80")  # fmt: skip
    assert code == 0, out
    code, out = run("pos", "status", "--data", str(data), "--tss", "t1", "--client", "K1",
                    "--no-check", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["status"] == "green"


def _sited_shop(data: Path) -> str:
    """``_shop`` with t1 placed at a location and K1 recorded there (as docs/
    operations.md sets up a shop before a replacement); the location id."""
    _shop(data)
    where = ("--data", str(data), "--json")
    org = json.loads(run("site", "org-create", "Laden GmbH", *where)[1])["id"]
    loc = json.loads(
        run("site", "create", org, "Laden Mitte", "--street", "Hauptstraße 5",
            "--postal-code", "10115", "--city", "Berlin", *where)[1]
    )["id"]  # fmt: skip
    assert run("site", "assign-tse", "t1", loc, "--data", str(data))[0] == 0
    assert run("site", "add-register", "K1", loc, "--data", str(data))[0] == 0
    assert run("site", "assign", "K1", "t1", "--data", str(data))[0] == 0
    return str(loc)


def test_till_on_a_replaced_tse_names_its_successor_and_signs_nothing_there(
    tmp_path: Path,
) -> None:
    """After tse replace, a till still given --tss OLD sold on 'TSE ausgefallen:
    E_TSS_DISABLED' (status YELLOW) without a word of the new TSE. Now the sale (booked
    unsigned, never blocked) and pos status (RED) name the successor and what to do;
    nothing is signed on it until the till is pointed there, then it signs with the
    same journal and books."""
    from opentse.installation import Installation

    data = tmp_path / "data"
    _sited_shop(data)
    old = ("pos", "sell", "--data", str(data), "--tss", "t1", "--client", "K1")
    tea = ("--line", "Tee:1:1.80:1", "--pay", "bar:1.80")
    assert run_json(*old, *tea)[1]["tse_failed"] is False
    code, out = run("tse", "replace", "t1", "t2", "--new-pin", "654321", "--old-pin",
                    "123456", "--data", str(data))  # fmt: skip
    assert code == 0, out
    with Installation.open(data) as inst:
        counter = inst.service.get("t2").state.signature_counter
    _, sold, said = run_json(*old, *tea)
    assert sold["tse_failed"] is True and sold["receipt_number"] == "2"
    error = str(sold["error"])
    assert "E_TSE_REPLACED" in error and "--tss t2" in error and "--tss t2" in said
    _, status, _ = run_json("pos", "status", "--data", str(data), "--tss", "t1", "--client", "K1")
    assert status["status"] == "red" and "replaced by t2" in str(status["message"])
    with Installation.open(data) as inst:  # the successor signed nothing for the till
        assert inst.service.get("t2").state.signature_counter == counter
    new = ("pos", "sell", "--data", str(data), "--tss", "t2", "--client", "K1")
    _, sold, _ = run_json(*new, *tea)  # same journal and books: receipt numbers go on
    assert sold["tse_failed"] is False and sold["receipt_number"] == "3"
    _, status, _ = run_json("pos", "status", "--data", str(data), "--tss", "t2", "--client", "K1")
    assert status["status"] == "green"


def _location_row(export: Path) -> dict[str, str]:
    import csv
    import io
    import zipfile

    with zipfile.ZipFile(export) as archive:
        text = archive.read("location.csv").decode("utf-8")
    (row,) = csv.DictReader(io.StringIO(text, newline=""), delimiter=";")
    return row


def test_closing_names_the_tills_site_and_follows_a_move(tmp_path: Path) -> None:
    """DSFinV-K location.csv (Stamm_Orte) is where the register stands. pos close
    wrote the company's address there, so a till recorded at a branch, or moved to
    another one with site move-register, closed at the company's seat."""
    from opentse.installation import Installation

    data = tmp_path / "data"
    _sited_shop(data)  # K1 at "Laden Mitte", Hauptstraße 5, 10115 Berlin
    till = ("--data", str(data), "--client", "K1")
    tea = ("--line", "Tee:1:1.80:1", "--pay", "bar:1.80")
    assert run_json("pos", "sell", *till, "--tss", "t1", *tea)[1]["tse_failed"] is False
    seat = ("--company", "Laden GmbH", "--street", "Verwaltungsweg 1", "--postal-code",
            "20095", "--city", "Hamburg", "--tax-number", "12/345/67890")  # fmt: skip
    first = tmp_path / "z1.zip"
    _, closed, _ = run_json("pos", "close", *till, "--tss", "t1", "--counted-cash", "1.80",
                            *seat, "--out", str(first))  # fmt: skip
    assert closed["check_errors"] == []
    row = _location_row(first)
    assert (row["LOC_NAME"], row["LOC_STRASSE"], row["LOC_PLZ"], row["LOC_ORT"]) == (
        "Laden Mitte", "Hauptstraße 5", "10115", "Berlin",
    )  # fmt: skip
    assert row["LOC_LAND"] == "DEU"
    # the till goes to the branch in Potsdam, which has its own TSE t3
    with Installation.open(data) as inst:
        ready_tse(inst.service, "t3", client_id="K1", logout=True)
    org = json.loads(run("site", "list", "--data", str(data), "--json")[1])
    org_id = org["organizations"][0]["id"]
    branch = json.loads(
        run("site", "create", org_id, "Laden Potsdam", "--street", "Brandenburger Str. 9",
            "--postal-code", "14467", "--city", "Potsdam", "--data", str(data), "--json")[1]
    )["id"]  # fmt: skip
    assert run("site", "assign-tse", "t3", branch, "--data", str(data))[0] == 0
    code, out = run("site", "move-register", "K1", branch, "--tse", "t3", "--data", str(data))
    assert code == 0, out
    assert run_json("pos", "sell", *till, "--tss", "t3", *tea)[1]["tse_failed"] is False
    second = tmp_path / "z2.zip"
    _, closed, _ = run_json("pos", "close", *till, "--tss", "t3", "--counted-cash", "3.60",
                            "--out", str(second))  # fmt: skip
    assert closed["check_errors"] == [] and closed["z_nr"] == 2
    row = _location_row(second)
    assert (row["LOC_NAME"], row["LOC_STRASSE"], row["LOC_PLZ"], row["LOC_ORT"]) == (
        "Laden Potsdam", "Brandenburger Str. 9", "14467", "Potsdam",
    )  # fmt: skip


def test_a_successor_lookup_that_fails_leaves_the_plain_outage() -> None:
    """The successor is looked up only once the TSE is out of service; a lookup that
    cannot be made (no site records) is the plain outage, not the lookup's error."""
    import pytest

    from opentse.register.backends import TSEReplaced, TSEUnavailable

    service = memory_service()
    ready_tse(service, "t1", client_id="K1")  # admin stays logged in
    service.disable("t1")

    def broken() -> str | None:
        raise OSError("no site records here")

    with pytest.raises(TSEUnavailable, match="t1 is DISABLED") as raised:
        EmbeddedBackend(service, "t1", successor=broken).check("K1")
    assert not isinstance(raised.value, TSEReplaced)
    with pytest.raises(TSEReplaced, match="replaced by t2"):
        EmbeddedBackend(service, "t1", successor=lambda: "t2").check("K1")
