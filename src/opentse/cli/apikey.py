"""``opentse apikey create``: an organization's API key; the secret is shown once."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from opentse.cli.common import cli_errors
from opentse.cli.serve import DEFAULT_DATA

apikey_app = typer.Typer(help="API keys of the TSE service.", no_args_is_help=True)


@apikey_app.command("create")
def create_command(
    data: Path = typer.Option(DEFAULT_DATA, "--data", help="Data folder of the installation."),
    org: str = typer.Option("default", "--org", help="Organization name (created if new)."),
    env: str = typer.Option("TEST", "--env", help="TEST or LIVE."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    database: str | None = typer.Option(
        None, "--database", envvar="OPENTSE_DATABASE", help="postgresql://... (as for serve)."
    ),
) -> None:
    """Create an API key; prints api_key, api_secret (only now) and organization_id."""
    from opentse.installation import Installation
    from opentse.server.auth import create_api_key
    from opentse.storage.pg_service import open_service_store

    if env not in ("TEST", "LIVE"):
        raise typer.BadParameter("env must be TEST or LIVE")
    if not org.strip():  # a nameless organization: nothing to recognise it by later
        raise typer.BadParameter("the organization needs a name", param_hint="'--org'")
    with cli_errors():  # a missing secret, a database of another installation: one line
        inst = Installation.open(data, database_url=database)
        try:
            store = open_service_store(inst, data)
            try:
                created = create_api_key(store, org_name=org, env=env, now=inst.service.clock.now())
            finally:
                store.close()
        finally:
            inst.close()
    if as_json:
        typer.echo(json.dumps(created))
    else:
        for name, value in created.items():
            typer.echo(f"{name}: {value}")
        typer.echo("Store the secret now: it cannot be shown again.")


def register(app: typer.Typer) -> None:
    app.add_typer(apikey_app, name="apikey")
