"""``opentse tse create|list|show|initialize|disable|set-pin|update-time|delete-stored-data``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from opentse.cli.common import (
    DATA_OPTION,
    JSON_OPTION,
    admin_logged_in,
    ask_secret,
    cli_errors,
    console,
    echo_json,
    installation,
    pairs,
    refuse_unset_pin,
    table,
    tse_json,
)
from opentse.engine import rules
from opentse.engine.rules import Op
from opentse.engine.state import Lifecycle
from opentse.tr03151 import sysdata

tse_app = typer.Typer(help="Create and manage software TSEs.", no_args_is_help=True)

PIN_OPTION: Any = typer.Option(
    None,
    "--pin",
    envvar="OPENTSE_ADMIN_PIN",
    show_envvar=True,
    help="Admin PIN (min 6 characters); asked for when not given.",
)
PUK_OPTION: Any = typer.Option(
    None,
    "--puk",
    envvar="OPENTSE_ADMIN_PUK",
    help="Admin PUK: sets the PIN first (needed on first use and to unblock).",
)


@tse_app.command("create")
def create_command(
    tse_id: str = typer.Argument(..., help="Id of the new TSE (e.g. a UUID)."),
    curve: str = typer.Option(
        "P-256", "--curve", help="P-256, P-384, brainpoolP256r1, brainpoolP384r1."
    ),
    time_format: str = typer.Option(
        "unixTime", "--time-format", help="unixTime, utcTime, generalizedTime."
    ),
    description: str = typer.Option("", "--description"),
    data: Path = DATA_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a TSE (state CREATED). The PUKs are printed once: keep them."""
    with cli_errors():
        sysdata.initialize(description)  # signed at initialize: refused now, not then
    with installation(data) as inst:
        created = inst.service.create_tse(
            tse_id, curve=curve, time_format=time_format, description=description
        )
        info = inst.service.get(tse_id)
    out = {**tse_json(info), "admin_puk": created.admin_puk, "timeadmin_puk": created.timeadmin_puk}
    if as_json:
        echo_json(out)
        return
    pairs(f"TSE {tse_id}", out)
    console.print("[yellow]The PUKs are shown only now: store them safely.[/yellow]")


@tse_app.command("list")
def list_command(data: Path = DATA_OPTION, as_json: bool = JSON_OPTION) -> None:
    """List the TSEs of this installation."""
    with installation(data) as inst:
        infos = [tse_json(i) for i in inst.service.list()]
    if as_json:
        echo_json(infos)
        return
    table(
        "TSEs",
        ("id", "state", "curve", "signatures", "transactions", "serial"),
        [
            (
                i["id"],
                i["state"],
                i["curve"],
                i["signature_counter"],
                i["transaction_counter"],
                i["serial_number"][:16] + "...",
            )
            for i in infos
        ],
    )


