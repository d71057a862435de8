"""CLI admin commands that are refused: a one-line error, exit 1, and the TSE as it
was: no signed log (the signature counter does not move) when the input is wrong,
and never an admin left logged in after a refused step (the next caller, e.g. an
API client of ``opentse serve`` on the same data, would act as admin without the
PIN)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import run

from opentse.engine import users
from opentse.installation import Installation

PIN = "12345678"


def _ready(tmp_path: Path) -> str:
    data = str(tmp_path / "d")
    created = json.loads(run("tse", "create", "t1", "--data", data, "--json").stdout)
    puk = created["admin_puk"]
    run("tse", "initialize", "t1", "--data", data, "--pin", PIN, "--puk", puk)
    run("client", "register", "K1", "--tss", "t1", "--data", data, "--pin", PIN)
    return data


def _counter_and_login(data: str) -> tuple[int, int | None]:
    with Installation.open(Path(data)) as inst:
        state = inst.service.get("t1").state
    return state.signature_counter, state.users[users.ADMIN].logged_in_until


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("client", "register", "Kässe-1"), "E_CLIENT_ID_INVALID"),
        (("client", "register", "K/1"), "E_CLIENT_ID_INVALID"),
        (("client", "register", "K" * 71), "E_CLIENT_ID_INVALID"),
        (("client", "register", "K1"), "E_CLIENT_CONFLICT"),
        (("client", "deregister", "NOPE"), "E_CLIENT_NOT_FOUND"),
        (("client", "deregister", "K@1"), "E_CLIENT_ID_INVALID"),
    ],
)
def test_bad_client_input_signs_nothing(tmp_path: Path, args: tuple[str, ...], code: str) -> None:
    data = _ready(tmp_path)
    before = _counter_and_login(data)
    result = run(*args, "--tss", "t1", "--data", data, "--pin", PIN, "--json", ok=False)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error {code}:") and result.stderr.count("\n") == 1
    assert _counter_and_login(data) == before == (before[0], None)


def test_initialize_twice_signs_nothing(tmp_path: Path) -> None:
    data = _ready(tmp_path)
    before = _counter_and_login(data)
    result = run("tse", "initialize", "t1", "--data", data, "--pin", PIN, ok=False)
    assert result.exit_code == 1 and "E_ILLEGAL_TSS_STATE_CHANGE" in result.stderr
    assert _counter_and_login(data) == before


def test_a_refused_step_after_login_logs_the_admin_out(tmp_path: Path) -> None:
    """Deregistering a client with an open transaction is refused by the engine after
    the admin authenticated: the admin is logged out again (the process's start-up
    updateTime, authenticateUser, logOut)."""
    data = _ready(tmp_path)
    with Installation.open(Path(data)) as inst:
        inst.service.start_transaction("t1", "K1", b"", "Kassenbeleg-V1")
    counter, _ = _counter_and_login(data)
    result = run(
        "client", "deregister", "K1", "--tss", "t1", "--data", data, "--pin", PIN, ok=False
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error E_CLIENT_HAS_OPEN_TRANSACTIONS:")
    after, logged_in_until = _counter_and_login(data)
    assert logged_in_until is None and after == counter + 3


def test_disable_then_disable_again(tmp_path: Path) -> None:
    data = _ready(tmp_path)
    run("tse", "disable", "t1", "--data", data, "--pin", PIN)
    before = _counter_and_login(data)
    result = run("tse", "disable", "t1", "--data", data, "--pin", PIN, ok=False)
    assert result.exit_code == 1 and result.stderr.startswith("error E_")
    assert _counter_and_login(data)[0] == before[0]


def test_initialize_without_the_puk_on_a_new_tse_changes_nothing(tmp_path: Path) -> None:
    """First use needs the PUK: refused with the command that sets the PIN, the TSE
    still CREATED and nothing signed (it went UNINITIALIZED and logged a refused
    authenticateUser)."""
    data = str(tmp_path / "d")
    run("tse", "create", "t1", "--data", data)
    result = run("tse", "initialize", "t1", "--data", data, "--pin", PIN, "--json", ok=False)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error E_ADMIN_PIN_BLOCKED: the admin PIN is not set yet")
    assert "opentse tse set-pin t1 --puk" in result.stderr.replace("\n", " ")
    shown = json.loads(run("tse", "show", "t1", "--data", data, "--json").stdout)
    assert (shown["state"], shown["signature_counter"]) == ("CREATED", 0)


def test_a_blocked_pin_then_the_puk_through_the_cli(tmp_path: Path) -> None:
    """Five wrong PINs count down and block; the right PIN is then refused too (the
    attempt logged, as every authenticateUser) and nobody is logged in; set-pin with
    the PUK unblocks."""
    data = str(tmp_path / "d")
    puk = json.loads(run("tse", "create", "t1", "--data", data, "--json").stdout)["admin_puk"]
    run("tse", "initialize", "t1", "--data", data, "--pin", PIN, "--puk", puk)
    args = ("client", "register", "K2", "--tss", "t1", "--data", data, "--pin")
    for left in (4, 3, 2, 1):
        result = run(*args, "00000000", ok=False)
        assert result.stderr.startswith(f"error E_PIN_INVALID: wrong admin PIN; {left} ")
    result = run(*args, "00000000", ok=False)
    assert result.stderr.startswith("error E_ADMIN_PIN_BLOCKED:")
    result = run(*args, PIN, ok=False)
    assert result.stderr.startswith("error E_ADMIN_PIN_BLOCKED:")
    assert _counter_and_login(data)[1] is None
    run("tse", "set-pin", "t1", "--data", data, "--puk", puk, "--pin", "87654321")
    out = json.loads(run(*args, "87654321", "--json").stdout)
    assert out["state"] == "REGISTERED" and _counter_and_login(data)[1] is None


def test_the_way_out_the_refusal_names_works_on_a_new_tse(tmp_path: Path) -> None:
    """tse set-pin on a new (CREATED) TSE sets the first PIN; it was refused with
    E_TSS_NOT_INITIALIZED although the initialize refusal points to it."""
    data = str(tmp_path / "d")
    puk = json.loads(run("tse", "create", "t1", "--data", data, "--json").stdout)["admin_puk"]
    refused = run("tse", "initialize", "t1", "--data", data, "--pin", PIN, ok=False)
    assert "opentse tse set-pin t1 --puk" in refused.stderr.replace("\n", " ")
    run("tse", "set-pin", "t1", "--data", data, "--puk", puk, "--pin", PIN)
    out = json.loads(run("tse", "initialize", "t1", "--data", data, "--pin", PIN, "--json").stdout)
    assert out["state"] == "INITIALIZED"
    assert _counter_and_login(data)[1] is None


def test_a_description_the_tse_cannot_sign(tmp_path: Path) -> None:
    """The description is signed (PrintableString) by initialize: tse create refuses
    one with umlauts up front; it was accepted, and initialize then failed after the
    PIN was set and the admin logged in. initialize --description is checked before
    the admin authenticates."""
    data = str(tmp_path / "d")
    result = run("tse", "create", "t1", "--data", data, "--description", "Café Müller", ok=False)
    assert result.exit_code == 1 and result.stderr.startswith("error E_SYSTEM_DATA_FORMAT:")
    assert json.loads(run("tse", "list", "--data", data, "--json").stdout) == []
    created = json.loads(run("tse", "create", "t1", "--data", data, "--json").stdout)
    args = ("tse", "initialize", "t1", "--data", data, "--pin", PIN, "--puk")
    result = run(*args, created["admin_puk"], "--description", "Kasse ß", ok=False)
    assert result.stderr.startswith("error E_SYSTEM_DATA_FORMAT:")
    shown = json.loads(run("tse", "show", "t1", "--data", data, "--json").stdout)
    assert (shown["state"], shown["signature_counter"]) == ("CREATED", 0)
    out = run(*args, created["admin_puk"], "--description", "Cafe Mueller", "--json").stdout
    assert json.loads(out)["description"] == "Cafe Mueller"


def test_update_time_before_the_timeadmin_pin_is_set(tmp_path: Path) -> None:
    data = _ready(tmp_path)
    before = _counter_and_login(data)
    result = run("tse", "update-time", "t1", "--data", data, "--pin", PIN, ok=False)
    assert result.stderr.startswith("error E_TIMEADMIN_PIN_BLOCKED: the timeadmin PIN is not set")
    assert "opentse tse set-pin t1 --user timeadmin --puk" in result.stderr.replace("\n", " ")
    assert _counter_and_login(data) == before
