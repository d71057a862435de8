"""``opentse apikey create|list|disable``: the API keys of the TSE service.

``create`` shows a new key's secret once; ``list`` never shows a secret; ``disable``
refuses one key's logins at once and the tokens it issued on each node within that
node's ``OPENTSE_KEY_RECHECK_SECONDS`` (default ``server.auth.KEY_RECHECK_SECONDS``;
each node re-reads a key's state that often, and this command cannot know the
nodes' setting), without touching the organization's other keys (``tse move``
rotates them all).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from opentse.cli.common import cli_errors
from opentse.cli.serve import DEFAULT_DATA, data_folder_errors
from opentse.errors import NotFoundError

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
    # a missing secret, a database of another installation, a folder it may not write:
    # one line
    with data_folder_errors(data):
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


@contextlib.contextmanager
def _service_store(data: Path, database: str | None) -> Iterator[Any]:
    """The service tables of the installation in ``data`` for one command."""
    from opentse.installation import Installation
    from opentse.storage.pg_service import open_service_store

    with data_folder_errors(data):
        inst = Installation.open(data, database_url=database)
        try:
            store = open_service_store(inst, data)
            try:
                yield store
            finally:
                store.close()
        finally:
            inst.close()


@apikey_app.command("list")
def list_command(
    data: Path = typer.Option(DEFAULT_DATA, "--data", help="Data folder of the installation."),
    org: str | None = typer.Option(None, "--org", help="Only this organization's keys."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    database: str | None = typer.Option(
        None, "--database", envvar="OPENTSE_DATABASE", help="postgresql://... (as for serve)."
    ),
) -> None:
    """List the API keys (never a secret): key, organization, env, created, disabled."""
    with _service_store(data, database) as store:
        keys = store.list_api_keys(org)
    rows = [
        {
            "api_key": k.api_key,
            "organization_id": k.organization_id,
            "organization": k.organization,
            "env": k.env,
            "created_at": k.created_at,
            "disabled": k.disabled,
        }
        for k in keys
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo("no API keys" + (f" of organization {org!r}" if org is not None else ""))
    for row in rows:
        created = datetime.fromtimestamp(row["created_at"], UTC).strftime("%Y-%m-%d %H:%M UTC")
        state = "disabled" if row["disabled"] else "active"
        typer.echo(f"{row['api_key']}  {row['organization']}  {row['env']}  {created}  {state}")


@apikey_app.command("disable")
def disable_command(
    api_key: str = typer.Argument(..., help="The API key (key_...) to disable."),
    data: Path = typer.Option(DEFAULT_DATA, "--data", help="Data folder of the installation."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    database: str | None = typer.Option(
        None, "--database", envvar="OPENTSE_DATABASE", help="postgresql://... (as for serve)."
    ),
) -> None:
    """Disable one API key: its logins are refused at once, the tokens it issued on
    each server node within that node's OPENTSE_KEY_RECHECK_SECONDS (default 5 s;
    this command cannot see the nodes' settings). The organization's other keys keep
    working. A key the installation does not have: E_API_KEY_NOT_FOUND (exit 1).
    --json: tokens_stop_within_seconds is 3600, the most any node may be set to
    (opentse serve refuses more), true whatever the nodes set; key_recheck_setting
    and key_recheck_default_seconds name the setting and its default."""
    from opentse.server.auth import KEY_RECHECK_SECONDS
    from opentse.server.intervals import KEY_RECHECK, MAX_SECONDS

    with _service_store(data, database) as store, cli_errors():
        if not store.disable_api_key(api_key):
            raise NotFoundError("no such API key", code="E_API_KEY_NOT_FOUND")
        (key,) = [k for k in store.list_api_keys() if k.api_key == api_key]
    result = {
        "api_key": key.api_key,
        "organization_id": key.organization_id,
        "organization": key.organization,
        "env": key.env,
        "disabled": True,
        # each node re-reads a key's state every OPENTSE_KEY_RECHECK_SECONDS of its own
        # environment, which this command does not know (another machine, a service
        # unit's setting): it names the setting and its default, not a number
        "tokens_stop_within": f"{KEY_RECHECK} of each server node",
        # the number scripts read before (c4f3afa dropped it), back with the one value
        # this command can vouch for: no node runs with a longer recheck
        "tokens_stop_within_seconds": int(MAX_SECONDS),
        "key_recheck_setting": KEY_RECHECK,
        "key_recheck_default_seconds": KEY_RECHECK_SECONDS,
    }
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(
            f"API key {api_key} disabled: its logins are refused now; the tokens it issued"
            f" stop working on each server node within that node's {KEY_RECHECK}"
            f" (default {KEY_RECHECK_SECONDS} s)"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(apikey_app, name="apikey")