@tse_app.command("show")
def show_command(
    tse_id: str = typer.Argument(...), data: Path = DATA_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """Show one TSE."""
    with installation(data) as inst:
        out = tse_json(inst.service.get(tse_id))
    if as_json:
        echo_json(out)
    else:
        pairs(f"TSE {tse_id}", out)


@tse_app.command("initialize")
def initialize_command(
    tse_id: str = typer.Argument(...),
    pin: str | None = PIN_OPTION,
    puk: str | None = PUK_OPTION,
    description: str | None = typer.Option(None, "--description"),
    data: Path = DATA_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Initialize a TSE as admin (sets the PIN first when --puk is given)."""
    pin = ask_secret(pin, "Admin PIN")
    with installation(data) as inst:
        _check_allowed(inst.service, tse_id, Op.INITIALIZE)
        stored = inst.service.get(tse_id).state.description
        sysdata.initialize(stored if description is None else description)
        with admin_logged_in(inst.service, tse_id, pin, puk):
            log = inst.service.initialize(tse_id, description)
        out = {
            **tse_json(inst.service.get(tse_id)),
            "signature_counter_initialize": log.signature_counter,
        }
    if as_json:
        echo_json(out)
    else:
        console.print(f"TSE {tse_id} initialized (signature counter {log.signature_counter}).")


@tse_app.command("disable")
def disable_command(
    tse_id: str = typer.Argument(...),
    pin: str | None = PIN_OPTION,
    data: Path = DATA_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Disable a TSE for good (exports keep working)."""
    pin = ask_secret(pin, "Admin PIN")
    with installation(data) as inst:
        _check_allowed(inst.service, tse_id, Op.DISABLE)
        with admin_logged_in(inst.service, tse_id, pin, None):
            inst.service.disable(tse_id)
        out = tse_json(inst.service.get(tse_id))
    if as_json:
        echo_json(out)
    else:
        console.print(f"TSE {tse_id} disabled.")


ROLE_OPTION: Any = typer.Option(
    "admin", "--user", help="Role: admin or timeadmin (TR-03151 users)."
)


@tse_app.command("set-pin")
def set_pin_command(
    tse_id: str = typer.Argument(...),
    user: str = ROLE_OPTION,
    puk: str | None = typer.Option(
        None, "--puk", help="The role's PUK (printed by create); asked for when not given."
    ),
    pin: str | None = typer.Option(
        None,
        "--pin",
        help="New PIN (min 6 characters); asked twice when not given.",
    ),
    data: Path = DATA_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Set, change or unblock a role's PIN with its PUK (unblockUser, logged)."""
    puk = ask_secret(puk, f"{user} PUK")
    # typed blind: a typo would set a PIN nobody knows, so it is asked twice
    pin = ask_secret(pin, "New PIN", confirm=True)
    with installation(data) as inst:
        if inst.service.get(tse_id).state.lifecycle is Lifecycle.CREATED:
            # a new TSE: setting the first PIN is the step out of CREATED (as
            # initialize --puk does; unblockUser is refused in CREATED)
            inst.service.set_state(tse_id, Lifecycle.UNINITIALIZED)
        result = inst.service.set_admin_pin(tse_id, puk, pin, user_id=user)
    out = {"tse_id": tse_id, "user": user, "ok": result.ok}
    if as_json:
        echo_json(out)
    else:
        console.print(f"PIN of {user} on TSE {tse_id} set.")


@tse_app.command("update-time")
def update_time_command(
    tse_id: str = typer.Argument(...),
    user: str = typer.Option(
        "timeadmin", "--user", help="Role that sets the time: timeadmin or admin."
    ),
    pin: str | None = typer.Option(
        None,
        "--pin",
        help="PIN of that role (else OPENTSE_TIMEADMIN_PIN or OPENTSE_ADMIN_PIN, "
        "whichever is that role's, else asked for).",
    ),
    data: Path = DATA_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Set the TSE time from this machine's clock (updateTime, logged) as that role."""
    if pin is None:
        variable = "OPENTSE_ADMIN_PIN" if user == "admin" else "OPENTSE_TIMEADMIN_PIN"
        pin = ask_secret(os.environ.get(variable) or None, f"{user} PIN")
    with installation(data) as inst:
        refuse_unset_pin(inst.service.get(tse_id).state, tse_id, user)
        inst.service.authenticate(tse_id, pin, user_id=user)
        try:
            log = inst.service.update_time(tse_id, user_id=user)
        finally:
            inst.service.logout(tse_id, user_id=user)
    out = {
        "tse_id": tse_id,
        "user": user,
        "log_time": log.log_time,
        "signature_counter": log.signature_counter,
    }
    if as_json:
        echo_json(out)
    else:
        console.print(
            f"Time of TSE {tse_id} set to {log.log_time} (signature counter "
            f"{log.signature_counter})."
        )


@tse_app.command("delete-stored-data")
def delete_stored_data_command(
    tse_id: str = typer.Argument(...),
    pin: str | None = PIN_OPTION,
    data: Path = DATA_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete the logs covered by the newest complete export (deleteStoredData, as
    admin; logged). Keep the export first: `opentse archive export` verifies and
    keeps it for the 10-year retention."""
    pin = ask_secret(pin, "Admin PIN")
    with installation(data) as inst:
        _check_allowed(inst.service, tse_id, Op.DELETE_STORED_DATA)
        with admin_logged_in(inst.service, tse_id, pin, None):
            log = inst.service.delete_stored_data(tse_id)
        remaining = inst.store.count_logs(tse_id)
    out = {"tse_id": tse_id, "signature_counter": log.signature_counter, "logs_left": remaining}
    if as_json:
        echo_json(out)
    else:
        console.print(
            f"Exported logs of TSE {tse_id} deleted; {remaining} logs left "
            f"(deleteStoredData is signature counter {log.signature_counter})."
        )


def _check_allowed(service: Any, tse_id: str, op: Op) -> None:
    """Refuse ``op`` in the TSE's lifecycle state before the admin authenticates:
    a command that cannot work signs no authenticateUser/logOut logs."""
    lifecycle = service.get(tse_id).state.lifecycle
    if lifecycle not in (Lifecycle.CREATED, Lifecycle.UNINITIALIZED):
        rules.check_allowed(op, lifecycle)


def register(app: typer.Typer) -> None:
    app.add_typer(tse_app, name="tse")
