"""``opentse tse move|replace|status|protocol``: operations on TSEs.

These commands join helper C's ``opentse tse`` group (cli/tse.py) through
``register``, which adds them to that Typer group without editing it; a name C
already uses is skipped, never overwritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from opentse.cli.common import (
    DATA_OPTION,
    JSON_OPTION,
    ask_secret,
    console,
    echo_json,
    iso,
    table,
)
from opentse.cli.ops_common import DATABASE_OPTION, ops_context


def move_command(
    tse_id: str = typer.Argument(...),
    host: str = typer.Option(..., "--host", help="New host name or IP address."),
    port: int = typer.Option(4433, "--port"),
    path: str = typer.Option("/api/v2", "--path"),
    tls: bool = typer.Option(False, "--tls/--no-tls", help="The new host serves HTTPS."),
    fingerprint: str | None = typer.Option(
        None,
        "--fingerprint",
        help="TLS SHA-256 to pin (default with --tls: the data folder's LAN certificate's,"
        " as serve --lan prints it).",
    ),
    org: str | None = typer.Option(None, "--org", help="API organization id (if not served)."),
    test: bool = typer.Option(True, "--test/--no-test", help="Run the connection test after."),
    insecure: bool = typer.Option(False, "--insecure", help="Do not check the TLS certificate."),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Move a TSE to a new host: rotate the API secret (old one stops working), write
    the registers' new connection data, then run the connection test (lan test)."""
    from opentse.ops import moving

    with ops_context(data, database) as ctx:
        conn = moving.move_tse(
            ctx, tse_id, host=host, port=port, path=path, tls=tls, tls_fingerprint=fingerprint,
            org_id=org,
        )  # fmt: skip
        result: dict[str, Any] | None = None
        if test:
            result = moving.connection_test(ctx, conn, insecure=insecure)
    out = {**conn.to_json(), "connection_test": result}
    if as_json:
        echo_json(out)
    else:
        for key, value in conn.to_json().items():
            if key not in ("also_affected", "resumed", "key_of"):
                typer.echo(f"{key}: {value}")
        if conn.resumed:  # the move of an earlier run, not finished: its key carries on
            typer.echo(
                "The same key and secret as the earlier run of this move (not finished"
                " then): registers given them keep them."
            )
        elif conn.key_of:  # keys are the organization's: no second rotation
            typer.echo(
                f"The same key and secret as the move of TSE {conn.key_of} to this URL (the"
                " organization's key, still enabled): no new key, registers given it keep it."
            )
        else:
            typer.echo("The API secret is shown only now; enter it in every register.")
        for other, regs in conn.also_affected.items():  # the organization's old keys are off
            if other == conn.key_of:  # its move gave its registers this key already
                continue
            typer.echo(
                f"The organization's old keys are disabled: the registers of TSE {other}"
                f" ({', '.join(regs) or 'none recorded'}) need the new key and secret too."
            )
        if result is not None:
            typer.echo("connection test: " + json.dumps(result))
    if result is not None and not result.get("ok"):
        typer.echo(  # what now: a rerun must not make (and print) yet another secret
            f"The move is not finished: the connection test to {conn.url} failed (above)."
            " Start `opentse serve` with this data folder there if it is not running"
            " (a LAN TSE: `serve --lan`, and --tls), then run this `opentse tse move`"
            f" again: it tests again with the same key and secret ({conn.file}), no new"
            " ones.",
            err=True,
        )
        raise typer.Exit(1)


