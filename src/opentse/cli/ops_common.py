"""CLI plumbing shared by the ops command groups: open an ``OpsContext`` with the
usual ``error E_CODE: message`` handling."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from opentse.cli.common import cli_errors

DATABASE_OPTION: Any = typer.Option(
    None, "--database", envvar="OPENTSE_DATABASE", help="postgresql://... (as for serve)."
)


@contextlib.contextmanager
def ops_context(data: Path, database: str | None = None) -> Iterator[Any]:
    from opentse.ops.store import OpsContext

    with cli_errors():
        ctx = OpsContext.open(data, database_url=database)
        try:
            yield ctx
        finally:
            ctx.close()
