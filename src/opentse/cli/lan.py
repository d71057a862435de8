"""``opentse lan test``: the register's connection check against a LAN TSE."""

from __future__ import annotations

import json

import typer

lan_app = typer.Typer(help="LAN TSE helpers.", no_args_is_help=True)


@lan_app.command("test")
def test_command(
    url: str = typer.Option(..., "--url", help="e.g. https://192.168.1.20:4433"),
    # from the environment as for `opentse pos`: a secret on the command line is
    # visible to every user of the machine (ps)
    api_key: str = typer.Option(..., "--api-key", envvar="OPENTSE_API_KEY"),
    api_secret: str = typer.Option(
        ..., "--api-secret", envvar="OPENTSE_API_SECRET", help="API secret (or env var)."
    ),
    insecure: bool = typer.Option(False, "--insecure", help="Do not check the TLS certificate."),
    fingerprint: str | None = typer.Option(
        None, "--fingerprint", help="Pin the server certificate (SHA-256)."
    ),
    as_json: bool = typer.Option(  # accepted, as by every command
        False, "--json", help="Print JSON (this command always does)."
    ),
) -> None:
    """Authenticate, list the TSS and report the round-trip time (JSON)."""
    from opentse.errors import OpenTSEError
    from opentse.server.lan import connection_test

    try:
        result = connection_test(
            url, api_key, api_secret, insecure=insecure, fingerprint=fingerprint
        )
    except OpenTSEError as exc:  # a pin that does not match or cannot be checked
        result = {"ok": False, "step": "connect", "code": exc.code, "error": exc.message}
    except Exception as exc:  # connection refused, TLS failure ...: report, exit 1
        result = {"ok": False, "step": "connect", "error": f"{type(exc).__name__}: {exc}"}
    typer.echo(json.dumps(result, indent=2))
    raise typer.Exit(0 if result.get("ok") else 1)


def register(app: typer.Typer) -> None:
    app.add_typer(lan_app, name="lan")
