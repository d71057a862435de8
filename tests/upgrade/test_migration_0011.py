"""Migration 0011 row by row, on SQLite and PostgreSQL: only the default 'HTTP' of a
TSE the API does not serve becomes 'embedded', each with one protocol entry after the
existing ones; an explicit interface, a served TSS and an 'embedded' row stay. The
database is migrated up to 0010 from the packaged files, filled as an older version
left it, then migrated to the end (as ``opentse migrate`` does)."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from opentse.ops.sites import EMBEDDED_INTERFACE, SERVED_INTERFACE
from opentse.storage import migrations
from opentse.storage.pg_testing import temporary_schema

ROWS = {  # tse_id: interface recorded by the older version
    "tse-embedded-default": SERVED_INTERFACE,  # demo / pos --data TSE, default: corrected
    "tss-served": SERVED_INTERFACE,  # created through the API: right as it is
    "tse-explicit": "USB (Hardware-TSE Typ X)",  # --interface given: kept
    "tse-new-rule": EMBEDDED_INTERFACE,  # placed since fb114d8: kept
}


def up_to_0010(dialect: str, into: Path) -> Path:
    """The packaged migrations of ``dialect`` numbered below 0011, in their own folder."""
    folder = into / dialect
    folder.mkdir()
    for entry in resources.files("opentse.storage.migrations").joinpath(dialect).iterdir():
        if entry.name.endswith(".sql") and (int(entry.name[:4]) < 11 or entry.name[:2] == "09"):
            with resources.as_file(entry) as path:
                shutil.copy(path, folder / entry.name)
    return folder


def fill(conn: Any, p: str) -> None:
    """An organization, a location, four placed TSEs, one served TSS and two protocol
    entries, as an older opentse wrote them."""
    conn.execute(
        f"INSERT INTO ops_organizations (id, name, created_at) VALUES ({p}, {p}, {p})",
        ("org-1", "Upgrade GmbH", 1),
    )
    conn.execute(
        "INSERT INTO ops_locations (id, org_id, name, street, postal_code, city, address_key,"
        f" created_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})",
        ("loc-1", "org-1", "Mitte", "Weg 1", "12345", "Ort", "weg1|12345|ort|de", 2),
    )
    for n, (tse, interface) in enumerate(ROWS.items()):
        conn.execute(
            "INSERT INTO ops_tses (tse_id, location_id, capacity, interface_type, assigned_at)"
            f" VALUES ({p}, {p}, {p}, {p}, {p})",
            (tse, "loc-1", 20_000_000, interface, 10 + n),
        )
    conn.execute(
        "INSERT INTO svc_tss (tss_id, organization_id, env, created_at)"
        f" VALUES ({p}, {p}, {p}, {p})",
        ("tss-served", "svc-org", "TEST", 3),
    )
    for seq in (1, 2):
        conn.execute(
            f"INSERT INTO ops_protocol (seq, at, kind) VALUES ({p}, {p}, {p})",
            (seq, seq, "org.created"),
        )


def check(conn: Any) -> None:
    interfaces = dict(conn.execute("SELECT tse_id, interface_type FROM ops_tses").fetchall())
    assert interfaces == {**ROWS, "tse-embedded-default": EMBEDDED_INTERFACE}
    entries = conn.execute(
        "SELECT seq, kind, org_id, location_id, tse_id, actor, details, at FROM ops_protocol"
        " WHERE seq > 2 ORDER BY seq"
    ).fetchall()
    assert [tuple(e[:6]) for e in entries] == [
        (3, "tse.interface_corrected", "org-1", "loc-1", "tse-embedded-default", "opentse migrate")
    ]
    assert json.loads(entries[0][6]) == {
        "interface_type": EMBEDDED_INTERFACE,
        "interface_type_before": SERVED_INTERFACE,
        "reason": "migration 0011: the TSE is not served over this installation's API",
    }
    assert int(entries[0][7]) > 1_700_000_000  # now, in unix seconds


@contextlib.contextmanager
def sqlite_db(tmp_path: Path) -> Iterator[Any]:
    conn = sqlite3.connect(tmp_path / "opentse.db", isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def test_sqlite(tmp_path: Path) -> None:
    with sqlite_db(tmp_path) as conn:
        migrations.apply(conn, "sqlite", up_to_0010("sqlite", tmp_path))
        fill(conn, "?")
        assert 11 in migrations.apply(conn, "sqlite")
        check(conn)
        assert migrations.apply(conn, "sqlite") == []  # once only: no second entry
        check(conn)


@pytest.mark.postgres
def test_postgresql(tmp_path: Path, pg_server: str) -> None:
    import psycopg

    with temporary_schema(pg_server) as url, psycopg.connect(url, autocommit=True) as conn:
        migrations.apply(conn, "postgresql", up_to_0010("postgresql", tmp_path))
        fill(conn, "%s")
        assert 11 in migrations.apply(conn, "postgresql")
        check(conn)
