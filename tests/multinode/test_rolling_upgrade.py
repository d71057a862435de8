"""A rolling upgrade on PostgreSQL: migrations wait for the older nodes.

A node of an older opentse still running after the new code migrated goes on
writing with its old rules (across 0008 it indexed cash movements with amount 0
again, which 0008 had just reset). ``opentse migrate``, and a new node that would
migrate at start, refuse while such a node is alive, naming it
(``E_MIGRATE_OLD_NODES``); ``opentse migrate --force`` applies the migrations anyway.
New nodes record their schema level (``svc_nodes``, migration 0010) and are seen by
the next upgrade; a node older than its database refuses to start
(``E_SCHEMA_NEWER``).

The old node is real: the code of commit OLD_COMMIT (schema 0009, before nodes
recorded themselves), taken from this repository with ``git archive``, serving as
its own process beside the new code's processes on one test schema.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from multinode_support import CLI, setup_tss

from opentse.errors import StorageError
from opentse.storage import migrations
from opentse.storage.nodes import older_nodes, schema_level
from opentse.storage.postgres import PostgresStore
from opentse.testing.serving import wait_until_serving

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

OLD_COMMIT = "e7a77a2"  # schema 0009; nodes did not record themselves yet
REPO = Path(__file__).resolve().parents[2]
# what this code applies over the old node's schema 0009 (0010 made nodes record
# themselves; later ones too)
NEW = [m.version for m in migrations.load("postgresql") if 9 < m.version < 900]
PENDING = ", ".join(f"{v:04d}" for v in NEW)


@pytest.fixture(scope="module")
def old_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``src`` folder of OLD_COMMIT (skipped without the repository's history)."""
    target = tmp_path_factory.mktemp("old")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", OLD_COMMIT, "src"],
        capture_output=True,
        timeout=60,
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {OLD_COMMIT} not in this clone: {archive.stderr[:200]!r}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target / "src"


def _run(code: Path | None, url: str, data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``opentse ARGS`` of the old code (``code``: its src folder) or of this one."""
    env = {**os.environ, "OPENTSE_DATABASE": url}
    env.pop("PYTHONPATH", None)
    if code is not None:
        env["PYTHONPATH"] = str(code)  # before the installed (editable) opentse
    return subprocess.run(
        [sys.executable, "-c", CLI, *args, "--data", str(data)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@contextmanager
def _node(code: Path | None, url: str, data: Path, log: Path) -> Iterator[tuple[str, Any]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "OPENTSE_DATABASE": url, "OPENTSE_PG_POOL_MAX": "3"}
    env.pop("PYTHONPATH", None)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", CLI, "serve", "--data", str(data), "--port", str(port)],
            env=env, stdout=out, stderr=out,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_serving(base, proc, seconds=90), log.read_text()
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _applied(url: str) -> set[int]:
    with psycopg.connect(url) as conn:
        return {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}


def test_migrate_waits_for_an_older_node_and_force_overrides(
    pg_url: str, tmp_path: Path, old_code: Path
) -> None:
    data = tmp_path / "data"
    assert schema_level() >= 10
    with _node(old_code, pg_url, data, tmp_path / "old.log") as (base, _):
        assert max(_applied(pg_url) - {900}) == 9  # the old node's own schema
        made = _run(old_code, pg_url, data, "apikey", "create", "--json")
        assert made.returncode == 0, made.stderr
        key = json.loads(made.stdout)
        with httpx.Client(base_url=base, timeout=30) as c:
            r = c.post("/api/v2/auth", json=key)
            h = {"Authorization": f"Bearer {r.json()['access_token']}"}
            tss, cid = setup_tss(c, h)
            r = c.put(
                f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}",
                params={"tx_revision": 1},
                json={"state": "ACTIVE", "client_id": cid},
                headers=h,
            )
            assert r.status_code == 200, r.text

        refused = _run(None, pg_url, data, "migrate")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        line = " ".join(refused.stderr.split())
        assert line.startswith(f"error E_MIGRATE_OLD_NODES: not migrating ({PENDING})"), line
        assert f"{socket.gethostname()} (before 0010" in line and "--force" in line, line
        assert "Traceback" not in refused.stderr
        assert not set(NEW) & _applied(pg_url)

        new_log = tmp_path / "new.log"  # a new node that would migrate at start
        started = subprocess.run(
            [sys.executable, "-c", CLI, "serve", "--data", str(data), "--port", "1"],
            env={**os.environ, "OPENTSE_DATABASE": pg_url}, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert started.returncode == 1, started.stdout + started.stderr
        assert " ".join(started.stderr.split()).startswith("error E_MIGRATE_OLD_NODES:")
        assert not set(NEW) & _applied(pg_url)

        forced = _run(None, pg_url, data, "migrate", "--force", "--json")
        assert forced.returncode == 0, forced.stderr
        assert json.loads(forced.stdout)["applied"] == NEW

        with _node(None, pg_url, data, new_log) as (base, new), psycopg.connect(pg_url) as conn:
            with httpx.Client(base_url=base, timeout=30) as c:  # it signs: its index mark
                token = c.post("/api/v2/auth", json=key).json()["access_token"]
                r = c.put(
                    f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}",
                    params={"tx_revision": 1},
                    json={"state": "ACTIVE", "client_id": cid},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert r.status_code == 200, r.text
            # the new node said it is alive, and of which level: a migration of the
            # next level would wait for it, one of its own level not
            seen = [n for n in older_nodes(conn, schema_level() + 1) if n.level is not None]
            assert [n.name for n in seen] == [f"{socket.gethostname()}:{new.pid}"]
            assert seen[0].level == schema_level()
            assert all(n.level is None for n in older_nodes(conn, schema_level()))
        with psycopg.connect(pg_url) as conn:  # stopped on purpose: gone at once
            alive = conn.execute("SELECT count(*) FROM svc_nodes WHERE seen_ms > 0").fetchone()
            assert alive == (0,)
            # and its host's recent index mark (it signed) is not taken for a node of
            # before 0010: the next upgrade's migrate is not refused for a minute
            assert older_nodes(conn, schema_level() + 1) == []


def test_a_node_older_than_its_database_refuses_to_start(pg_url: str) -> None:
    PostgresStore(pg_url).close()  # the schema of this code
    future = schema_level() + 1
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_migrations(version, name, applied_at) VALUES (%s, 'future', 0)",
            (future,),
        )
    with pytest.raises(StorageError) as caught:
        PostgresStore(pg_url)
    assert caught.value.code == "E_SCHEMA_NEWER"
    assert f"{future:04d}" in caught.value.message
    assert "upgrade this node" in caught.value.message
