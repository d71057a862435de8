"""Move an embedded (SQLite) installation's database into PostgreSQL, once: the way
from one machine to several API nodes (``opentse migrate --import-sqlite``,
docs/scaling.md).

Every TSE must live in exactly one database: two copies would both sign and give
signature and transaction counters twice (TR-03151: each counter value once). So:

* the SQLite file must be in use by no one (no ``opentse serve``, no till with
  ``pos --data``): switching its journal from WAL to DELETE needs the only
  connection, else E_IMPORT_SOURCE_IN_USE; an exclusive transaction then holds
  everyone else off while it is read;
* the PostgreSQL database must be new (migrated, no rows in any table copied),
  else E_IMPORT_TARGET_NOT_EMPTY: two installations are never merged;
* the installation's secret and CA (the SQLite file's data folder: ``installation.key``
  or ``OPENTSE_SECRET_FILE``, and ``ca.json``) must open the CA and every TSE's key
  (else E_IMPORT_MISMATCH), and are recorded in ``installation_check`` as the first
  node would: a node started with another secret is then refused
  (E_INSTALLATION_MISMATCH) instead of answering every signature 500
  E_KEY_DECRYPTION;
* everything is copied in ONE PostgreSQL transaction; the counter trigger checks
  every log again (gapless per TSE), and each table's row count is compared;
* after the COMMIT the SQLite file is renamed ``opentse.db.moved-to-postgresql``:
  a command run later without ``--database`` stops with E_DATABASE_MISSING instead of
  signing on the old copy. The renamed file is a backup, never to be started on.

Runtime tables are not copied: ``schema_migrations`` (PostgreSQL has its own),
``installation_check`` (PostgreSQL only, recorded from the secret and CA),
``svc_nodes`` and ``svc_index_mark`` (the old process's own rows; the transaction
index is copied whole and rebuilt from the logs where it lags).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from opentse.crypto import installation_secret
from opentse.crypto.ca import LocalCA
from opentse.crypto.keys import decrypt_private_key
from opentse.errors import OpenTSEError, ProtocolError, StorageError
from opentse.storage import migrations
from opentse.storage.pg_deadline import connection_kwargs

MOVED_SUFFIX = ".moved-to-postgresql"
_SKIP = frozenset({"schema_migrations", "installation_check", "svc_nodes", "svc_index_mark"})
_CORE = ("tses", "logs")  # copied by hand: SQLite keeps the state in two more tables
_SQLITE_CORE = frozenset({"tses", "tse_states", "tse_counters", "logs"})
_LOG_COLUMNS = (
    "tse_id",
    "signature_counter",
    "log_type",
    "operation",
    "log_time",
    "filename",
    "message",
    "transaction_number",
    "client_id",
    "ref",
    "extra",
)


@dataclass(frozen=True)
class ImportResult:
    rows: dict[str, int]  # table -> rows copied (tables with none left out)
    moved_to: Path  # the renamed SQLite file


def _refuse(message: str, code: str) -> StorageError:
    return StorageError(message, code=code)


MOVED_MARK = "opentse_moved_to_postgresql"  # a table written into an imported file


def _refuse_moved(path: Path, lite: sqlite3.Connection) -> None:
    """An imported file (its backup name, or the mark written before the rename) is
    never imported again: a second database would hold the same TSEs and hand out
    their counters a second time once the first has signed on."""
    marked = lite.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (MOVED_MARK,)
    ).fetchone()
    if path.name.endswith(MOVED_SUFFIX) or marked is not None:
        raise _refuse(
            f"{path} was imported into PostgreSQL already: it is the backup left behind,"
            " and a second import would put its TSEs into two databases (their counters"
            " would repeat). Use the database it was imported into",
            "E_IMPORT_SOURCE_MOVED",
        )


def _refuse_foreign(path: Path, lite: sqlite3.Connection) -> None:
    """Checked before the file is touched (its journal mode, migrations): a file that
    is no opentse installation database, or one whose folder lacks the installation's
    secret and CA, is refused unchanged."""
    tables = {str(r[0]) for r in lite.execute("SELECT name FROM sqlite_master")}
    if not {"tses", "logs"} <= tables:
        raise _refuse(f"{path} is not an opentse installation database", "E_IMPORT_SOURCE")
    _installation_files(path.resolve().parent)


def _open_source(path: Path) -> sqlite3.Connection:
    """The SQLite file, migrated to this code's schema and held exclusively."""
    if not path.is_file():
        raise _refuse(f"{path} is not a SQLite database file", "E_IMPORT_SOURCE")
    lite = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        try:
            _refuse_moved(path, lite)
            _refuse_foreign(path, lite)
        except sqlite3.DatabaseError as exc:  # not a database at all
            raise _refuse(f"{path} cannot be read: {exc}", "E_IMPORT_SOURCE") from None
        # WAL -> DELETE needs the only connection: a running server or till holds one
        mode = str(lite.execute("PRAGMA journal_mode = DELETE").fetchone()[0]).lower()
        if mode != "delete":
            raise sqlite3.OperationalError("database is locked")
        from opentse.storage.sqlite import refuse_newer_schema

        refuse_newer_schema(lite)
        migrations.apply(lite, "sqlite")
        lite.execute("BEGIN EXCLUSIVE")
    except sqlite3.OperationalError as exc:
        lite.close()
        if "locked" in str(exc) or "busy" in str(exc):
            raise _refuse(
                f"{path} is in use (an opentse serve, a till with pos --data or another "
                "command has it open): stop them all, then import",
                "E_IMPORT_SOURCE_IN_USE",
            ) from None
        raise _refuse(f"{path} cannot be read: {exc}", "E_IMPORT_SOURCE") from None
    except BaseException:
        lite.close()
        raise
    return lite


