"""A control character in a text the register takes (line, cash-book text, payment
name, seller, master data) is refused before anything is signed (E_TEXT_CONTROL,
naming the field and the character, never echoing it raw). ``opentse pos sell --line
$'Ka\\x1bffee:1:2.50:1'`` was signed, booked and exported, and ``opentse dsfinvk
check`` then reported E_CSV_CONTROL on opentse's own export. Books that already hold
such a text (an earlier version's) still close and export."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.errors import ProtocolError
from opentse.formats.dsfinvk import reading
from opentse.formats.dsfinvk.findings import CheckState
from opentse.formats.dsfinvk.model import CashRegister, Company, Location
from opentse.formats.dsfinvk.source import ExportSource
from opentse.installation import Installation
from opentse.register import EmbeddedBackend, OutageLog, Register, RegisterConfig, Sale, Seller
from opentse.register.books import Books, MasterData
from opentse.register.remote import RemoteBackend
from opentse.register.sale import CashBookEntry, SaleLine
from opentse.register.text import CONTROL, check_text
from opentse.register.zreport import close_day
from opentse.testing import ready_tse

CODE = "E_TEXT_CONTROL"
CLIENT = "KASSE-T"
APP = build_app()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.output


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    with Installation.open(folder) as inst:
        ready_tse(inst.service, "tse-t", client_id=CLIENT, logout=True)
    return folder


def _refused(call: Callable[[], object], field: str, char: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        call()
    assert refused.value.code == CODE
    assert field in refused.value.message and char in refused.value.message
    assert CONTROL.search(refused.value.message) is None  # not echoed raw


def _bad_sale() -> Sale:
    """A sale built around add_line (as a library user may): the register checks it."""
    return Sale(lines=[SaleLine("Ka\x1bffee", Decimal(1), Decimal("2.50"), 1)])


def test_cli_sell_and_cash_refuse_a_control_character_before_signing(
    data: Path, tmp_path: Path
) -> None:
    base = ["--data", str(data), "--tss", "tse-t", "--client", CLIENT]
    base += ["--journal", str(tmp_path / "till.db")]
    code, out = run("pos", "sell", *base, "--line", "Ka\x1bffee:1:2.50:1", "--pay", "bar:2.50")
    assert code == 1 and CODE in out and "U+001B" in out and "line text" in out, out
    assert "\x1b" not in out
    code, out = run("pos", "cash", *base, "--type", "Einzahlung", "--amount", "5.00",
                    "--text", "Wechsel\x00geld")  # fmt: skip
    assert code == 1 and CODE in out and "NUL (U+0000)" in out and "\x00" not in out, out
    code, out = run("pos", "sell", *base, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80",
                    "--seller-name", "Caf\x7fe")  # fmt: skip
    assert code == 1 and CODE in out and "U+007F" in out and "seller name" in out, out
    with Installation.open(data) as inst:  # nothing signed: only the setup's logs
        state = inst.service.get("tse-t").state
        assert state.transaction_counter == 0, state
    code, out = run(
        "pos", "sell", *base, "--line", "Kaffee:1:2.50:1", "--pay", "bar:2.50", "--json"
    )  # fmt: skip
    assert code == 0, out  # the till works, and the refusals used up no number
    assert json.loads(out)["transaction_number"] == 1


def test_library_refuses_before_the_embedded_tse(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "till.db"
    with Installation.open(data) as inst:
        journal, books = OutageLog(path), Books(path)
        register = Register(
            EmbeddedBackend(inst.service, "tse-t"),
            RegisterConfig(Seller("Kiosk", ("Weg 1",)), CLIENT),
            journal,
            books=books,
        )
        register.connect()
        counter = inst.service.get("tse-t").state.signature_counter
        _refused(lambda: Sale().add_line("Ka\x1bffee", 1, "2.50", 1), "line text", "U+001B")
        _refused(lambda: Sale().add_payment("card", "1.00", name="Giro\x07"), "payment", "U+0007")
        _refused(lambda: register.sell(_bad_sale()), "text of line 1", "U+001B")
        _refused(lambda: register.order(_bad_sale()), "text of line 1", "U+001B")
        _refused(lambda: CashBookEntry("Einzahlung", Decimal(5), "a\x1fb"), "cash-book", "U+001F")
        _refused(lambda: books.set_seller("Kiosk", ("Weg\x0b1",)), "address line 1", "U+000B")
        _refused(
            lambda: RegisterConfig(Seller("Kiosk", ("Weg 1",)), CLIENT, footer=("\x1bd\x05",)),
            "footer line 1",
            "U+001B, U+0005",
        )
        _refused(lambda: register.daily_record(note="\x1b[2J"), "note", "U+001B")
        assert inst.service.get("tse-t").state.signature_counter == counter  # nothing signed
        assert books.open_count() == 0 and journal.pending_starts() == []
        sale = Sale()
        sale.add_line("Kaffee", 1, "2.50", 1)
        sale.add_payment("cash", "2.50")
        assert not register.sell(sale).tse_failed
        master = MasterData(
            Company("Kiosk\x00GmbH", "Weg 1", "12345", "Ort", tax_number="123/456/78901"),
            Location("Kiosk", "Weg 1", "12345", "Ort"),
            CashRegister(CLIENT),
        )
        after_sale = inst.service.get("tse-t").state.signature_counter
        _refused(lambda: close_day(register, books, master, "2.50"), "company name", "NUL")
        assert inst.service.get("tse-t").state.signature_counter == after_sale
        assert books.open_count() == 1 and books.closed_days() == []
        books.close_file()
        journal.close()


def test_remote_backend_refuses_before_the_served_tss(
    tmp_path: Path, fiskaly_tss: Callable[[str], dict[str, str]]
) -> None:
    import httpx

    tss = fiskaly_tss(CLIENT)
    backend = RemoteBackend(
        tss["origin"], tss["api_key"], tss["api_secret"], tss["tss"], tss["client"]
    )
    journal = OutageLog(tmp_path / "till.db")
    register = Register(backend, RegisterConfig(Seller("Kiosk", ("Weg 1",)), CLIENT), journal)
    try:
        register.connect()
        _refused(lambda: register.sell(_bad_sale()), "text of line 1", "U+001B")
        _refused(lambda: register.order(_bad_sale()), "text of line 1", "U+001B")
        with httpx.Client(base_url=tss["origin"] + "/api/v2") as api:
            r = api.post("/auth", json={"api_key": tss["api_key"], "api_secret": tss["api_secret"]})
            token = r.json()["access_token"]
            listed = api.get(
                f"/tss/{tss['tss']}/tx", headers={"Authorization": f"Bearer {token}"}
            ).json()
        assert listed["data"] == [], listed  # no transaction started at the service
        sale = Sale()
        sale.add_line("Kaffee", 1, "2.50", 1)
        sale.add_payment("cash", "2.50")
        assert not register.sell(sale).tse_failed
    finally:
        journal.close()
        backend.close()


def test_books_that_hold_such_a_text_still_close_and_export(data: Path, tmp_path: Path) -> None:
    """An earlier version booked the text: closing and export are not refused for it."""
    till = tmp_path / "till.db"
    base = ["--data", str(data), "--tss", "tse-t", "--client", CLIENT, "--journal", str(till)]
    code, out = run("pos", "sell", *base, "--line", "Kaffee:1:2.50:1", "--pay", "bar:2.50")
    assert code == 0, out
    with sqlite3.connect(till) as db:
        (text,) = db.execute("SELECT sale FROM books_receipts").fetchone()
        db.execute("UPDATE books_receipts SET sale = ?", (text.replace("Kaffee", "Ka\\u001bffee"),))
    db.close()
    export = tmp_path / "export"
    code, out = run(
        "pos", "close", *base, "--out", str(export), "--company", "Kiosk GmbH",
        "--street", "Weg 1", "--postal-code", "12345", "--city", "Ort",
        "--tax-number", "123/456/78901", "--counted-cash", "2.50", "--json",
    )  # fmt: skip
    summary = json.loads(out)  # closed and written; the export's check says why it fails
    assert summary["z_nr"] == 1 and summary["receipts"] == 1, out
    assert code == 1 and "E_CSV_CONTROL" in " ".join(summary["check_errors"]), out
    assert "Ka\x1bffee" in (export / "lines.csv").read_text(encoding="utf-8")


def test_a_receipt_booked_with_such_a_text_can_still_be_cancelled(
    data: Path, tmp_path: Path
) -> None:
    """The cancellation repeats the booked receipt's texts; refusing them left a sale
    of an earlier version uncancellable (review of 0770394). A new sale with such a
    text is still refused."""
    till = tmp_path / "till.db"
    base = ["--data", str(data), "--tss", "tse-t", "--client", CLIENT, "--journal", str(till)]
    code, out = run("pos", "sell", *base, "--line", "Kaffee:1:2.50:1", "--pay", "bar:2.50")
    assert code == 0, out
    with sqlite3.connect(till) as db:
        (text,) = db.execute("SELECT sale FROM books_receipts").fetchone()
        db.execute("UPDATE books_receipts SET sale = ?", (text.replace("Kaffee", "Ka\\u001bffee"),))
    db.close()
    code, out = run("pos", "storno", *base, "1", "--json")
    assert code == 0, out
    assert json.loads(out)["receipt_number"] == "2", out
    code, out = run("pos", "sell", *base, "--line", "Ka\x1bffee:1:2.50:1", "--pay", "bar:2.50")
    assert code != 0 and CODE in out, out


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_any_accepted_text_passes_the_dsfinvk_control_rule(text: str) -> None:
    """What the register takes, the export's check does not call a control character."""
    try:
        check_text(text, "line text")
    except ProtocolError as exc:
        assert exc.code == CODE
        accepted = False
    else:
        accepted = True
    check = CheckState(ExportSource(Path("export")))
    reading._check_control(check, "lines.csv", "ARTIKELTEXT", text, 2)
    flagged = any(f.code == "E_CSV_CONTROL" for f in check.findings)
    assert accepted != flagged, (text, accepted, flagged)


