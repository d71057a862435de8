"""What a register refuses before anything is booked, and how fast a till stays in an
outage: oversized processData is the sale's error (not a TSE failure), options are
checked before a file is made, and a TSE known down is asked once per sale, not
three times with retries."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from counting_ports import counting_port
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.errors import ProtocolError
from opentse.installation import Installation
from opentse.register import EmbeddedBackend, OutageLog, Register, RegisterConfig, Sale, Seller
from opentse.register.books import Books
from opentse.register.remote import RemoteBackend
from opentse.register.sale import CashBookEntry
from opentse.testing import ready_tse

APP = build_app()
CLIENT = "KASSE-R"


def run(*args: str, stdout: bool = False) -> tuple[int, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.stdout if stdout else result.output


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    with Installation.open(folder) as inst:
        ready_tse(inst.service, "tse-r", client_id=CLIENT, logout=True)
    return folder


def test_oversized_order_and_cash_entry_are_refused_before_the_tse(
    data: Path, tmp_path: Path
) -> None:
    """An order whose Bestellung-V1 is over the TSE's 1 MB was booked as a TSE failure
    (E_PROCESS_DATA_TOO_LARGE from the Finish) and its Start stayed open until
    recovery. Now refused with that code before the receipt number, the books, the
    journal or the TSE are touched. A cash entry's text is refused before (E_LINE_TEXT)."""
    path = tmp_path / "till.db"
    with Installation.open(data) as inst:
        journal, books = OutageLog(path), Books(path)
        register = Register(
            EmbeddedBackend(inst.service, "tse-r"),
            RegisterConfig(Seller("X", ("Weg 1",)), CLIENT),
            journal,
            books=books,
        )
        register.connect()
        counter = inst.service.get("tse-r").state.signature_counter
        order = Sale("AVBestellung")
        for n in range(12_000):
            order.add_line(f"Position {n} " + "x" * 80, 1, "1.00", 1)
        with pytest.raises(ProtocolError) as refused:
            register.order(order)
        assert refused.value.code == "E_PROCESS_DATA_TOO_LARGE"
        assert "split" in refused.value.message
        with pytest.raises(ProtocolError) as cash:  # its text is DSFinV-K's A255 at most
            register.book(CashBookEntry("Einzahlung", Decimal("1.00"), "y" * 1_000_001))
        assert cash.value.code == "E_LINE_TEXT"
        state = inst.service.get("tse-r").state
        assert state.open_transactions == {} and state.signature_counter == counter
        assert journal.outages() == [] and journal.pending_starts() == []
        assert books.open_count() == 0
        small = Sale("AVBestellung")
        small.add_line("Kaffee", 1, "2.50", 1)
        assert register.order(small).receipt.receipt_number == "1"  # no number used up
        books.close_file()
        journal.close()


def test_remote_limit_is_what_a_1_mb_request_carries() -> None:
    """Over the API processData goes base64-encoded in a JSON body the service limits
    to 1 MB (413): the register refuses what would not fit instead of an outage."""
    backend = RemoteBackend("http://tse.invalid", "k", "s", str(uuid.uuid4()), "c")
    assert backend.max_process_data > 700_000 and backend.max_process_data * 4 / 3 < 1024 * 1024
    register = Register(
        backend, RegisterConfig(Seller("X", ("Weg 1",)), CLIENT), OutageLog(":memory:")
    )
    order = Sale("AVBestellung")  # ~810 kB of Bestellung-V1: under the TSE's 1 MB
    for n in range(9_000):
        order.add_line(f"Position {n} " + "x" * 80, 1, "1.00", 1)
    with pytest.raises(ProtocolError) as refused:
        register.order(order)  # the service is never asked (tse.invalid would fail)
    assert refused.value.code == "E_PROCESS_DATA_TOO_LARGE"
    assert backend.requests == 0
    backend.close()


@pytest.mark.parametrize(
    ("option", "code_text"),
    [
        (["--timeout", "0"], "E_REGISTER_CONFIG"),
        (["--client", "KÄSSE-1"], "E_REGISTER_CONFIG"),
        (["--timezone", "Europe/Nowhere"], "E_TIMEZONE"),
    ],
)
def test_refused_options_make_no_journal(data: Path, option: list[str], code_text: str) -> None:
    """A refused --timeout, client id or time zone left a new journal file
    (<data>/pos/<client>.db) behind: every option is checked before a file is made."""
    args = ["pos", "sell", "--data", str(data), "--tss", "tse-r", "--client", CLIENT]
    code, out = run(*args, *option, "--line", "Tee:1:1.80:1", "--pay", "bar:1.80")
    assert code == 1 and code_text in out, out
    assert not (data / "pos").exists()