def move_out_command(
    to: str = typer.Option(..., "--to", help="Where the copy runs now (host name or IP)."),
    actor: str = typer.Option("", "--by", help="Who moved it."),
    data: Path = DATA_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Retire this data folder after copying it to a new host (run on the OLD host,
    after the copy): every opentse command and serve refuse it from then on
    (E_DATA_MOVED), so it cannot sign as the same TSEs as the copy."""
    from opentse.cli.common import fail
    from opentse.errors import StorageError
    from opentse.installation import DB_FILE
    from opentse.ops import moving

    if os.environ.get("OPENTSE_DATABASE") or os.environ.get("OPENTSE_DATABASE_URL"):
        fail(  # copies of a node's folder share the one database: nothing diverges
            StorageError(
                "tse move-out retires a SQLite data folder (its database inside); an "
                "installation on PostgreSQL keeps one database that any number of nodes "
                "may serve: stop the old node instead",
                code="E_DATA_DIR",
            )
        )
    if not (data / DB_FILE).is_file():  # a mistyped --data: opening would make a new one
        fail(
            StorageError(
                f"{data} holds no opentse installation (no {DB_FILE}): give --data the "
                "folder that was copied to the new host",
                code="E_DATA_DIR",
            )
        )
    with ops_context(data) as ctx:
        path = moving.move_out(ctx, to=to, actor=actor)
    if as_json:
        echo_json({"data": str(data), "moved_to": to, "marker": str(path)})
        return
    typer.echo(f"{data} is retired: opentse refuses it from now on ({path}).")


def replace_command(
    old_tse_id: str = typer.Argument(...),
    new_tse_id: str = typer.Argument(...),
    new_pin: str | None = typer.Option(
        None,
        "--new-pin",
        envvar="OPENTSE_NEW_ADMIN_PIN",
        help="Admin PIN for the new TSE (else asked for, on stderr).",
    ),
    old_pin: str | None = typer.Option(
        None, "--old-pin", envvar="OPENTSE_ADMIN_PIN", help="Admin PIN of the old TSE."
    ),
    defective: bool = typer.Option(
        False,
        "--defective",
        help="The old TSE is defective (cannot sign, or its stored logs are damaged): its"
        " export is archived even if it does not verify, with the findings recorded; it is"
        " disabled with its signature if it still can (--old-pin given), else recorded as"
        " DEFECTIVE.",
    ),
    reason: str = typer.Option("", "--reason"),
    actor: str = typer.Option("", "--by", help="Who carries out the replacement."),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Replace a TSE: new one beside it, registers moved, old one exported, verified,
    archived, then disabled; every step in the protocol. The new TSE's PUKs go to
    DATA/PUK-NEW_ID.txt (0600) first; a replacement that stopped is finished by
    running the same command again."""
    from opentse.ops import puk_file, replacement

    new_pin = ask_secret(new_pin, "New admin PIN", confirm=True)
    with ops_context(data, database) as ctx:
        if not as_json:  # told first: a run killed later still leaves the operator this
            typer.echo(
                "When the new TSE is created, its PUKs go first to "
                f"{puk_file.path_for(ctx.data_dir, new_tse_id)} (mode 0600); should the"
                " replacement stop half-way, run the same command again.",
                err=True,
            )
        done = replacement.replace_tse(
            ctx, old_tse_id, new_tse_id, new_admin_pin=new_pin, old_admin_pin=old_pin,
            defective=defective, reason=reason, actor=actor,
        )  # fmt: skip
    if as_json:
        echo_json(done.to_json())
        return
    finished = " (finished the replacement that had stopped)" if done.resumed else ""
    typer.echo(
        f"TSE {old_tse_id} replaced by {new_tse_id}{finished}; registers: {list(done.registers)}"
    )
    for serial, client_uuid in done.api_clients.items():  # what each register enters now
        console.print(
            f"register {serial}: --tss {new_tse_id} --client {client_uuid}", highlight=False
        )
    typer.echo(f"export archived: {done.export.path} (sha256 {done.export.sha256})")
    _tell_unverified(done.export.to_json())
    if done.final_export is not None:
        typer.echo(f"final export archived: {done.final_export.path}")
        _tell_unverified(done.final_export.to_json())
    if done.unsigned_reason:  # plain echo: the reason is one line, never wrapped
        typer.echo(
            f"TSE {old_tse_id} is recorded as DEFECTIVE, not disabled with its own signature:"
            f" {done.unsigned_reason}."
        )
    else:
        typer.echo(f"TSE {old_tse_id} is disabled (its disable log signed).")
    if done.left_open:  # a till was mid-sale: the old TSE cannot finish it any more
        opened = ", ".join(f"{c} #{n}" for c, n in done.left_open)
        typer.echo(
            f"{len(done.left_open)} transaction(s) were still open on {old_tse_id} ({opened}):"
            " they stay unfinished in its export."
        )
    if done.next_step:  # plain echo: the command in it is never wrapped
        typer.echo(f"NOT DONE YET: {done.next_step}.")
    if done.admin_puk is None:  # the file of the first run was deleted: its copy counts
        typer.echo(f"The PUKs were in {done.puk_file}, since deleted: keep the copy you made.")
        return
    typer.echo(f"new admin PUK: {done.admin_puk}  timeadmin PUK: {done.timeadmin_puk}")
    typer.echo(  # plain echo: a PUK or path is never wrapped
        f"The PUKs are in {done.puk_file} (mode 0600): store them safely, then delete that file."
    )


def _tell_unverified(item: dict[str, Any]) -> None:
    """A defective TSE's export that did not verify is archived as it is: say so, with
    what the verifier found (the full list: ``opentse verify FILE``)."""
    if item["verified_ok"]:
        return
    found = item["verification"]
    count = found.get("error_count", len(found.get("errors", [])))
    typer.echo(
        f"it did NOT verify ({count} error(s): {', '.join(found.get('errors', []))}) and is"
        f" archived as it is, recorded with its findings; all of them: opentse verify"
        f" {item['path']}"
    )
    for finding in found.get("findings", [])[:5]:
        typer.echo(f"  {finding['code']}: {finding['message']}")


def status_command(
    tse_id: str | None = typer.Argument(None),
    announce: bool = typer.Option(
        False, "--announce", help="Print only warnings not yet announced today, and mark them."
    ),
    within: int | None = typer.Option(
        None,
        "--within",
        min=1,
        help="Warn this many days ahead instead of 15, to plan replacements (not with --announce).",
    ),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Capacity, certificate expiry and warnings (from 15 days before, daily)."""
    from opentse.ops import lifetime, status

    if within is not None and announce:  # the daily announcements keep their 15 days
        raise typer.BadParameter("plans ahead; --announce keeps 15 days", param_hint="--within")
    with ops_context(data, database) as ctx:
        rows = status.all_status(ctx, tse_id, warn_days=within or lifetime.WARN_DAYS)
        due = status.announce(ctx, rows) if announce else None
    if as_json:
        out: dict[str, Any] = {"tses": [r.to_json() for r in rows]}
        if due is not None:
            out["announced"] = [w.to_json() for w in due]
        echo_json(out)
        return
    if due is not None:  # a daily cron job: only what is new today, silent otherwise
        for w in due:
            typer.echo(f"{w.level}: {w.message}")  # one line each, no wrapping
        return
    table("TSE status", ("tse", "state", "signatures", "remaining", "days to expiry"),
          [(r.info.record.tse_id, r.info.state.lifecycle.value, r.info.state.signature_counter,
            r.life.remaining_signatures,
            None if r.life.days_to_expiry is None else round(r.life.days_to_expiry, 1))
           for r in rows])  # fmt: skip
    for w in (w for r in rows for w in r.warnings):
        console.print(f"[red]{w.level}: {w.message}[/red]")


def protocol_command(
    tse_id: str | None = typer.Argument(None),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The archive protocol (set-up, moves, replacements, PIN/PUK changes)."""
    from opentse.ops import protocol

    with ops_context(data, database) as ctx:
        entries = protocol.entries(ctx.db, tse_id=tse_id)
        if tse_id is not None and not entries:  # a mistyped id is not an empty protocol
            ctx.service.require(tse_id)
    if as_json:
        echo_json([{**{k: getattr(e, k) for k in e.__slots__}} for e in entries])
        return
    table("Protocol", ("seq", "time", "kind", "tse", "register", "by", "details"),
          [(e.seq, iso(e.at), e.kind, e.tse_id, e.register_id, e.actor,
            json.dumps(e.details, ensure_ascii=False)) for e in entries])  # fmt: skip


def outage_command(
    start: str = typer.Option(..., "--start", help="ISO 8601 time or unix seconds."),
    end: str | None = typer.Option(None, "--end", help="Omit while it lasts."),
    reason: str = typer.Option(..., "--reason"),
    tse_id: str = typer.Option("", "--tse"),
    register_id: str = typer.Option("", "--register"),
    actor: str = typer.Option("", "--by"),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Record a TSE outage for the outage log of the procedure documentation."""
    from opentse.cli.common import parse_date
    from opentse.ops import outages

    started = parse_date(start)
    assert started is not None
    with ops_context(data, database) as ctx:
        row = outages.record_outage(
            ctx, started_at=started, ended_at=parse_date(end), reason=reason, tse_id=tse_id,
            register_id=register_id, actor=actor,
        )  # fmt: skip
    if as_json:
        echo_json({"recorded": True, "tse_id": row.tse_id, "register_id": row.register_id,
                   "started_at": iso(row.started_at), "ended_at": iso(row.ended_at),
                   "reason": row.reason})  # fmt: skip
        return
    console.print("outage recorded")


COMMANDS: dict[str, Callable[..., None]] = {
    "move": move_command,
    "move-out": move_out_command,
    "replace": replace_command,
    "status": status_command,
    "protocol": protocol_command,
    "outage": outage_command,
}


def register(app: typer.Typer) -> None:
    """Add the commands to C's ``tse`` group (or a group of our own if it is absent)."""
    try:
        from opentse.cli.tse import tse_app
    except ImportError:
        tse_app = typer.Typer(help="Create and manage software TSEs.", no_args_is_help=True)
        app.add_typer(tse_app, name="tse")
    taken = {
        c.name or (c.callback.__name__ if c.callback else "") for c in tse_app.registered_commands
    }
    for name, fn in COMMANDS.items():
        if name not in taken:
            tse_app.command(name)(fn)
