"""The ``opentse`` console script: a thin shell over the command-group modules.

Each group lives in its own module exposing ``register(app)``; no business logic here.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="opentse",
    help="opentse: open software TSE (BSI TR-03151), TSE service and register tools. "
    "Not BSI-certified.",
    no_args_is_help=True,
    add_completion=False,
)

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
    build_app()()
