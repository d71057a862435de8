"""``opentse migrate``: apply the numbered schema migrations to either backend.

Stores migrate themselves when they open; this command lets an operator do it once,
before starting several API nodes, and shows what was applied.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path

import typer

from opentse.cli.serve import DEFAULT_DATA, data_folder_errors


def migrate_command(
    data: Path = typer.Option(DEFAULT_DATA, "--data", help="Data folder (for SQLite)."),
    database: str | None = typer.Option(
        None,
        "--database",
        envvar="OPENTSE_DATABASE",
        help="postgresql://... or sqlite:///file (default: SQLite in the data folder).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    force: bool = typer.Option(
        False,
        "--force",
        help="PostgreSQL: migrate even while nodes of an older opentse are alive (they "
        "go on writing with the old rules until upgraded; see docs/scaling.md).",
    ),
    import_sqlite: Path | None = typer.Option(
        None,
        "--import-sqlite",
        help="PostgreSQL: copy this SQLite installation database (DATA/opentse.db) into "
        "the new, empty database named by --database, then rename it "
        "opentse.db.moved-to-postgresql (docs/scaling.md). Stop every process using "
        "it first.",
    ),
) -> None:
    """Create or upgrade the database schema (engine and service tables). On
    PostgreSQL, refused while nodes of an older opentse run on the database
    (E_MIGRATE_OLD_NODES, naming them) unless --force. A database a newer opentse
    migrated is refused (E_SCHEMA_NEWER) unless OPENTSE_ALLOW_NEWER_SCHEMA=1 (a
    rollback on purpose, docs/upgrading.md)."""
    with data_folder_errors(data):
        if import_sqlite is not None:
            _import(import_sqlite, database, as_json)
            return
        dialect, applied, current = run_migrations(data, database, force=force)
    if as_json:
        typer.echo(json.dumps({"dialect": dialect, "applied": applied, "current": current}))
        return
    if applied:
        typer.echo(f"{dialect}: applied {', '.join(f'{v:04d}' for v in applied)}")
    else:
        typer.echo(f"{dialect}: up to date")
    typer.echo(f"schema version {current:04d}")


def _import(path: Path, database: str | None, as_json: bool) -> None:
    """``--import-sqlite``: storage/pg_import.py."""
    from opentse.errors import ProtocolError
    from opentse.storage.pg_import import import_sqlite
    from opentse.storage.postgres import is_postgres_url

    database = database or os.environ.get("OPENTSE_DATABASE_URL")
    if not is_postgres_url(database):
        raise ProtocolError(
            "--import-sqlite copies into PostgreSQL: give --database postgresql://... "
            "or set OPENTSE_DATABASE",
            code="E_DATABASE_URL",
        )
    assert database is not None
    result = import_sqlite(path, database)
    if as_json:
        typer.echo(json.dumps({"imported": result.rows, "moved_to": str(result.moved_to)}))
        return
    counts = ", ".join(f"{table} {n}" for table, n in result.rows.items())
    typer.echo(f"postgresql: imported {path} ({counts})")
    typer.echo(f"{path} is now {result.moved_to}: a backup, never start opentse on it")


def run_migrations(
    data: Path, database: str | None, *, force: bool = False
) -> tuple[str, list[int], int]:
    """(dialect, versions applied now, highest version applied) for a database
    (``force``: PostgreSQL migrations also under older live nodes)."""
    from opentse.errors import ProtocolError
    from opentse.installation import DB_FILE, refuse_moved
    from opentse.storage import migrations
    from opentse.storage.postgres import is_postgres_url
    from opentse.storage.sqlite import refuse_newer_schema, tighten_mode

    database = database or os.environ.get("OPENTSE_DATABASE_URL")
    # retired by tse move-out, whatever database the installation names: its copy runs on
    refuse_moved(data, "it is not migrated, the copy on the new host is", copied="")
    if is_postgres_url(database):
        import psycopg

        from opentse.storage.postgres import migrate

        assert database is not None
        applied = migrate(database, force=force)
        from opentse.storage.nodes import schema_version

        with psycopg.connect(database, autocommit=True) as pg:
            # not PostgreSQL's own 0900, which it said at every level
            current = schema_version(migrations.applied_versions(pg))
        return "postgresql", applied, current
    if database is None:
        from opentse.installation import check_sqlite_database

        check_sqlite_database(data)
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = data / DB_FILE
    elif database.startswith("sqlite:///"):
        path = Path(database.removeprefix("sqlite://"))
    else:
        raise ProtocolError(
            "database URL must start with sqlite:/// or postgresql://", code="E_DATABASE_URL"
        )
    with contextlib.suppress(FileExistsError):  # a new database is 0600, as the store's
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    lite = sqlite3.connect(path, isolation_level=None)
    try:
        lite.execute("PRAGMA journal_mode = WAL")
        # a database a newer opentse migrated is not "up to date" for this one
        # (the store refuses to open it, PostgreSQL's migrate refuses it the same way)
        refuse_newer_schema(lite)
        applied = migrations.apply(lite, "sqlite")
        current = max(migrations.applied_versions(lite), default=0)
        tighten_mode(path)  # an old database's 0644, as the store does at its open
    finally:
        lite.close()
    return "sqlite", applied, current


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate_command)
