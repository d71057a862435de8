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
