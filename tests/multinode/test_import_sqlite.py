"""An operator who outgrew one machine moves the embedded installation to PostgreSQL.

docs/scaling.md: stop the one ``opentse serve`` on SQLite, ``opentse migrate
--database postgresql://... --import-sqlite DATA/opentse.db``, start the nodes on
PostgreSQL with the same data folder. Before, nothing moved the data: ``opentse
migrate`` with the URL made an empty schema, every node answered with no TSE and the
tills' API key was refused (their TSEs stayed in a SQLite file that a command run
without the URL would go on signing in: two copies of one TSE).

Real processes: a SQLite node signs; the import is refused while it runs and into a
database that holds data; after it, a PostgreSQL node takes the same key, the TSE goes
on from its counters, and the export of the whole TSE verifies as one chain holding
the signatures the till got from the SQLite node. The SQLite file is renamed, so a
command without the URL stops (E_DATABASE_MISSING) instead of signing on it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from multinode_support import CLI, relayed_node, setup_tss

from opentse.installation import Installation
from opentse.testing.serving import wait_until_serving
from opentse.verify.report import verify_exports

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]


def _cli(*args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENTSE_")}
    if url is not None:
        env["OPENTSE_DATABASE"] = url
    return subprocess.run(
        [sys.executable, "-c", CLI, *args], env=env, capture_output=True, text=True, timeout=120
    )


def _sale(c: httpx.Client, h: dict[str, str], tss: str, client_id: str) -> dict[str, Any]:
    """Start and finish one receipt; the FINISHED answer."""
    tx = str(uuid.uuid4())
    body: dict[str, Any] = {"state": "ACTIVE", "client_id": client_id}
    r = c.put(f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1", json=body, headers=h)
    assert r.status_code == 200, r.text
    body = {
        "state": "FINISHED",
        "client_id": client_id,
        "schema": {"standard_v1": {"receipt": {
            "receipt_type": "RECEIPT",
            "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "4.20"}],
            "amounts_per_payment_type": [{"payment_type": "CASH", "amount": "4.20"}],
        }}},
    }  # fmt: skip
    r = c.put(f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=2", json=body, headers=h)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _login(c: httpx.Client, key: dict[str, Any]) -> dict[str, str]:
    auth = {"api_key": key["api_key"], "api_secret": key["api_secret"]}
    r = c.post("/api/v2/auth", json=auth)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _tables_with_rows(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as pg:
        names = [
            str(r[0])
            for r in pg.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_name <> 'schema_migrations'"
            )
        ]
        exists = 'SELECT EXISTS (SELECT 1 FROM "{}")'
        return [n for n in names if pg.execute(exists.format(n)).fetchone() == (True,)]


def test_sqlite_installation_moves_to_postgresql(pg_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    demo = _cli("demo", "--data", str(data), "--transactions", "3")
    assert demo.returncode == 0, demo.stderr
    made = _cli("apikey", "create", "--org", "shop", "--json", "--data", str(data))
    key = json.loads(made.stdout)
    db = data / "opentse.db"

    # the one machine: a SQLite node the till signs at
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENTSE_")}
    with open(tmp_path / "sqlite-node.log", "wb") as log:
        node = subprocess.Popen(
            [sys.executable, "-c", CLI, "serve", "--data", str(data), "--port", str(port)],
            env=env, stdout=log, stderr=log,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_serving(base, node, seconds=60)
        with httpx.Client(base_url=base, timeout=30) as c:
            h = _login(c, key)
            tss, client_id = setup_tss(c, h)
            before = [_sale(c, h, tss, client_id) for _ in range(3)]
        refused = _cli("migrate", "--import-sqlite", str(db), url=pg_url)
        assert refused.returncode == 1
        assert refused.stderr.startswith("error E_IMPORT_SOURCE_IN_USE:"), refused.stderr
        assert db.exists() and _tables_with_rows(pg_url) == []
    finally:
        node.terminate()
        node.wait(timeout=30)
    backup = data / "backup.db"
    shutil.copyfile(db, backup)  # stopped: the WAL is checkpointed into the file

    done = _cli("migrate", "--import-sqlite", str(db), url=pg_url)
    assert done.returncode == 0, done.stderr
    assert "tses 2" in done.stdout and "svc_api_keys 1" in done.stdout, done.stdout
    assert not db.exists() and (data / "opentse.db.moved-to-postgresql").exists()
    # a cron job without the URL must not sign on the old copy
    left = _cli("tse", "list", "--data", str(data))
    assert left.stderr.startswith("error E_DATABASE_MISSING:"), left.stderr
    # ... and is not told to restore the moved file ("a lost opentse.db ... backup")
    assert "moved to PostgreSQL" in left.stderr and "restore" not in left.stderr
    # two installations are never merged
    again = _cli("migrate", "--import-sqlite", str(backup), url=pg_url)
    assert again.stderr.startswith("error E_IMPORT_TARGET_NOT_EMPTY:"), again.stderr

    with (
        relayed_node(pg_url, tmp_path) as pg_node,
        httpx.Client(base_url=pg_node.base, timeout=30) as c,
    ):
        h = _login(c, key)  # the tills' key
        r = c.get(f"/api/v2/tss/{tss}", headers=h)
        assert r.status_code == 200, r.text
        last = int(before[-1]["signature"]["counter"])
        after = _sale(c, h, tss, client_id)
        # start + finish (and an updateTime the new process may sign first)
        assert int(after["signature"]["counter"]) in (last + 2, last + 3)
        assert after["number"] == before[-1]["number"] + 1

    with Installation.open(data, database_url=pg_url) as inst:
        demo_tse = next(t for t in inst.store.list_tses() if t.tse_id != tss)
        for tse_id in (tss, demo_tse.tse_id):
            out = tmp_path / f"{tse_id}.tar"
            with open(out, "wb") as fh:
                inst.service.export(tse_id, fh, log_export=False)
            report = verify_exports([out])
            assert report.ok, [f.to_json() for f in report.findings]
            counters = [e.message.signature_counter for e in report.export.logs if e.message]
            assert counters == list(range(1, len(counters) + 1))
            if tse_id == tss:
                signed = {e.message.signature_counter: e.message.signature_value
                          for e in report.export.logs if e.message}  # fmt: skip
                for answer in [*before, after]:
                    sig = answer["signature"]
                    assert signed[int(sig["counter"])] == base64.b64decode(sig["value"])


def test_import_records_the_installation(pg_url: str, tmp_path: Path) -> None:
    """After the import a node (or command) with another installation secret is refused
    at start, as on any database a node set up. Before, the first one to come recorded
    its own secret, served, and answered every signature 500 E_KEY_DECRYPTION (the
    TSEs' keys are encrypted with the imported installation's)."""
    data, other = tmp_path / "data", tmp_path / "other"
    assert _cli("demo", "--data", str(data), "--transactions", "1").returncode == 0
    assert _cli("demo", "--data", str(other), "--transactions", "1").returncode == 0
    # a database file beside another installation's secret is not imported
    (other / "opentse.db").rename(other / "theirs.db")
    shutil.copyfile(data / "opentse.db", other / "opentse.db")
    wrong = _cli("migrate", "--import-sqlite", str(other / "opentse.db"), url=pg_url)
    assert wrong.stderr.startswith("error E_IMPORT_MISMATCH:"), wrong.stderr
    assert _tables_with_rows(pg_url) == []

    done = _cli("migrate", "--import-sqlite", str(data / "opentse.db"), url=pg_url)
    assert done.returncode == 0, done.stderr
    (other / "opentse.db").unlink()
    refused = _cli("tse", "list", "--data", str(other), url=pg_url)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error E_INSTALLATION_MISMATCH:"), refused.stderr
    listed = _cli("tse", "list", "--data", str(data), "--json", url=pg_url)
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 1


def _tse_updates(url: str) -> int:
    """Row updates of the schema's ``tses`` table so far (the import's backend flushed
    its statistics when it ended)."""
    with psycopg.connect(url, autocommit=True) as pg:
        row = pg.execute(
            "SELECT n_tup_upd FROM pg_stat_user_tables"
            " WHERE schemaname = current_schema() AND relname = 'tses'"
        ).fetchone()
        return int(row[0]) if row else -1


def test_import_work_does_not_grow_with_the_square_of_the_logs(pg_url: str, tmp_path: Path) -> None:
    """The counter trigger updated the TSE's row once per log, in one transaction: each
    update walked the versions the earlier ones left, 10,000 logs took 12 s (a TSE of a
    busy shop holds millions). Counted, not timed: the updates of ``tses`` are one per
    TSE, not one per log (300 receipts: 600 updates before)."""
    data = tmp_path / "data"
    assert _cli("demo", "--data", str(data), "--transactions", "300").returncode == 0
    done = _cli("migrate", "--import-sqlite", str(data / "opentse.db"), url=pg_url)
    assert done.returncode == 0, done.stderr
    assert "logs 6" in done.stdout, done.stdout  # 600 and some system logs
    assert 1 <= _tse_updates(pg_url) <= 2
    with psycopg.connect(pg_url, autocommit=True) as pg:
        on = pg.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'logs_counter_consecutive'"
            " AND tgrelid = to_regclass('logs')"
        ).fetchone()
    assert on == ("O",), "the counter trigger is on again for every session"


def test_a_gap_in_the_logs_is_not_imported(pg_url: str, tmp_path: Path) -> None:
    """With the trigger off for the copy, the import checks each TSE's run of counters
    itself: a SQLite file missing a log in the middle is refused, nothing is kept."""
    data = tmp_path / "data"
    assert _cli("demo", "--data", str(data), "--transactions", "3").returncode == 0
    lite = sqlite3.connect(data / "opentse.db")
    with lite:
        lite.execute("DELETE FROM logs WHERE signature_counter = 5")
    lite.close()
    refused = _cli("migrate", "--import-sqlite", str(data / "opentse.db"), url=pg_url)
    assert refused.stderr.startswith("error E_IMPORT_MISMATCH:"), refused.stderr
    assert "not one gapless run" in refused.stderr
    assert (data / "opentse.db").exists() and _tables_with_rows(pg_url) == []


def test_an_imported_file_is_not_imported_again(
    pg_url: str, pg_server: str, tmp_path: Path
) -> None:
    """The backup the import leaves (by its name, or a copy of it under the old name)
    is refused by a second import: a second database would hold the same TSE and sign
    its counters again (review C: it was imported, exit 0). A file that is no opentse
    installation database is refused unchanged (it was migrated and switched to
    DELETE journal mode before the refusal)."""
    from opentse.storage.pg_testing import temporary_schema

    data = tmp_path / "data"
    assert _cli("demo", "--data", str(data), "--transactions", "1").returncode == 0
    done = _cli("migrate", "--import-sqlite", str(data / "opentse.db"), url=pg_url)
    assert done.returncode == 0, done.stderr
    backup = data / "opentse.db.moved-to-postgresql"
    assert backup.is_file()
    with temporary_schema(pg_server) as second:
        again = _cli("migrate", "--import-sqlite", str(backup), url=second)
        assert again.stderr.startswith("error E_IMPORT_SOURCE_MOVED:"), again.stderr
        copy = tmp_path / "copy"
        shutil.copytree(data, copy)
        shutil.copyfile(backup, copy / "opentse.db")  # the old name, its mark inside
        again = _cli("migrate", "--import-sqlite", str(copy / "opentse.db"), url=second)
        assert again.stderr.startswith("error E_IMPORT_SOURCE_MOVED:"), again.stderr
        assert _tables_with_rows(second) == []

        foreign = tmp_path / "books" / "books.db"
        foreign.parent.mkdir()
        with sqlite3.connect(foreign) as db:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("CREATE TABLE books (n INTEGER)")
        db.close()
        before = foreign.read_bytes()
        refused = _cli("migrate", "--import-sqlite", str(foreign), url=second)
        assert refused.stderr.startswith("error E_IMPORT_SOURCE:"), refused.stderr
        assert "not an opentse installation database" in refused.stderr
        assert foreign.read_bytes() == before  # nothing migrated, no journal mode changed