def test_a_services_error_message_is_kept_as_plain_text(tmp_path: Path) -> None:
    """What the register does not take from a person but from a TSE service (its
    error message, kept in the books as TSE_TA_FEHLER and shown) is made plain: each
    control character is '?'. A stand-in for another vendor's service answers every
    call after the login with an error whose message holds an ESC sequence."""
    import httpx

    def service(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth"):
            return httpx.Response(200, json={"access_token": "t", "refresh_token": "r"})
        return httpx.Response(400, json={"code": "E_VENDOR", "message": "kaputt\x1b[2J\x00"})

    backend = RemoteBackend(
        "http://vendor.invalid", "key", "secret", "tss", "client",
        transport=httpx.MockTransport(service),
    )  # fmt: skip
    path = tmp_path / "till.db"
    journal, books = OutageLog(path), Books(path)
    register = Register(
        backend, RegisterConfig(Seller("K", ("W 1",)), CLIENT), journal, books=books
    )
    sale = Sale()
    sale.add_line("Kaffee", 1, "2.50", 1)
    sale.add_payment("cash", "2.50")
    result = register.sell(sale)
    assert result.tse_failed and result.error is not None
    assert "kaputt?[2J?" in result.error and CONTROL.search(result.error) is None
    booked = books.booked(result.receipt_ref)
    assert booked is not None and CONTROL.search(booked.error) is None, booked
    [outage] = journal.outages()
    assert CONTROL.search(outage.reason) is None, outage
    books.close_file()
    journal.close()
    backend.close()