def _installation_files(data_dir: Path) -> tuple[Path, Path]:
    """The installation's secret and CA files in ``data_dir``; E_IMPORT_SOURCE when
    one is missing (the nodes on PostgreSQL need exactly these)."""
    secret_path = installation_secret.resolve_path(data_dir)
    ca_path = data_dir / "ca.json"
    for needed in (secret_path, ca_path):
        if not needed.is_file():
            raise _refuse(
                f"{needed} is missing: the import records the installation's secret and "
                f"CA (the nodes need the same files); restore it from your backup of "
                f"{data_dir}",
                "E_IMPORT_SOURCE",
            )
    return secret_path, ca_path


def _installation(lite: sqlite3.Connection, data_dir: Path) -> tuple[bytes, LocalCA]:
    """The secret and CA of the installation in ``data_dir``, checked against every
    TSE's key: the nodes on PostgreSQL will need exactly these."""
    secret_path, ca_path = _installation_files(data_dir)  # load_or_create never creates
    secret = installation_secret.load_or_create(secret_path)
    try:
        ca = LocalCA.from_bytes(ca_path.read_bytes(), secret)
    except OpenTSEError as exc:
        raise _refuse(
            f"{ca_path} does not open with {secret_path} ({exc.code}): not this "
            "installation's secret",
            "E_IMPORT_MISMATCH",
        ) from None
    for tse_id, blob in lite.execute("SELECT tse_id, encrypted_private_key FROM tses"):
        try:
            decrypt_private_key(bytes(blob), secret)
        except OpenTSEError as exc:
            raise _refuse(
                f"TSE {tse_id}: its key does not open with {secret_path} ({exc.code}): "
                "the database is not this installation's",
                "E_IMPORT_MISMATCH",
            ) from None
    return secret, ca


def _record_installation(pg: psycopg.Connection[Any], secret: bytes, ca: LocalCA) -> None:
    """installation_check as the first node records it; a node that set the database
    up with another secret or CA already: E_INSTALLATION_MISMATCH."""
    from opentse.storage.postgres import installation_checks

    checks = installation_checks(secret, ca.chain())
    pg.execute(
        "INSERT INTO installation_check (id, secret_check, ca_check, created_at)"
        " VALUES (1, %s, %s, extract(epoch from now())::bigint) ON CONFLICT (id) DO NOTHING",
        checks,
    )
    row = pg.execute("SELECT secret_check, ca_check FROM installation_check").fetchone()
    if row is None or (str(row[0]), str(row[1])) != checks:
        raise ProtocolError(
            "a node with another installation secret or CA set this database up: import "
            "into a new database, and give every node this installation's "
            "installation.key and ca.json",
            code="E_INSTALLATION_MISMATCH",
        )


def _columns(pg: psycopg.Connection[Any], table: str) -> list[str]:
    rows = pg.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def _target_tables(pg: psycopg.Connection[Any]) -> list[str]:
    """The schema's tables in creation order (a referenced table before its users)."""
    rows = pg.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY c.oid"
    ).fetchall()
    return [str(r[0]) for r in rows]


