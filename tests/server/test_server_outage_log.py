"""Requests answered 503 while the database is busy or away: a few log lines, not one
per request.

Each request that met a database away or busy (E_STORAGE_UNAVAILABLE /
E_STORAGE_BUSY, answered 503) wrote its own warning: a shop's registers retrying
during an outage filled the log with one line per request. Now the first is logged
and the rest are counted into the next line, at most one a minute. The database is
made busy for real: a table lock with ``lock_timeout`` on the node's connections.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from server_support import login, new_key, serve_app, setup_tss

from opentse.testing.clock import FrozenClock

pytestmark = pytest.mark.postgres


def test_busy_database_is_one_log_line(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = pg_url + quote(" -c lock_timeout=100", safe="")
    with serve_app(tmp_path / "data", FrozenClock(1_700_000_000), url) as c:
        h = login(c, new_key(c))
        tss, cid = setup_tss(c, h)
        with (
            caplog.at_level(logging.WARNING, "opentse.server"),
            psycopg.connect(pg_url) as locker,
        ):
            locker.execute("LOCK TABLE tses IN ACCESS EXCLUSIVE MODE")
            for _ in range(6):
                r = c.put(
                    f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}",
                    params={"tx_revision": 1},
                    json={"state": "ACTIVE", "client_id": cid},
                    headers=h,
                )
                assert r.status_code == 503, r.text
                assert r.json()["code"] == "E_STORAGE_BUSY" and r.headers["retry-after"]
        lines = [r.getMessage() for r in caplog.records if "E_STORAGE_BUSY" in r.getMessage()]
        assert len(lines) == 1, lines  # was 6
        assert "answered 503" in lines[0]
