"""A running node whose database gets a migration its code does not know (``opentse
migrate --force`` by a newer opentse while it ran) stops writing: PUT/PATCH/POST
answer 503 ``E_SCHEMA_NEWER`` with Retry-After (the register retries at an upgraded
node), reads go on, one error line says why; once the schema is known again (the
migration was rolled back) it writes again. It went on writing with its old rules.
Noticed by the export heartbeat (every 0.2 s here)."""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from server_support import login, new_key, serve_app, setup_tss

from opentse.storage.nodes import schema_level
from opentse.testing.clock import FrozenClock


def _until(answer: Callable[[], Any], status: int) -> Any:
    deadline = time.monotonic() + 15
    while (r := answer()).status_code != status:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.1)
    return r


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_node_older_than_its_database_stops_writing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    data = tmp_path / "data"
    future = schema_level() + 1

    def run(sql: str) -> None:
        if url is None:
            with sqlite3.connect(data / "opentse.db", isolation_level=None) as lite:
                lite.execute(sql)
        else:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql)  # type: ignore[arg-type]

    with (
        caplog.at_level(logging.WARNING, "opentse.server"),
        serve_app(data, FrozenClock(1_700_000_000), url, export_renew=0.2, export_lease=5) as c,
    ):
        h = login(c, new_key(c))
        tss, cid = setup_tss(c, h)

        def start() -> Any:
            return c.put(
                f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}",
                params={"tx_revision": 1},
                json={"state": "ACTIVE", "client_id": cid},
                headers=h,
            )

        assert start().status_code == 200
        run(f"INSERT INTO schema_migrations(version, name, applied_at) VALUES ({future}, 'x', 0)")
        r = _until(start, 503)
        assert r.json()["code"] == "E_SCHEMA_NEWER" and r.headers["retry-after"] == "10"
        assert f"{future:04d}" in r.json()["message"]
        other = c.put(
            f"/api/v2/tss/{tss}/client/{uuid.uuid4()}", json={"serial_number": "K2"}, headers=h
        )
        assert other.status_code == 503 and other.json()["code"] == "E_SCHEMA_NEWER"
        assert c.get(f"/api/v2/tss/{tss}", headers=h).status_code == 200  # reads go on
        run(f"DELETE FROM schema_migrations WHERE version = {future}")
        _until(start, 200)
    lines = [rec.getMessage() for rec in caplog.records if "E_SCHEMA_NEWER" in rec.getMessage()]
    assert len(lines) == 1 and "older than its database" in lines[0], lines


def test_a_rollback_on_purpose_writes_on_the_newer_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Once a newer version has signed, the backup from before the upgrade must not come
    back (its counters would repeat): going back means the older code on the migrated
    database, which the guard refused for good. OPENTSE_ALLOW_NEWER_SCHEMA=1 says the
    operator does it on purpose: the node writes on and says nothing about it."""
    data = tmp_path / "data"
    future = schema_level() + 1
    monkeypatch.setenv("OPENTSE_ALLOW_NEWER_SCHEMA", "1")
    with (
        caplog.at_level(logging.WARNING, "opentse.server"),
        serve_app(data, FrozenClock(1_700_000_000), None, export_renew=0.2, export_lease=5) as c,
    ):
        h = login(c, new_key(c))
        tss, cid = setup_tss(c, h)
        with sqlite3.connect(data / "opentse.db", isolation_level=None) as lite:
            lite.execute(
                "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, 'x', 0)",
                (future,),
            )
        deadline = time.monotonic() + 1.5  # seven heartbeats and more
        while time.monotonic() < deadline:
            r = c.put(
                f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}",
                params={"tx_revision": 1},
                json={"state": "ACTIVE", "client_id": cid},
                headers=h,
            )
            assert r.status_code == 200, r.text
            time.sleep(0.1)
    assert not [rec for rec in caplog.records if "E_SCHEMA_NEWER" in rec.getMessage()]


def test_migrate_names_a_database_newer_than_its_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`opentse migrate` of an older opentse on a database a newer one migrated printed
    'sqlite: up to date / schema version 00NN' while its server refused to write; it is
    E_SCHEMA_NEWER (as on PostgreSQL), exit 1, unless the rollback is on purpose."""
    from typer.testing import CliRunner

    from opentse.cli.main import build_app

    data = tmp_path / "data"
    app = build_app()
    first = CliRunner().invoke(app, ["migrate", "--data", str(data)])
    assert first.exit_code == 0, first.output
    future = schema_level() + 1
    with sqlite3.connect(data / "opentse.db", isolation_level=None) as lite:
        lite.execute(
            f"INSERT INTO schema_migrations(version, name, applied_at) VALUES ({future}, 'x', 0)"
        )
    refused = CliRunner().invoke(app, ["migrate", "--data", str(data)])
    assert refused.exit_code == 1, refused.output
    assert "E_SCHEMA_NEWER" in refused.output and f"{future:04d}" in refused.output
    assert "OPENTSE_ALLOW_NEWER_SCHEMA=1" in refused.output
    monkeypatch.setenv("OPENTSE_ALLOW_NEWER_SCHEMA", "1")
    allowed = CliRunner().invoke(app, ["migrate", "--data", str(data)])
    assert allowed.exit_code == 0 and f"schema version {future:04d}" in allowed.output
