"""`opentse pos setup` against real `opentse serve` processes (LAN mode with TLS, and
plain HTTP): a shop owner had to send seven raw HTTP requests to get a TSS and a
client before the first `pos sell` on a served TSE."""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.server import lan
from opentse.testing.serving import serve_process, session_fields
from opentse.verify.receipt import verify_receipt

ENV = {k: v for k, v in os.environ.items() if not k.startswith("OPENTSE_")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def _run(*args: str) -> Ran:
    """The real command in this process (a process per call took 1.5 s); the services
    it talks to are real `opentse serve` processes."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("OPENTSE_")}
    result = CliRunner().invoke(build_app(), list(args), env=unset)
    return Ran(result.exit_code, result.stdout, result.stderr)


@pytest.fixture(autouse=True)
def _in_a_folder_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A set-up keeps a new TSS's PUK in the current folder until it finishes."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def lan_tse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`opentse serve --lan` (TLS, API key, LAN-TSE-Session.txt) on loopback."""
    data = tmp_path_factory.mktemp("pos-setup-lan") / "data"
    with serve_process(data, lan=True, env=ENV):
        session = data / lan.SESSION_FILE
        yield {"session": session, "fields": session_fields(session.read_text())}


@pytest.fixture(scope="module")
def plain_tse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`opentse serve` over plain HTTP with an API key made by `apikey create`."""
    data = tmp_path_factory.mktemp("pos-setup-plain") / "data"
    key = json.loads(_run("apikey", "create", "--data", str(data), "--json").stdout)
    with serve_process(data, env=ENV) as base:
        where = ["--url", base, "--api-key", key["api_key"], "--api-secret", key["api_secret"]]
        yield {"base": base, "where": where, **key}


def _tss_count(lan_tse: dict[str, Any]) -> int:
    f = lan_tse["fields"]
    result = lan.connection_test(
        f["URL"], f["API key"], f["API secret"], fingerprint=f["TLS SHA-256"]
    )
    return int(result["tss_count"])


def test_setup_from_the_lan_session_file_then_the_till_sells_with_its_file(
    lan_tse: dict[str, Any], tmp_path: Path
) -> None:
    """The whole POS flow from LAN-TSE-Session.txt; the PUK and PIN are printed once,
    the till file (0600) is what pos sell --session needs; a second run changes nothing."""
    till = tmp_path / "till.txt"
    session = str(lan_tse["session"])
    out = _run("pos", "setup", "--session", session, "--serial", "KASSE-1", "--out", str(till))
    assert out.returncode == 0, out.stderr
    assert "created and initialized" in out.stdout
    puk = next(line for line in out.stdout.splitlines() if line.startswith("Admin PUK: "))
    pin = next(line for line in out.stdout.splitlines() if line.startswith("Admin PIN: "))
    assert len(puk) > len("Admin PUK: ") + 9 and len(pin) >= len("Admin PIN: ") + 6
    assert puk.split(": ")[1] not in out.stderr and pin.split(": ")[1] not in out.stderr
    assert stat.S_IMODE(till.stat().st_mode) == 0o600
    text = till.read_text()
    assert lan_tse["fields"]["API secret"] in text and lan_tse["fields"]["TLS SHA-256"] in text
    assert puk.split(": ")[1] not in text and pin.split(": ")[1] not in text
    count = _tss_count(lan_tse)

    journal = str(tmp_path / "till.db")
    sale = ["--line", "Kaffee:1:2.50:1", "--pay", "bar:2.50", "--json"]
    sold = _run("pos", "sell", "--session", str(till), "--journal", journal, *sale)
    assert sold.returncode == 0, sold.stderr
    body = json.loads(sold.stdout)
    assert body["tse_failed"] is False, body["error"]
    assert verify_receipt(body["qr_code_data"]).ok
    assert body["qr_code_data"].split(";")[1] == "KASSE-1"

    again = _run("pos", "setup", "--session", session, "--serial", "KASSE-1", "--json")
    assert again.returncode == 0, again.stderr
    answer = json.loads(again.stdout)
    assert answer["status"] == "exists" and answer["created_tss"] is False
    assert "admin_puk" not in answer and "admin_pin" not in answer
    assert f"TSS:                 {answer['tss']}" in text
    assert f"Client:              {answer['client']}" in text
    assert _tss_count(lan_tse) == count  # no second TSS


def test_a_wrong_fingerprint_is_refused_before_the_secret_is_sent(
    lan_tse: dict[str, Any],
) -> None:
    session = str(lan_tse["session"])
    wrong = "AB" * 32
    out = _run("pos", "setup", "--session", session, "--serial", "K-9", "--fingerprint", wrong)
    assert out.returncode == 1 and "error E_TLS_PIN" in out.stderr
    assert lan_tse["fields"]["TLS SHA-256"].replace(":", "") in out.stderr
    assert lan_tse["fields"]["API secret"] not in out.stdout + out.stderr


def test_a_wrong_secret_an_unreachable_service_and_a_bad_serial_are_clear(
    plain_tse: dict[str, Any],
) -> None:
    base, key = plain_tse["base"], plain_tse["api_key"]
    wrong = ["--url", base, "--api-key", key, "--api-secret", "not-the-secret"]
    out = _run("pos", "setup", *wrong, "--serial", "KASSE-1")
    assert out.returncode == 1 and "error E_SETUP_AUTH" in out.stderr
    assert "not-the-secret" not in out.stdout + out.stderr
    closed = f"http://127.0.0.1:{_free_port()}"
    out = _run("pos", "setup", "--url", closed, "--api-key", key, "--api-secret", "s")
    assert out.returncode == 2  # --serial missing: a usage error
    out = _run("pos", "setup", "--url", closed, "--api-key", key, "--api-secret", "s",
               "--serial", "KASSE-1")  # fmt: skip
    assert out.returncode == 1 and "error E_SETUP_UNREACHABLE" in out.stderr
    out = _run("pos", "setup", *plain_tse["where"], "--serial", "Kasse/1")
    assert out.returncode == 1 and "error E_CLIENT_ID_INVALID" in out.stderr
    assert "--serial 'Kasse/1'" in out.stderr


def test_a_till_is_added_to_an_existing_tss_with_its_admin_pin(
    plain_tse: dict[str, Any], tmp_path: Path
) -> None:
    where = plain_tse["where"]
    first = _run("pos", "setup", *where, "--serial", "THEKE-1", "--admin-pin", "24681357",
                 "--json")  # fmt: skip
    assert first.returncode == 0, first.stderr
    made = json.loads(first.stdout)
    assert made["created_tss"] is True and made["admin_pin"] == "24681357"
    tss = made["tss"]
    add = ["pos", "setup", *where, "--serial", "THEKE-2", "--tss", tss, "--json"]
    out = _run(*add)
    assert out.returncode == 1 and "error E_SETUP_ADMIN_PIN" in out.stderr
    out = _run(*add, "--admin-pin", "11111111")
    assert out.returncode == 1 and "error E_SETUP_ADMIN_PIN" in out.stderr
    assert "11111111" not in out.stderr
    out = _run(*add, "--admin-pin", "24681357")
    assert out.returncode == 0, out.stderr
    second = json.loads(out.stdout)
    assert second["tss"] == tss and second["created_client"] is True
    assert second["created_tss"] is False and "admin_puk" not in second
    out = _run(*add, "--admin-pin", "24681357")  # again: nothing changed
    assert json.loads(out.stdout)["status"] == "exists"
    out = _run("pos", "setup", *where, "--serial", "THEKE-2", "--tss", tss,
               "--client", made["client"])  # fmt: skip
    assert out.returncode == 1 and "error E_SETUP_CLIENT_CONFLICT" in out.stderr

    # the till signs with it over plain HTTP: a till file without a fingerprint
    till = tmp_path / "till.txt"
    out = _run(*add, "--admin-pin", "24681357", "--out", str(till))
    assert out.returncode == 0 and "(no TLS)" in till.read_text()
    sale = ["--line", "Tee:1:1.80:1", "--pay", "bar:1.80", "--json"]
    journal = str(tmp_path / "till.db")
    sold = _run("pos", "sell", "--session", str(till), "--journal", journal, *sale)
    assert sold.returncode == 0, sold.stderr
    body = json.loads(sold.stdout)
    assert body["tse_failed"] is False and body["qr_code_data"].split(";")[1] == "THEKE-2"


def test_pos_takes_the_service_from_the_lan_session_and_needs_tss_and_client(
    lan_tse: dict[str, Any], plain_tse: dict[str, Any], tmp_path: Path
) -> None:
    """--session with serve --lan's own file: URL, key, secret and fingerprint come from
    it, --tss and --client from the options; without them the command says what is
    missing (it said nothing of the file)."""
    session = str(lan_tse["session"])
    made = _run("pos", "setup", "--session", session, "--serial", "KASSE-5", "--json")
    answer = json.loads(made.stdout)
    ids = ["--tss", answer["tss"], "--client", answer["client"]]
    journal = ["--journal", str(tmp_path / "till.db")]
    out = _run("pos", "status", "--session", session, *ids, *journal, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "green"
    out = _run("pos", "status", "--session", session, *journal)
    assert out.returncode == 1 and "error E_POS_TILL" in out.stderr
    out = _run("pos", "status", "--session", str(tmp_path / "none.txt"), *ids, *journal)
    assert out.returncode == 1 and "error E_SESSION_FILE" in out.stderr
    not_a_session = tmp_path / "notes.txt"
    not_a_session.write_text("Kasse 1\n")
    out = _run("pos", "setup", "--session", str(not_a_session), "--serial", "KASSE-5")
    assert out.returncode == 1 and "error E_SESSION_FILE" in out.stderr


def test_pos_status_mid_day_says_since_when_and_keeps_a_signing_outage_yellow(
    plain_tse: dict[str, Any], tmp_path: Path
) -> None:
    """Every pos command starts a register: a till whose TSE went away mid-day said
    RED 'TSE nicht erreichbar beim Start' at the next command, also while its receipts
    were being printed unsigned (a yellow outage turned red). Now the outage keeps its
    colour and the message names its start."""
    till = tmp_path / "till.txt"
    made = _run("pos", "setup", *plain_tse["where"], "--serial", "MITTAG-1", "--out", str(till))
    assert made.returncode == 0, made.stderr
    journal = ["--journal", str(tmp_path / "till.db")]
    sale = ["--line", "Tee:1:1.80:1", "--pay", "bar:1.80", "--json"]
    sold = _run("pos", "sell", "--session", str(till), *journal, *sale)
    assert json.loads(sold.stdout)["tse_failed"] is False, sold.stderr
    gone = ["--session", str(till), "--url", f"http://127.0.0.1:{_free_port()}", *journal]

    unsigned = json.loads(_run("pos", "sell", *gone, *sale, "--timeout", "1").stdout)
    assert unsigned["tse_failed"] is True
    starts = set()
    for unsigned_receipts in (1, 2):  # a status, and the next sale, each start a register
        out = _run("pos", "status", *gone, "--timeout", "1", "--json")
        status = json.loads(out.stdout)
        assert status["status"] == "yellow", status["message"]
        assert status["message"].startswith("TSE ausgefallen seit ")
        assert status["consecutive_failures"] == unsigned_receipts
        assert status["outage_started_at"] == status["outages"][-1]["started_at"]
        starts.add(status["outage_started_at"])
        _run("pos", "sell", *gone, *sale, "--timeout", "1")
    assert len(starts) == 1 and len(status["outages"]) == 1
    text = _run("pos", "status", *gone, "--timeout", "1")
    assert text.returncode == 0 and "YELLOW" in text.stdout and "RED" not in text.stdout
    ok = _run("pos", "status", "--session", str(till), *journal, "--json")
    assert json.loads(ok.stdout)["status"] == "green"
    assert json.loads(ok.stdout)["outage_started_at"] is None

    # a till that never reached its TSE this day: red, at its start
    fresh = ["--journal", str(tmp_path / "other.db"), "--timeout", "1", "--json"]
    out = _run("pos", "status", *gone[:-2], *fresh)
    status = json.loads(out.stdout)
    assert status["status"] == "red" and status["message"].startswith("TSE nicht erreichbar seit ")


def test_the_admin_pin_is_asked_for_only_when_an_existing_tss_needs_it(
    plain_tse: dict[str, Any], tmp_path: Path
) -> None:
    """On a terminal the PIN is asked for (not typed on the command line), and only
    when a client is to be registered: a till set up already is reported unasked."""
    from opentse.register.till_setup import setup_till

    made = _run("pos", "setup", *plain_tse["where"], "--serial", "FRAGE-1", "--admin-pin",
                "13572468", "--json")  # fmt: skip
    tss = json.loads(made.stdout)["tss"]
    asked: list[str] = []

    def ask() -> str:
        asked.append("asked")
        return "13572468"

    key = (plain_tse["base"], plain_tse["api_key"], plain_tse["api_secret"])
    again = setup_till(*key, "FRAGE-1", tss=tss, ask_pin=ask)
    assert again.created_client is False and asked == []
    added = setup_till(*key, "FRAGE-2", tss=tss, ask_pin=ask)
    assert added.created_client is True and added.tss == tss and asked == ["asked"]
    assert added.admin_pin is None and added.admin_puk is None
    out = _run("pos", "status", "--session", str(tmp_path / "x.txt"), "--data", str(tmp_path))
    assert out.returncode == 1 and "error E_POS_BACKEND" in out.stderr


def test_a_setup_that_stops_after_making_the_tss_still_shows_its_puk_and_pin(
    plain_tse: dict[str, Any],
) -> None:
    """The client was refused after the TSS was made (here: its --client UUID is
    another till's): the error alone left a TSS whose PUK was in no other answer, so
    it could never be used. Now the PUK and PIN are printed with the error, which
    says how to finish; running again with --tss and the PIN does."""
    where = plain_tse["where"]
    first = json.loads(_run("pos", "setup", *where, "--serial", "HALB-1", "--json").stdout)
    out = _run("pos", "setup", *where, "--serial", "HALB-2", "--client", first["client"],
               "--json")  # fmt: skip
    assert out.returncode == 1 and "error E_SETUP_REFUSED" in out.stderr
    shown = json.loads(out.stdout)
    assert shown["status"] == "incomplete" and shown["tss"] != first["tss"]
    assert len(shown["admin_puk"]) >= 10 and len(shown["admin_pin"]) == 8
    assert f"--tss {shown['tss']}" in out.stderr
    assert shown["admin_puk"] not in out.stderr and shown["admin_pin"] not in out.stderr
    kept = Path(shown["puk_file"])
    assert kept.name == "PUK-setup-HALB-2.txt" and shown["admin_puk"] in kept.read_text()
    done = _run("pos", "setup", *where, "--serial", "HALB-2", "--tss", shown["tss"],
                "--admin-pin", shown["admin_pin"], "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    finished = json.loads(done.stdout)
    assert finished["tss"] == shown["tss"] and finished["created_client"] is True
    assert finished["admin_puk"] == shown["admin_puk"] and not kept.exists()


def test_a_puk_file_that_cannot_be_written_stops_before_the_tss_is_deployed(
    plain_tse: dict[str, Any], tmp_path: Path
) -> None:
    """The PUK must be on disk before the deployment makes the service forget it: a
    --puk-file in a missing folder stops the set-up right there (the TSS still
    CREATED, its PUK printed), and a run with a usable file finishes that TSS."""
    where, serial = plain_tse["where"], "KEINE-DATEI-1"
    nowhere = tmp_path / "missing" / "puk.txt"
    out = _run("pos", "setup", *where, "--serial", serial, "--puk-file", str(nowhere), "--json")
    assert out.returncode == 1 and "error E_SETUP_PENDING" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and str(nowhere) in out.stderr
    assert "kept in" not in out.stderr and f"--tss {json.loads(out.stdout)['tss']}" in out.stderr
    shown = json.loads(out.stdout)
    assert shown["status"] == "incomplete" and not nowhere.exists()
    assert shown["admin_puk"] not in out.stderr
    done = _run("pos", "setup", *where, "--serial", serial, "--tss", shown["tss"], "--json")
    assert done.returncode == 0, done.stderr
    finished = json.loads(done.stdout)
    assert finished["tss"] == shown["tss"] and finished["admin_puk"] == shown["admin_puk"]


def _plain_tss_count(plain_tse: dict[str, Any]) -> int:
    result = lan.connection_test(plain_tse["base"], plain_tse["api_key"], plain_tse["api_secret"])
    return int(result["tss_count"])


def test_a_puk_file_path_holding_another_file_is_never_overwritten(
    plain_tse: dict[str, Any], tmp_path: Path
) -> None:
    """--puk-file naming an admin's own notes (other TSSs' PUKs, say) was overwritten
    with the new set-up and deleted when it finished. Now the set-up is refused
    before any TSS is made, and the file stays as it was; adding a till to an
    existing TSS (no PUK to keep) leaves it alone too."""
    where = plain_tse["where"]
    notes = tmp_path / "notes.txt"
    notes.write_text("PUK of the old TSS: 123456\n")
    before = _plain_tss_count(plain_tse)
    out = _run("pos", "setup", *where, "--serial", "NOTIZ-1", "--puk-file", str(notes), "--json")
    assert out.returncode == 1 and "error E_SETUP_PENDING" in out.stderr, out.stderr
    assert "not a set-up file" in out.stderr and str(notes) in out.stderr
    assert notes.read_text() == "PUK of the old TSS: 123456\n"
    assert _plain_tss_count(plain_tse) == before  # refused before a TSS was made
    made = json.loads(_run("pos", "setup", *where, "--serial", "NOTIZ-1", "--json").stdout)
    added = _run(
        "pos", "setup", *where, "--serial", "NOTIZ-2", "--tss", made["tss"],
        "--admin-pin", made["admin_pin"], "--puk-file", str(notes), "--json",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert notes.read_text() == "PUK of the old TSS: 123456\n"


def test_a_rerun_after_the_client_was_registered_says_what_the_earlier_run_did(
    plain_tse: dict[str, Any], tmp_path: Path
) -> None:
    """The till's process was killed after the client was registered and before the
    PUK and PIN were printed: its set-up file is all that holds them. The rerun showed
    them under 'registered ... already: nothing changed.', as if the till had been
    set up long ago and the PUK were some other one; it says now that an earlier run
    made the TSS and the client and that this run only shows what that run kept."""
    from opentse.register import setup_file

    where, serial = plain_tse["where"], "WIEDER-1"
    made = json.loads(_run("pos", "setup", *where, "--serial", serial, "--json").stdout)
    kept = setup_file.default_path(serial, tmp_path)  # the current folder
    assert made["status"] == "created" and not kept.exists()
    # what the killed run left: the file it wrote before deploying the TSS
    pending = setup_file.PendingSetup(
        made["url"], made["tss"], serial, made["admin_puk"], made["admin_pin"]
    )
    setup_file.write(kept, pending)
    out = _run("pos", "setup", *where, "--serial", serial)
    assert out.returncode == 0, out.stderr
    assert "nothing changed" not in out.stdout, out.stdout
    assert f"TSS {made['tss']}: created and initialized by an earlier run" in out.stdout
    assert f"Client {made['client']} (serial number {serial}) registered by that run" in (
        out.stdout
    )
    assert f"Admin PUK: {made['admin_puk']}" in out.stdout
    assert f"Admin PIN: {made['admin_pin']}" in out.stdout
    assert not kept.exists()  # shown: deleted, as the message says
    assert f"kept in {kept}, which is deleted now." in out.stdout
    again = _run("pos", "setup", *where, "--serial", serial)  # nothing left to show
    assert "nothing changed" in again.stdout and "Admin PUK" not in again.stdout


def test_a_resumed_set_up_says_so_in_json(plain_tse: dict[str, Any], tmp_path: Path) -> None:
    """The rerun's --json said "status": "exists", as for a till set up long ago, with
    a PUK and PIN beside it: a POS vendor's script could not tell it finished (or only
    showed) an earlier run's set-up. Now "resumed", and "steps" says what this run did
    ([] when the earlier run had registered the client)."""
    from opentse.register import setup_file

    where, serial = plain_tse["where"], "WIEDER-2"
    made = json.loads(_run("pos", "setup", *where, "--serial", serial, "--json").stdout)
    assert made["status"] == "created"
    assert made["steps"] == [
        "tss_created",
        "tss_deployed",
        "admin_pin_set",
        "tss_initialized",
        "client_registered",
    ]
    kept = setup_file.default_path(serial, tmp_path)
    pending = setup_file.PendingSetup(
        made["url"], made["tss"], serial, made["admin_puk"], made["admin_pin"]
    )
    setup_file.write(kept, pending)
    out = _run("pos", "setup", *where, "--serial", serial, "--json")
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert (shown["status"], shown["steps"], shown["created_client"]) == ("resumed", [], False)
    assert (shown["tss"], shown["admin_puk"]) == (made["tss"], made["admin_puk"])
    again = json.loads(_run("pos", "setup", *where, "--serial", serial, "--json").stdout)
    assert (again["status"], again["steps"]) == ("exists", [])
    assert "admin_puk" not in again


def test_a_resumed_set_up_says_in_text_what_this_run_did(
    plain_tse: dict[str, Any], tmp_path: Path
) -> None:
    """An earlier run deployed the TSS and stopped (its PUK and PIN kept in the set-up
    file): the rerun says the TSS is that run's and lists what it did itself, not
    'created and initialized' as if it had made the TSS now."""
    import uuid

    import httpx

    from opentse.register import setup_file

    serial, tss = "HALB-1", str(uuid.uuid4())
    with httpx.Client(base_url=plain_tse["base"] + "/api/v2", timeout=30) as api:
        body = {"api_key": plain_tse["api_key"], "api_secret": plain_tse["api_secret"]}
        api.headers["Authorization"] = (
            "Bearer " + api.post("/auth", json=body).json()["access_token"]
        )
        puk = api.put(f"/tss/{tss}", json={}).json()["admin_puk"]
        assert api.patch(f"/tss/{tss}", json={"state": "UNINITIALIZED"}).status_code == 200
        url = str(api.base_url).rstrip("/")
    kept = setup_file.default_path(serial, tmp_path)
    setup_file.write(kept, setup_file.PendingSetup(url, tss, serial, puk, "13572468"))
    out = _run("pos", "setup", *plain_tse["where"], "--serial", serial)
    assert out.returncode == 0, out.stderr
    assert (
        f"TSS {tss}: created by an earlier run of this set-up, which stopped; this run "
        "set the admin PIN with the kept PUK, initialized the TSS, registered the client."
    ) in out.stdout
    assert "Admin PIN: 13572468" in out.stdout and not kept.exists()
