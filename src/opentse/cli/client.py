"""``opentse client register|deregister|list`` (a client is a register, TR clientId)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from opentse.cli.common import (
    DATA_OPTION,
    JSON_OPTION,
    admin_logged_in,
    ask_secret,
    console,
    echo_json,
    installation,
    iso,
    table,
)
from opentse.cli.tse import PIN_OPTION
from opentse.engine import rules
from opentse.engine.rules import Op
from opentse.engine.transactions import registered_client
from opentse.errors import ConflictError

client_app = typer.Typer(help="Register and list clients (cash registers).", no_args_is_help=True)
TSS_OPTION: Any = typer.Option(..., "--tss", help="Id of the TSE.")


@client_app.command("register")
def register_command(
    client_id: str = typer.Argument(..., help="Client id (serial number of the register)."),
    tss: str = TSS_OPTION,
    pin: str | None = PIN_OPTION,
    data: Path = DATA_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a client (admin PIN needed; writes a registerClient log)."""
    pin = ask_secret(pin, "Admin PIN")
    with installation(data) as inst:
        _check_before_login(inst.service, tss, client_id, Op.REGISTER_CLIENT)
        with admin_logged_in(inst.service, tss, pin, None):
            log = inst.service.register_client(tss, client_id)
    out = {
        "tss_id": tss,
        "client_id": client_id,
        "state": "REGISTERED",
        "signature_counter": log.signature_counter,
    }
    if as_json:
        echo_json(out)
    else:
        console.print(f"Client {client_id!r} registered on TSE {tss}.")


@client_app.command("deregister")
def deregister_command(
    client_id: str = typer.Argument(...),
    tss: str = TSS_OPTION,
    pin: str | None = PIN_OPTION,
    data: Path = DATA_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Deregister a client (refused while it has open transactions)."""
    pin = ask_secret(pin, "Admin PIN")
    with installation(data) as inst:
        _check_before_login(inst.service, tss, client_id, Op.DEREGISTER_CLIENT)
        with admin_logged_in(inst.service, tss, pin, None):
            log = inst.service.deregister_client(tss, client_id)
    out = {
        "tss_id": tss,
        "client_id": client_id,
        "state": "DEREGISTERED",
        "signature_counter": log.signature_counter,
    }
    if as_json:
        echo_json(out)
    else:
        console.print(f"Client {client_id!r} deregistered from TSE {tss}.")


@client_app.command("list")
def list_command(
    tss: str = TSS_OPTION, data: Path = DATA_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """List the clients of a TSE."""
    with installation(data) as inst:
        state = inst.service.get(tss).state
    rows = [
        {
            "client_id": c.client_id,
            "state": "REGISTERED" if c.registered else "DEREGISTERED",
            "registered_at": iso(c.registered_at),
            "deregistered_at": iso(c.deregistered_at),
            "open_transactions": sum(
                1 for t in state.open_transactions.values() if t.client_id == c.client_id
            ),
        }
        for c in sorted(state.clients.values(), key=lambda c: c.client_id)
    ]
    if as_json:
        echo_json(rows)
    else:
        table(
            f"Clients of {tss}",
            list(rows[0]) if rows else ["client_id"],
            [list(r.values()) for r in rows],
        )


def _check_before_login(service: Any, tss: str, client_id: str, op: Op) -> None:
    """What the engine would refuse whoever is logged in (a client id that is no
    PrintableString, a TSE not INITIALIZED, an unknown client to deregister) is
    refused before the admin authenticates: bad input signs no logs at all."""
    rules.check_client_id(client_id)
    state = service.get(tss).state
    rules.check_allowed(op, state.lifecycle)
    if op is Op.DEREGISTER_CLIENT:
        registered_client(state, client_id)
    elif (known := state.clients.get(client_id)) is not None and known.registered:
        raise ConflictError(f"client {client_id!r} is already registered", code="E_CLIENT_CONFLICT")


def register(app: typer.Typer) -> None:
    app.add_typer(client_app, name="client")
