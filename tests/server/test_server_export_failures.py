"""An export the service itself fails on: never E_BAD_REQUEST, which blames the client.

The store failing (a table gone) or the exports folder unwritable ended the export
ERROR with ``exception`` E_BAD_REQUEST (an engine StorageError) or E_INTERNAL with a
traceback (an OSError). Now: ``exception`` E_INTERNAL, fiskaly's code for the
service's own failure (its Export.exception is an enum), and the opentse code
(E_STORAGE, E_STORAGE_BUSY, E_EXPORT_WRITE_FAILED) in the file route's message and
the log. A database that is busy (a lock timeout) is tried again, up to three times.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from server_support import AppClient, login, new_key, serve_app, setup_tss

from opentse.testing.clock import FrozenClock


def _export(c: AppClient, h: dict[str, str], tss: str) -> tuple[str, dict[str, Any]]:
    exp = str(uuid.uuid4())
    r = c.put(f"/api/v2/tss/{tss}/export/{exp}", headers=h)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 30
    while True:
        body: dict[str, Any] = c.get(f"/api/v2/tss/{tss}/export/{exp}", headers=h).json()
        if body["state"] not in ("PENDING", "WORKING"):
            return exp, body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def _file_message(c: AppClient, h: dict[str, str], tss: str, exp: str) -> str:
    r = c.get(f"/api/v2/tss/{tss}/export/{exp}/file", headers=h)
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "E_EXPORT_NOT_COMPLETED"
    assert "retry-after" not in r.headers  # it will never complete
    return str(r.json()["message"])


def test_exports_folder_gone_is_internal_with_the_write_code(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with serve_app(tmp_path / "data", FrozenClock(1_700_000_000)) as c:
        h = login(c, new_key(c))
        tss, _ = setup_tss(c, h)
        exports = tmp_path / "data" / "exports"
        exports.rmdir()
        exports.write_bytes(b"")  # a file where the folder was: nothing can be written
        with caplog.at_level(logging.WARNING, "opentse.server.export"):
            exp, body = _export(c, h, tss)
        assert body["state"] == "ERROR" and body["exception"] == "E_INTERNAL", body
        message = _file_message(c, h, tss, exp)
        assert "E_EXPORT_WRITE_FAILED" in message, message
    logged = [r for r in caplog.records if exp in r.getMessage()]
    assert len(logged) == 1 and "E_EXPORT_WRITE_FAILED" in logged[0].getMessage(), logged
    assert logged[0].exc_info is None  # one line, no traceback
    assert str(tmp_path) not in logged[0].getMessage()


@pytest.mark.postgres
def test_store_failure_is_internal_not_bad_request(pg_url: str, tmp_path: Path) -> None:
    with serve_app(tmp_path / "data", FrozenClock(1_700_000_000), pg_url) as c:
        h = login(c, new_key(c))
        tss, _ = setup_tss(c, h)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE logs RENAME TO logs_gone")  # the store is broken
            try:
                exp, body = _export(c, h, tss)
            finally:
                conn.execute("ALTER TABLE logs_gone RENAME TO logs")
        assert body["state"] == "ERROR", body
        assert body["exception"] == "E_INTERNAL", body  # was E_BAD_REQUEST
        message = _file_message(c, h, tss, exp)
        assert "(E_INTERNAL: E_STORAGE)" in message, message
        # the store repaired, the next export completes
        exp, body = _export(c, h, tss)
        assert body["state"] == "COMPLETED", body


@pytest.mark.postgres
def test_busy_database_is_tried_again_then_given_up(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a statement waiting 200 ms for a lock fails E_STORAGE_BUSY (LockNotAvailable)
    url = pg_url + quote(" -c lock_timeout=200", safe="")
    with serve_app(
        tmp_path / "data", FrozenClock(1_700_000_000), url, export_renew=0.2, export_lease=5
    ) as c:
        h = login(c, new_key(c))
        tss, _ = setup_tss(c, h)
        with caplog.at_level(logging.WARNING, "opentse.server.export"):
            with psycopg.connect(pg_url) as locker:
                locker.execute("LOCK TABLE logs IN ACCESS EXCLUSIVE MODE")
                release = threading.Timer(0.5, locker.commit)  # the lock ends at 0.5 s
                release.start()
                exp, body = _export(c, h, tss)
                release.join()
            assert body["state"] == "COMPLETED", body  # a later attempt made it
            assert c.get(f"/api/v2/tss/{tss}/export/{exp}/file", headers=h).status_code == 200
            retried = [r.getMessage() for r in caplog.records if exp in r.getMessage()]
            assert retried and all("tried again" in m for m in retried), retried

            with psycopg.connect(pg_url) as locker:  # held until the attempts are spent
                locker.execute("LOCK TABLE logs IN ACCESS EXCLUSIVE MODE")
                exp, body = _export(c, h, tss)
        assert body["state"] == "ERROR" and body["exception"] == "E_INTERNAL", body
        assert "E_STORAGE_BUSY" in _file_message(c, h, tss, exp)
    lines = [r.getMessage() for r in caplog.records if exp in r.getMessage()]
    assert len(lines) == 3, lines  # attempts 1 and 2 tried again, the third gives up
    assert "attempt 2 of 3" in lines[1] and "failed: E_STORAGE_BUSY" in lines[2], lines
