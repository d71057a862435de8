"""CLI plumbing shared by the ops command groups: open an ``OpsContext`` with the
usual ``error E_CODE: message`` handling."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from opentse.cli.common import cli_errors

DATABASE_OPTION: Any = typer.Option(
    None, "--database", envvar="OPENTSE_DATABASE", help="postgresql://... (as for serve)."
)


@contextlib.contextmanager
def ops_context(data: Path, database: str | None = None, *, existing: bool = True) -> Iterator[Any]:
    """``existing``: refuse a data folder without an installation instead of creating
    one. A mistyped --data in a cron job (`tse status --announce`, `archive remind`)
    would otherwise report a new, empty installation as all well, every day."""
    from opentse.errors import StorageError
    from opentse.installation import CA_FILE, DB_FILE
    from opentse.ops.store import OpsContext

    with cli_errors():
        on_sqlite = not (database or os.environ.get("OPENTSE_DATABASE_URL"))
        # a folder with its CA but no database gets the installation's own, more
        # precise E_DATABASE_MISSING
        marks = (DB_FILE, CA_FILE) if on_sqlite else (".",)
        if existing and not any((data / name).exists() for name in marks):
            raise StorageError(
                f"{data} holds no opentse installation (no {DB_FILE}): check --data"
                " (an installation on PostgreSQL also needs --database or OPENTSE_DATABASE)",
                code="E_DATA_DIR",
            )
        ctx = OpsContext.open(data, database_url=database)
        try:
            yield ctx
        finally:
            ctx.close()
