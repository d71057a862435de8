"""A full disk on the PostgreSQL server (SQLSTATE 53100, ``disk_full``) answers
E_STORAGE_FULL on every path, as appending logs did: deleting logs said plain
E_STORAGE (a 503 without the "disk full, retry once space is freed" answer). The
errors are a real server's: a trigger raises 53100 where the disk would fill (a
tablespace cannot be filled here), and psycopg reads it as it reads the server's own.
Also the service tables (exports, API keys): 503 E_STORAGE_FULL with Retry-After at
the API, the honest code on an export that failed, one line at the command line."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from server_support import login, new_key, serve_app, setup_tss

from opentse.engine.keyring import Keyring
from opentse.engine.service import TSEService
from opentse.errors import StorageError
from opentse.storage.postgres import PostgresStore
from opentse.testing import TEST_SECRET, SystemClock, ready_tse
from opentse.testing.clock import FrozenClock

pytestmark = pytest.mark.postgres

FULL_DISK = "could not extend file: No space left on device"


def _csrf(html: str) -> str:
    mark = 'name="csrf" value="'
    start = html.index(mark) + len(mark)
    return html[start : html.index('"', start)]


def fill_disk_at(url: str, table: str, event: str, when: str = "") -> None:
    """From now on ``event`` on ``table`` fails as on a full disk (53100)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE OR REPLACE FUNCTION opentse_full_disk() RETURNS trigger AS $$ BEGIN"
            f" RAISE EXCEPTION '{FULL_DISK}' USING ERRCODE = 'disk_full'; END $$"
            " LANGUAGE plpgsql"
        )
        conn.execute(
            f"CREATE TRIGGER full_{table}_{event.lower()} BEFORE {event} ON {table}"  # type: ignore[arg-type]
            f" FOR EACH ROW {when} EXECUTE FUNCTION opentse_full_disk()"
        )


def test_deleting_logs_on_a_full_disk_is_storage_full(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    try:
        service = TSEService(store, Keyring(TEST_SECRET), SystemClock())
        ready_tse(service, "t", client_id="C1")
        service.export("t", io.BytesIO())  # deleteStoredData drops only exported logs
        fill_disk_at(pg_url, "logs", "DELETE")
        with pytest.raises(StorageError) as caught:
            service.delete_stored_data("t")
        assert caught.value.code == "E_STORAGE_FULL", caught.value
        assert "deleting logs" in caught.value.message
        assert "\n" not in caught.value.message  # one line, not the server's CONTEXT
        with psycopg.connect(pg_url, autocommit=True) as conn:  # nothing deleted
            kept = conn.execute("SELECT count(*) FROM logs WHERE tse_id = 't'").fetchone()
        assert kept is not None and kept[0] == store.get_state("t").signature_counter
    finally:
        store.close()


def test_exports_and_api_keys_on_a_full_disk(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    with serve_app(data, FrozenClock(1_700_000_000), pg_url) as c:
        key = new_key(c)
        h = login(c, key)
        tss, _ = setup_tss(c, h)
        # an export whose COMPLETED update meets the full disk: one line naming it
        # (a traceback before), the export written again once its lease ran out
        fill_disk_at(pg_url, "svc_exports", "UPDATE", "WHEN (NEW.state = 'COMPLETED')")
        with caplog.at_level(logging.WARNING, "opentse.server.export"):
            r = c.put(f"/api/v2/tss/{tss}/export/{uuid.uuid4()}", headers=h)
            assert r.status_code == 200, r.text
            deadline = time.monotonic() + 30
            while not (lines := [x for x in caplog.records if "completed file" in x.getMessage()]):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert lines[0].exc_info is None and "E_STORAGE_FULL" in lines[0].getMessage(), lines
        # a new export cannot be stored: 503, retry once space is freed
        fill_disk_at(pg_url, "svc_exports", "INSERT")
        r = c.put(f"/api/v2/tss/{tss}/export/{uuid.uuid4()}", headers=h)
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "E_STORAGE_FULL" and r.headers["retry-after"] == "10"
        assert FULL_DISK not in r.text  # the details stay in the log
        # the dashboard's export form says the same (it said 400 with the server's text)
        page = c.get("/dashboard/login")
        signed_in = c.post(
            "/dashboard/login",
            data={"csrf": _csrf(page.text), "api_key": key["api_key"],
                  "api_secret": key["api_secret"]},
        )  # fmt: skip
        assert signed_in.status_code == 303, signed_in.text
        form = c.get("/dashboard/exports")
        posted = c.post("/dashboard/exports", data={"csrf": _csrf(form.text), "tss_id": tss})
        assert posted.status_code == 503, posted.text
        assert "disk is full" in posted.text and FULL_DISK not in posted.text
    fill_disk_at(pg_url, "svc_api_keys", "INSERT")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "opentse"), "apikey", "create", "--data", str(data)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "OPENTSE_DATABASE": pg_url},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error E_STORAGE_FULL" in result.stderr and "Traceback" not in result.stderr