def test_a_mistyped_data_folder_is_refused_not_set_up(tmp_path: Path) -> None:
    """`pos sell --data typo` set up a new, empty installation there and printed every
    sale "TSE ausgefallen" (exit 0)."""
    folder = tmp_path / "typo"
    code, out = run(
        "pos", "sell", "--data", str(folder), "--tss", "tse-r", "--client", CLIENT,
        "--line", "Tee:1:1.80:1", "--pay", "bar:1.80",
    )  # fmt: skip
    assert code == 1 and "E_DATA_DIR" in out and "check --data" in out
    assert not folder.exists()


TSS, CLIENT_UUID = "0b3c5a4e-3f3e-4c4e-9a59-0d6c8f1b2a10", "5f0f4e8a-9a35-4f43-8c34-5b8a1d2c3e4f"


def _sell_remote(
    url: str, journal: Path, *extra: str, tss: str = TSS, client: str = CLIENT_UUID
) -> tuple[float, dict[str, object]]:
    began = time.monotonic()
    code, out = run(
        "pos", "sell", "--url", url, "--tss", tss, "--client", client,
        "--journal", str(journal), "--line", "Tee:1:1.80:1", "--pay", "bar:2.00", "--json",
        *extra, stdout=True,
    )  # fmt: skip
    took = time.monotonic() - began
    assert code == 0, out
    body: dict[str, object] = json.loads(out)
    return took, body


def test_a_till_in_an_outage_stays_fast_when_the_service_refuses(tmp_path: Path) -> None:
    """A service that drops every request: each sale asked three times (serial number,
    check, Start), each with three retries and backoff (~4 s a sale). In the outage
    each is asked once (counted as connections, not timed: a loaded machine's clock
    says nothing); the serial number of a till that never reached its service was
    still asked with its retries (6 connections a sale)."""
    journal, keys = tmp_path / "till.db", ("--api-key", "k", "--api-secret", "s")
    with counting_port(hang=False) as dropping:
        _sell_remote(dropping.url, journal, *keys)  # the outage begins (retries, once)
        assert dropping.connections > 1  # the first failure is retried
        for _ in range(2):
            before = dropping.connections
            _took, body = _sell_remote(dropping.url, journal, *keys)
            assert body["tse_failed"] is True and body["status"] in ("red", "yellow")
            asked = dropping.connections - before  # serial number, check, Start
            assert asked <= 3, f"a sale in the outage asked the service {asked} times"
    outage = OutageLog(journal)
    assert len(outage.outages()) == 1 and len(outage.outages()[0].receipt_refs) == 3
    outage.close()


def test_a_till_in_an_outage_waits_one_deadline_when_the_service_hangs(
    tmp_path: Path, fiskaly_tss: Callable[[str], dict[str, str]]
) -> None:
    """A till that signed on its service, which then hangs, with --timeout 2: each sale
    waited for the serial number, the check and the Start (3 deadlines, 6 s), the
    closing for the check and recovery. Now the kept serial number is not asked
    again, the check is the one probe, and the sale (or the closing's recovery)
    right after it does not ask again (probe_interval)."""
    tss = fiskaly_tss("KASSE-H")
    journal = tmp_path / "till.db"
    ids = {"tss": tss["tss"], "client": tss["client"]}
    keys = ("--api-key", tss["api_key"], "--api-secret", tss["api_secret"])
    _, body = _sell_remote(tss["origin"], journal, *keys, **ids)
    assert body["tse_failed"] is False  # the till works; its serial number is kept
    with counting_port(hang=True) as hung:
        for _ in range(2):  # the outage's first sale, and the next
            before = hung.connections
            _took, body = _sell_remote(hung.url, journal, *keys, "--timeout", "2", **ids)
            asked = hung.connections - before  # each request waited one deadline
            assert asked == 1, f"a sale in the outage waited for {asked} requests"
            assert body["tse_failed"] is True and "not asked again" in str(body["error"])
            assert "KASSE-H" in str(body["receipt_text"])  # the kept serial, not the UUID
        before = hung.connections
        code, out = run(
            "pos", "close", "--url", hung.url, "--tss", tss["tss"], "--client",
            tss["client"], *keys, "--journal", str(journal), "--counted-cash", "4.00",
            "--company", "H GmbH", "--street", "Weg 1", "--postal-code", "12345",
            "--city", "Ort", "--tax-number", "123/456/78901",
        )  # fmt: skip
        asked = hung.connections - before
    assert code == 0 and "KASSENABSCHLUSS" in out, out
    assert asked <= 1, f"the closing in the outage waited for {asked} requests"


