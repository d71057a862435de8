"""``opentse archive export|list|leftovers|remind|release``: the export archive."""

from __future__ import annotations

from pathlib import Path

import typer

from opentse.cli.common import DATA_OPTION, JSON_OPTION, console, echo_json, iso, table
from opentse.cli.ops_common import DATABASE_OPTION, ops_context

archive_app = typer.Typer(
    help="Export archive: SHA-256, verification, 10-year retention, reminders.",
    no_args_is_help=True,
)


@archive_app.command("export")
def export_command(
    tse_id: str = typer.Argument(...),
    defective: bool = typer.Option(
        False, "--without-signature", help="Defective TSE: export from the store, sign nothing."
    ),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Export a TSE completely, verify the file and keep it in the archive."""
    from opentse.ops import archive

    with ops_context(data, database) as ctx:
        item = archive.archive_export(ctx, tse_id, without_signature=defective)
    if as_json:
        echo_json(item.to_json())
    else:
        ok = "verified" if item.verified_ok else "NOT VERIFIED"
        console.print(
            f"{item.path}\nsha256 {item.sha256}\n{ok}, keep until {iso(item.retain_until)}"
        )
    if not item.verified_ok:
        raise typer.Exit(1)


@archive_app.command("list")
def list_command(
    tse_id: str | None = typer.Argument(None),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Archived exports with hash, verification result and retention date."""
    from opentse.ops import archive, archive_leftovers

    with ops_context(data, database) as ctx:
        items = archive.exports(ctx, tse_id)
        if tse_id is not None and not items:
            ctx.service.require(tse_id)  # a mistyped id: E_TSS_NOT_FOUND, not an empty list
        intact = {i.id: archive.check_integrity(i, ctx.data_dir) for i in items}
        # where the file is now: "path" is the one recorded, which a data folder moved
        # to another place or host no longer has
        found = {i.id: str(archive.locate(i, ctx.data_dir)) for i in items}
        left = archive_leftovers.find(ctx, tse_id)
    if left:  # a killed export's files, which no row above shows
        typer.echo(
            f"{len(left)} file(s) in the archive folder are no archived export (left by a"
            " killed export): see `opentse archive leftovers`",
            err=True,
        )
    if as_json:
        echo_json(
            [{**i.to_json(), "file": found[i.id], "file_intact": intact[i.id]} for i in items]
        )
        return
    table("Archive", ("time", "tse", "records", "sha256", "verified", "intact", "keep until"),
          [(iso(i.created_at), i.tse_id, i.records, i.sha256[:16] + "...", i.verified_ok,
            intact[i.id], iso(i.retain_until)) for i in items])  # fmt: skip


@archive_app.command("leftovers")
def leftovers_command(
    tse_id: str | None = typer.Argument(None),
    clean: bool = typer.Option(
        False,
        "--clean",
        help="Delete the part files; verify and record the unrecorded exports (a TAR"
        " that does not verify is kept and named). Recorded exports are never touched.",
    ),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Files a killed archive export left: part files and TARs never recorded. Exit 1
    when any is left (after --clean: one that does not verify)."""
    from opentse.ops import archive_leftovers

    with ops_context(data, database) as ctx:
        if tse_id is not None:
            ctx.service.require(tse_id)  # a mistyped id: E_TSS_NOT_FOUND
        found = archive_leftovers.find(ctx, tse_id)
        done = archive_leftovers.clean(ctx, tse_id) if clean else None
    if as_json:
        echo_json(
            {"leftovers": [x.to_json() for x in found], "cleaned": done.to_json() if done else None}
        )
    elif done is None:
        for x in found:
            what = "part file (cut off)" if x.kind == "part" else "export, not recorded"
            typer.echo(f"{x.path}  {what}, {x.size} bytes, {iso(x.modified_at)}")
        if found:
            typer.echo("opentse archive leftovers --clean deletes the part files and records"
                          " the exports that verify")  # fmt: skip
        else:
            typer.echo("no leftovers: every file in the archive folder is an archived export")
    else:  # plain lines: a path wrapped by the console cannot be copied
        for x in done.deleted:
            typer.echo(f"deleted {x.path} (part file of a killed export)")
        for i in done.recorded:
            typer.echo(f"recorded {i.path} (sha256 {i.sha256}, verified)")
        for x, why in done.kept:
            typer.echo(f"kept {x.path}, not recorded: {why}")
        if not found:
            typer.echo("no leftovers: every file in the archive folder is an archived export")
    if (found and done is None) or (done is not None and done.kept):
        raise typer.Exit(1)


@archive_app.command("remind")
def remind_command(
    days: int | None = typer.Option(None, "--days", help="Remind after N days (this run)."),
    set_days: int | None = typer.Option(None, "--set-days", help="Store N as the default."),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """TSEs without an archived export for N days (default 30). Exit 2 when any."""
    from opentse.ops import archive

    with ops_context(data, database) as ctx:
        if set_days is not None:
            archive.set_reminder_days(ctx, set_days)
        found = archive.reminders(ctx, days)
        used = days if days is not None else archive.reminder_days(ctx)
    if as_json:
        rows = [
            {
                "tse_id": r.tse_id,
                "last_export_at": r.last_export_at,
                "days_since": round(r.days_since, 2),
                "message": r.message,
            }
            for r in found
        ]
        echo_json({"days": used, "reminders": rows})
    else:
        for r in found:
            console.print(f"[yellow]{r.message}[/yellow]")
        if not found:
            console.print(
                f"no TSE in use has gone more than {used} days without an archived export "
                "(counted from its last export, or from its initialization)"
            )
    if found:
        raise typer.Exit(2)


@archive_app.command("release")
def release_command(
    tse_id: str = typer.Argument(...),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Mark stored logs as deletable up to the newest verified archived export."""
    from opentse.ops import archive

    with ops_context(data, database) as ctx:
        up_to = archive.release_logs(ctx, tse_id)
    if as_json:
        echo_json({"tse_id": tse_id, "released_up_to_signature_counter": up_to})
        return
    console.print(f"logs of {tse_id} up to signature counter {up_to} released")


def register(app: typer.Typer) -> None:
    app.add_typer(archive_app, name="archive")
