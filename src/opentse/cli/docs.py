"""``opentse docs procedure [--org ID] OUT.pdf|OUT.md``: the procedure documentation."""

from __future__ import annotations

from pathlib import Path

import typer

from opentse.cli.common import DATA_OPTION, JSON_OPTION, console, echo_json
from opentse.cli.ops_common import DATABASE_OPTION, ops_context

docs_app = typer.Typer(help="Generated documentation.", no_args_is_help=True)


@docs_app.command("procedure")
def procedure_command(
    out: Path = typer.Argument(..., help="OUT.pdf or OUT.md"),
    org: str | None = typer.Option(None, "--org", help="Only this organization."),
    journal: list[Path] = typer.Option(
        [], "--journal", help="A register's outage journal to include (repeatable)."
    ),
    data: Path = DATA_OPTION,
    database: str | None = DATABASE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Write the Verfahrensdokumentation from live data (not BSI-certified)."""
    from opentse.ops import procedure

    if out.suffix.lower() not in (".pdf", ".md"):
        raise typer.BadParameter("OUT must end in .pdf or .md")
    with ops_context(data, database) as ctx:
        procedure.write(ctx, out, org, tuple(journal))
    if as_json:
        echo_json({"written": str(out), "bytes": out.stat().st_size})
        return
    console.print(f"written {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(docs_app, name="docs")