def _refuse_not_empty(pg: psycopg.Connection[Any], tables: list[str]) -> None:
    for table in tables:
        if table in _SKIP:
            continue
        q = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))
        row = pg.execute(q).fetchone()
        if row and row[0]:
            raise _refuse(
                f"the PostgreSQL database already holds data (table {table}): an "
                "installation is imported only into a new, empty database (create one, "
                "opentse migrate it, import; two installations are never merged)",
                "E_IMPORT_TARGET_NOT_EMPTY",
            )


_TRIGGER = "logs_counter_consecutive"  # 0001: each log follows its TSE's counter by +1


def _copy_core(lite: sqlite3.Connection, pg: psycopg.Connection[Any]) -> dict[str, int]:
    """TSEs with state and counter, then their logs in counter order.

    The counter trigger updates the TSE's row once per log; in one transaction every
    update leaves a row version the next one walks past, so n logs cost n^2 (10,000
    logs took 12 s). So the table's owner turns it off for this transaction only
    (other sessions never see it off: ALTER TABLE holds the table until COMMIT) and
    the same promise is checked once per TSE: the stored counters are unique (the
    primary key) and as many as from the first to the last, which is not beyond the
    TSE's counter. A role that does not own the table copies under the trigger."""
    tses = lite.execute(
        "SELECT t.tse_id, t.owner, t.serial_number, t.curve, t.signature_algorithm,"
        " t.time_format, t.public_key_point, t.encrypted_private_key, t.certificate_chain,"
        " t.created_at, t.extra, s.state, s.version, c.last_signature_counter,"
        " (SELECT min(signature_counter) FROM logs WHERE tse_id = t.tse_id)"
        " FROM tses t JOIN tse_states s USING (tse_id) JOIN tse_counters c USING (tse_id)"
    ).fetchall()
    try:
        with pg.transaction():  # a savepoint: refused, nothing changed
            pg.execute(
                sql.SQL("ALTER TABLE logs DISABLE TRIGGER {}").format(sql.Identifier(_TRIGGER))
            )
        checked_here = True
    except psycopg.errors.InsufficientPrivilege:
        checked_here = False
    with pg.cursor() as cur:
        for row in tses:
            *fields, last, first = row
            start = last if checked_here or first is None else int(first) - 1
            cur.execute(
                "INSERT INTO tses (tse_id, owner, serial_number, curve, signature_algorithm,"
                " time_format, public_key_point, encrypted_private_key, certificate_chain,"
                " created_at, extra, state, version, last_signature_counter)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (*fields, start),
            )
        logs = 0
        names = sql.SQL(", ").join(map(sql.Identifier, _LOG_COLUMNS))
        copy = sql.SQL("COPY logs ({}) FROM STDIN").format(names)
        source = lite.execute(
            f"SELECT {', '.join(_LOG_COLUMNS)} FROM logs ORDER BY tse_id, signature_counter"
        )
        with cur.copy(copy) as writer:
            for log_row in source:
                writer.write_row(log_row)
                logs += 1
        if checked_here:
            cur.execute(
                sql.SQL("ALTER TABLE logs ENABLE TRIGGER {}").format(sql.Identifier(_TRIGGER))
            )
        for row in tses:
            tse_id, last = row[0], row[13]
            cur.execute(
                "UPDATE tses SET last_signature_counter = %s"
                " WHERE tse_id = %s AND last_signature_counter <= %s",
                (last, tse_id, last),
            )
            updated = cur.rowcount
            cur.execute(
                "SELECT count(*), coalesce(max(signature_counter) - min(signature_counter)"
                " + 1, 0), coalesce(max(signature_counter), 0) FROM logs WHERE tse_id = %s",
                (tse_id,),
            )
            count, span, top = cur.fetchone() or (0, 0, 0)
            if updated != 1 or count != span or top > last:
                raise _refuse(
                    f"TSE {tse_id}: its stored logs are not one gapless run up to its "
                    f"counter {last} ({count} logs over counters spanning {span}, the "
                    f"last {top})",
                    "E_IMPORT_MISMATCH",
                )
    return {"tses": len(tses), "logs": logs}


