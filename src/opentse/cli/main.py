"""The ``opentse`` console script: a thin shell over the command-group modules.

Each group lives in its own module exposing ``register(app)``; no business logic here.
"""

from __future__ import annotations

import importlib
import sys

import typer

try:  # Typer 0.2x carries its own copy of Click; its exceptions are those
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - an older Typer on the real Click
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

app = typer.Typer(
    name="opentse",
    help="opentse: open software TSE (BSI TR-03151), TSE service and register tools. "
    "Not BSI-certified.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from opentse.version import version_text

        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the opentse version (and the git commit of a checkout) and exit.",
    ),
) -> None:
    """opentse: open software TSE (BSI TR-03151), TSE service and register tools.
    Not BSI-certified."""


# Command-group modules, each with ``register(app: typer.Typer) -> None``.
GROUP_MODULES: list[str] = [
    "opentse.cli.verify",
    "opentse.cli.serve",
    "opentse.cli.apikey",
    "opentse.cli.lan",
    "opentse.cli.migrate",
    "opentse.cli.tse",
    "opentse.cli.tse_ops",
    "opentse.cli.site",
    "opentse.cli.archive",
    "opentse.cli.docs",
    "opentse.cli.client",
    "opentse.cli.export",
    "opentse.cli.demo",
    "opentse.cli.pos",
    "opentse.cli.dsfinvk",
]


_registered = False


def build_app() -> typer.Typer:
    """Register every command group once (callers such as docgen and tests may call
    this repeatedly; the groups must not be added again)."""
    global _registered
    if not _registered:
        for name in GROUP_MODULES:
            importlib.import_module(name).register(app)
        _registered = True
    return app


def main() -> None:
    """Run the CLI; a usage error (unknown option, missing argument, a value that
    does not parse) is one line ``error E_USAGE: ...`` on stderr and exit 2, like
    every other refusal's ``error E_...: ...`` line, instead of Typer's framed box."""
    command = typer.main.get_command(build_app())
    try:
        result = command.main(prog_name="opentse", standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as exc:
        sys.exit(exc.exit_code)  # Typer's rich help has printed itself (stdout, as before)
    except click_exceptions.UsageError as exc:
        sys.exit(usage_error(exc))
    except click_exceptions.ClickException as exc:
        typer.echo(f"error E_USAGE: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


def usage_error(exc: click_exceptions.UsageError) -> int:
    """Print a usage error as one line naming the command's --help; its exit code."""
    where = exc.ctx.command_path if exc.ctx is not None else "opentse"
    typer.echo(f"error E_USAGE: {exc.format_message()} (see '{where} --help')", err=True)
    return exc.exit_code