def test_after_a_tse_replacement_the_till_is_pointed_at_its_journal(
    tmp_path: Path, fiskaly_tss: Callable[[str], dict[str, str]]
) -> None:
    """`--url` names the default register file after the client UUID, which a TSE
    replacement changes: the till started new books (receipt numbers from 1 again,
    the closings elsewhere). A new default file for a register serial another file
    keeps is refused, naming that file; with --journal the numbers go on."""
    old, new = fiskaly_tss("KASSE-W"), fiskaly_tss("KASSE-W")  # the new TSS: same register
    home = tmp_path / "home"

    def sell(tss: dict[str, str], *extra: str) -> tuple[int, str]:
        result = CliRunner().invoke(
            APP,
            ["pos", "sell", "--url", tss["origin"], "--tss", tss["tss"], "--client",
             tss["client"], "--line", "Tee:1:1.80:1", "--pay", "bar:2.00", "--json", *extra],
            env={"HOME": str(home), "OPENTSE_API_KEY": tss["api_key"],
                 "OPENTSE_API_SECRET": tss["api_secret"]},
        )  # fmt: skip
        return result.exit_code, result.output

    code, out = sell(old)
    assert code == 0 and json.loads(out)["receipt_number"] == "1", out
    kept = home / ".opentse" / "pos" / f"{old['client']}.db"
    assert kept.exists()
    code, out = sell(new)
    assert code == 1 and "E_POS_JOURNAL_ELSEWHERE" in out and str(kept) in out, out
    assert not (home / ".opentse" / "pos" / f"{new['client']}.db").exists()
    code, out = sell(new, "--journal", str(kept))
    body = json.loads(out)
    assert code == 0 and body["tse_failed"] is False and body["receipt_number"] == "2", out


def test_a_wrong_api_secret_is_refused_not_an_outage(
    tmp_path: Path, fiskaly_tss: Callable[[str], dict[str, str]]
) -> None:
    """A wrong (or revoked) API secret was journaled as a TSE outage and every sale
    printed "TSE ausgefallen", exit 0. The service answers, it refuses the till's
    credentials: E_REGISTER_AUTH, exit 1, nothing booked, the secret not shown."""
    tss = fiskaly_tss("KASSE-A")
    journal = tmp_path / "till.db"
    result = CliRunner().invoke(
        APP,
        ["pos", "sell", "--url", tss["origin"], "--tss", tss["tss"], "--client", tss["client"],
         "--api-key", tss["api_key"], "--api-secret", "not-the-secret",
         "--journal", str(journal), "--line", "Tee:1:1.80:1", "--pay", "bar:2.00"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "E_REGISTER_AUTH" in result.output and "TSE ausgefallen" not in result.output
    assert "not-the-secret" not in result.output
    assert not journal.exists()


@pytest.mark.parametrize("wrong", ["tss", "client"])
def test_over_the_api_a_register_the_service_does_not_know_is_refused(
    tmp_path: Path, fiskaly_tss: Callable[[str], dict[str, str]], wrong: str
) -> None:
    """The service answers 404 for the --tss or --client UUID (a typo, a client of
    another TSS): E_REGISTER_TSS_UNKNOWN / E_REGISTER_CLIENT_UNKNOWN, exit 1, nothing
    booked, no journal; it was an outage ("TSE ausgefallen", exit 0) on every sale."""
    tss = fiskaly_tss("KASSE-U")
    ids = {"tss": tss["tss"], "client": tss["client"], wrong: str(uuid.uuid4())}
    journal = tmp_path / "till.db"
    result = CliRunner().invoke(
        APP,
        ["pos", "sell", "--url", tss["origin"], "--tss", ids["tss"], "--client", ids["client"],
         "--api-key", tss["api_key"], "--api-secret", tss["api_secret"],
         "--journal", str(journal), "--line", "Tee:1:1.80:1", "--pay", "bar:2.00"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    code = "E_REGISTER_TSS_UNKNOWN" if wrong == "tss" else "E_REGISTER_CLIENT_UNKNOWN"
    assert code in result.output and "TSE ausgefallen" not in result.output
    assert not journal.exists()