def _copy_table(lite: sqlite3.Connection, pg: psycopg.Connection[Any], table: str) -> int:
    """One table by the columns both have; PostgreSQL's ``rowid`` identity takes
    SQLite's rowid, so insertion order (ties in listings) stays the same."""
    lite_cols = [str(r[1]) for r in lite.execute(f"PRAGMA table_info({table})")]
    if not lite_cols:
        return 0
    pg_cols = _columns(pg, table)
    cols = [c for c in pg_cols if c in lite_cols]
    with_rowid = "rowid" in pg_cols and "rowid" not in lite_cols
    if with_rowid:
        cols.append("rowid")
    missing = [c for c in lite_cols if c not in pg_cols]
    if missing:
        raise _refuse(
            f"table {table}: columns {', '.join(missing)} have no place in PostgreSQL",
            "E_IMPORT_MISMATCH",
        )
    names = sql.SQL(", ").join(map(sql.Identifier, cols))
    count = 0
    source = lite.execute(f"SELECT {', '.join(cols)} FROM {table}")
    if with_rowid:  # COPY cannot override GENERATED ALWAYS: INSERT in batches
        insert = sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES ({})").format(
            sql.Identifier(table), names, sql.SQL(", ").join(sql.Placeholder() * len(cols))
        )
        with pg.cursor() as cur:
            while batch := source.fetchmany(1000):
                cur.executemany(insert, batch)
                count += len(batch)
            seq = sql.SQL(
                "SELECT setval(pg_get_serial_sequence(%s, 'rowid'),"
                " (SELECT coalesce(max(rowid), 0) + 1 FROM {}), false)"
            ).format(sql.Identifier(table))
            cur.execute(seq, (table,))
        return count
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), names)
    with pg.cursor() as cur, cur.copy(copy) as writer:
        for row in source:
            writer.write_row(row)
            count += 1
    return count


def _check_counts(
    lite: sqlite3.Connection, pg: psycopg.Connection[Any], rows: dict[str, int]
) -> None:
    for table, copied in rows.items():
        q = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        got = pg.execute(q).fetchone()
        have = lite.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        if not got or int(got[0]) != have or copied != have:
            raise _refuse(
                f"table {table}: {have} rows in SQLite, {got[0] if got else 0} in PostgreSQL",
                "E_IMPORT_MISMATCH",
            )


def _host_of(url: str) -> str:
    """Where the file went, without user or password (a mark any reader may see)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname or ''}:{parts.port or ''}{parts.path}"


def import_sqlite(path: Path, url: str) -> ImportResult:
    """Copy the SQLite installation database ``path`` (in its data folder, beside the
    installation's secret and CA) into the new PostgreSQL database ``url`` (migrated
    here first) and rename ``path`` (see the module docstring)."""
    from opentse.storage.postgres import _storage_error, migrate

    migrate(url)
    lite = _open_source(path)
    try:
        secret, ca = _installation(lite, path.resolve().parent)
        lite_tables = {
            str(r[0]) for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        try:
            pg = psycopg.connect(url, **connection_kwargs(url, lock_timeout=False))
        except psycopg.Error as exc:
            raise _storage_error("connecting", exc) from exc
        try:
            with pg.transaction():
                tables = _target_tables(pg)
                _refuse_not_empty(pg, tables)
                _record_installation(pg, secret, ca)
                unknown = lite_tables - set(tables) - _SQLITE_CORE - _SKIP
                if unknown:
                    raise _refuse(
                        f"tables {', '.join(sorted(unknown))} of {path} have no place in "
                        "PostgreSQL",
                        "E_IMPORT_MISMATCH",
                    )
                rows = _copy_core(lite, pg)
                for table in tables:
                    if table in _SKIP or table in _CORE or table not in lite_tables:
                        continue
                    rows[table] = _copy_table(lite, pg, table)
                _check_counts(lite, pg, rows)
        except psycopg.Error as exc:
            raise _storage_error("importing", exc) from exc
        finally:
            pg.close()
        moved = path.with_name(path.name + MOVED_SUFFIX)
        try:
            os.replace(path, moved)  # still held exclusively: nobody wrote since the copy
        except OSError as exc:
            raise _refuse(
                f"imported into PostgreSQL, but {path} could not be renamed ({exc.strerror}):"
                f" move it away now and never start opentse on it",
                "E_IMPORT_SOURCE",
            ) from None
    finally:
        lite.close()
    _mark_moved(moved, url)
    return ImportResult({t: n for t, n in rows.items() if n}, moved)


def _mark_moved(moved: Path, url: str) -> None:
    """Write the mark into the renamed file (a copy of it under any name is refused by
    a second import too). Written under the new name, after the exclusive hold ended:
    no process opens opentse.db and finds this file there any more. Best effort: the
    name alone is refused already."""
    try:
        with contextlib.closing(sqlite3.connect(moved, isolation_level=None)) as mark:
            mark.execute(f"CREATE TABLE IF NOT EXISTS {MOVED_MARK} (url_host TEXT NOT NULL)")
            mark.execute(f"INSERT INTO {MOVED_MARK} VALUES (?)", (_host_of(url),))
    except sqlite3.Error:
        pass
