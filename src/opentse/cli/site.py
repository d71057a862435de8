"""``opentse site ...``: organization -> locations -> TSEs -> registers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from opentse.cli.common import (
    DATA_OPTION,
    JSON_OPTION,
    console,
    echo_json,
    err_console,
    iso,
    table,
)
from opentse.cli.ops_common import DATABASE_OPTION, ops_context

site_app = typer.Typer(
    help="Sites: organizations, locations, their TSEs and registers.", no_args_is_help=True
)


@site_app.command("org-create")
def org_create(
    name: str = typer.Argument(..., help="Legal name of the organization."),
    tax_number: str = typer.Option("", "--tax-number"),
    svc_org: str | None = typer.Option(None, "--svc-org", help="API organization id, if any."),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an organization (legal entity)."""
    from opentse.ops import sites

    with ops_context(data, database, existing=False) as ctx:  # may come first in a set-up
        org = sites.create_organization(ctx, name, tax_number=tax_number, svc_org_id=svc_org)
    echo_json(vars_of(org)) if as_json else console.print(f"organization {org.id} created")


@site_app.command("create")
def create(
    org_id: str = typer.Argument(..., help="Organization id."),
    name: str = typer.Argument(..., help="Name of the location (shop, branch ...)."),
    street: str = typer.Option(..., "--street"),
    postal_code: str = typer.Option(..., "--postal-code"),
    city: str = typer.Option(..., "--city"),
    country: str = typer.Option("DE", "--country"),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a location (one physical address)."""
    from opentse.ops import sites

    with ops_context(data, database) as ctx:
        loc = sites.create_location(
            ctx, org_id, name, street=street, postal_code=postal_code, city=city, country=country
        )
    echo_json(vars_of(loc)) if as_json else console.print(f"location {loc.id} created")


@site_app.command("list")
def list_command(
    data: Path = DATA_OPTION, database: str | None = DATABASE_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """Organizations, locations, TSEs, shares and registers."""
    from opentse.ops import sites

    with ops_context(data, database) as ctx:
        out = {
            "organizations": [vars_of(o) for o in sites.organizations(ctx)],
            "locations": [vars_of(loc) for loc in sites.locations(ctx)],
            "tses": [vars_of(t) for t in sites.site_tses(ctx)],
            "shares": [vars_of(s) for s in sites.shares(ctx)],
            "registers": [vars_of(r) for r in sites.registers(ctx)],
        }
    if as_json:
        echo_json(out)
        return
    # with two sites an id alone does not say which shop a TSE or register is at
    names = {x["id"]: f"{x['name']} ({x['id'][:8]})" for x in out["locations"]}

    def at(location_id: str) -> str:
        return names.get(location_id, location_id)

    table("Organizations", ("id", "name", "tax number", "API organization"),
          [(x["id"], x["name"], x["tax_number"], x["svc_org_id"] or "")
           for x in out["organizations"]])  # fmt: skip
    table("Locations", ("id", "organization", "name", "address"),
          [(x["id"], x["org_id"], x["name"], f"{x['street']}, {x['postal_code']} {x['city']}")
           for x in out["locations"]])  # fmt: skip
    table("TSEs", ("tse", "location", "status", "capacity", "url"),
          [(x["tse_id"], at(x["location_id"]), x["status"], x["capacity"], x["connection_url"])
           for x in out["tses"]])  # fmt: skip
    table("Shared TSEs", ("tse", "shared with location", "confirmed by", "at"),
          [(x["tse_id"], at(x["location_id"]), x["confirmed_by"], iso(x["confirmed_at"]))
           for x in out["shares"]])  # fmt: skip
    table("Registers", ("register", "location", "tse", "assigned"),
          [(x["register_id"], at(x["location_id"]), x["tse_id"], iso(x["assigned_at"]))
           for x in out["registers"]])  # fmt: skip


@site_app.command("assign-tse")
def assign_tse(
    tse_id: str = typer.Argument(...),
    location_id: str = typer.Argument(...),
    capacity: int = typer.Option(20_000_000, "--capacity", help="Signatures the TSE can make."),
    hardware_version: str = typer.Option("", "--hardware-version"),
    software_version: str = typer.Option("", "--software-version"),
    interface_type: str = typer.Option("", "--interface"),
    url: str = typer.Option("", "--url", help="Connection URL the registers use."),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Place a TSE at its location."""
    from opentse.ops import sites

    with ops_context(data, database) as ctx:
        row = sites.assign_tse(
            ctx, tse_id, location_id, capacity=capacity, hardware_version=hardware_version,
            software_version=software_version, interface_type=interface_type,
            connection_url=url,
        )  # fmt: skip
    echo_json(vars_of(row)) if as_json else console.print(f"TSE {tse_id} at {location_id}")


@site_app.command("share")
def share(
    tse_id: str = typer.Argument(...),
    location_id: str = typer.Argument(..., help="The other location at the same address."),
    confirmed_by: str = typer.Option(..., "--confirmed-by", help="Who confirms."),
    confirmation: str = typer.Option(..., "--confirmation", help="The written confirmation."),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Share a TSE with a location at the same address (confirmation recorded)."""
    from opentse.ops import sites

    with ops_context(data, database) as ctx:
        row = sites.share_tse(
            ctx, tse_id, location_id, confirmed_by=confirmed_by, confirmation=confirmation
        )
    echo_json(vars_of(row)) if as_json else console.print(f"TSE {tse_id} shared, recorded")


@site_app.command("add-register")
def add_register(
    register_id: str = typer.Argument(..., help="Client id / serial number of the register."),
    location_id: str = typer.Argument(...),
    model: str = typer.Option("", "--model"),
    hardware_version: str = typer.Option("", "--hardware-version"),
    software_version: str = typer.Option("", "--software-version"),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Record a register at a location."""
    from opentse.ops import sites

    with ops_context(data, database) as ctx:
        row = sites.add_register(
            ctx, register_id, location_id, model=model, hardware_version=hardware_version,
            software_version=software_version,
        )  # fmt: skip
    echo_json(vars_of(row)) if as_json else console.print(f"register {register_id} recorded")


@site_app.command("assign")
def assign(
    register_id: str = typer.Argument(...),
    tse_id: str = typer.Argument(...),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Assign a register to a TSE of its location (refused across locations)."""
    from opentse.ops import sites

    with ops_context(data, database) as ctx:
        row = sites.assign_register(ctx, register_id, tse_id)
        client = ctx.service.get(tse_id).state.clients.get(register_id)
        registered = client is not None and client.registered
    if as_json:
        echo_json({**vars_of(row), "registered_at_tse": registered})
        return
    console.print(f"register {register_id} -> {tse_id}", highlight=False)
    if not registered:  # the assignment is the record; signing needs the TSE's registerClient
        err_console.print(
            f"[yellow]{register_id} is not registered at TSE {tse_id} yet: it cannot sign "
            f"until 'opentse client register {register_id} --tss {tse_id} --pin ...' "
            "(or PUT /api/v2/tss/{id}/client/{uuid} for a TSS served over the API)[/yellow]",
            highlight=False,
            soft_wrap=True,  # the command stays on one line, to be copied
        )


@site_app.command("move-register")
def move_register(
    register_id: str = typer.Argument(...),
    location_id: str = typer.Argument(..., help="The location the till now stands at."),
    tse_id: str | None = typer.Option(
        None, "--tse", help="Assign it to this TSE of the new location right away."
    ),
    actor: str = typer.Option("", "--by", help="Who moved it."),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Move a register to another location of its organization (a till taken to the
    other shop): it leaves its old TSE; assign it to one of the new location's."""
    from opentse.ops import sites

    with ops_context(data, database) as ctx:
        before = sites.get_register(ctx, register_id)
        row = sites.move_register(ctx, register_id, location_id, tse_id=tse_id, actor=actor)
        # a rerun finishing a stopped move: the TSE it left is in the protocol
        old = before.tse_id or sites.previous_tse(ctx, register_id)
        still = old is not None and old != row.tse_id
        if still:
            client = ctx.service.get(old).state.clients.get(register_id)
            still = client is not None and client.registered
        at_new = row.tse_id is not None
        if at_new:
            client = ctx.service.get(row.tse_id).state.clients.get(register_id)
            at_new = client is not None and client.registered
    if as_json:
        echo_json({**vars_of(row), "registered_at_previous_tse": still,
                   "registered_at_tse": at_new})  # fmt: skip
        return
    console.print(f"register {register_id} moved to {location_id}", highlight=False)
    hints = []
    if still:  # the old shop's TSE would still sign for it
        hints.append(f"opentse client deregister {register_id} --tss {old}")
    if row.tse_id is None:
        hints.append(f"opentse site assign {register_id} TSE_ID (a TSE of the new location)")
    elif not at_new:
        hints.append(f"opentse client register {register_id} --tss {row.tse_id}")
    for hint in hints:
        err_console.print(f"[yellow]next: {hint}[/yellow]", highlight=False, soft_wrap=True)


def vars_of(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


def register(app: typer.Typer) -> None:
    app.add_typer(site_app, name="site")
