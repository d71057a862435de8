"""A node whose PostgreSQL goes away: one log line per outage, a prompt SIGTERM.

An admin reading the log of a node during a database outage wants one clear line
when it starts and one when it is over, not a traceback from the export lease
heartbeat every cycle; and ``systemctl stop`` (SIGTERM) must end the node within a
few seconds even while the database does not answer (it took 60-75 s: the heartbeat,
the export workers and the lease release each waited for the connection pool's
30 s). A real ``opentse serve`` process reaches PostgreSQL through a TCP relay of
this test, which is cut and restored; its heartbeat runs every half second
(OPENTSE_EXPORT_RENEW_SECONDS; at the default 5 s the test took a minute).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from multinode_support import relayed_node, setup_tss

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]

RENEW = 0.5  # seconds between the node's heartbeats
INTERVALS = {"OPENTSE_EXPORT_RENEW_SECONDS": str(RENEW), "OPENTSE_EXPORT_LEASE_SECONDS": "5"}
OUTAGE_LINE = "export lease heartbeat: the database is not available"
BACK_LINE = "export lease heartbeat: the database is available again"


def _wait_for(path: Path, text: str, seconds: float, times: int = 1) -> str:
    deadline = time.monotonic() + seconds
    while (log := path.read_text(errors="replace")).count(text) < times:
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{log}"
        time.sleep(0.2)
    return log


def test_one_line_per_outage_and_sigterm_within_seconds(pg_url: str, tmp_path: Path) -> None:
    with relayed_node(pg_url, tmp_path, INTERVALS) as n:
        relay, node, base, log_path = n.relay, n.node, n.base, n.log_path
        key = n.create_key()
        with httpx.Client(base_url=base, timeout=30) as client:
            r = client.post("/api/v2/auth", json=key)
            assert r.status_code == 200, r.text
            setup_tss(client, {"Authorization": f"Bearer {r.json()['access_token']}"})

        relay.cut()
        # the heartbeat fails several times meanwhile
        log = _wait_for(log_path, OUTAGE_LINE, 20)
        time.sleep(6 * RENEW)
        log = log_path.read_text(errors="replace")
        assert log.count(OUTAGE_LINE) == 1, log
        assert "Traceback" not in log, log
        assert "E_STORAGE" in log.split(OUTAGE_LINE, 1)[1].splitlines()[0], log
        relay.start()
        log = _wait_for(log_path, BACK_LINE, 20)
        assert log.count(OUTAGE_LINE) == 1 and log.count(BACK_LINE) == 1, log

        relay.cut()  # away again, with a login waiting for it when the stop comes
        waiting = threading.Thread(
            target=lambda: _quietly(lambda: httpx.post(base + "/api/v2/auth", json=key, timeout=60))
        )
        waiting.start()
        _wait_for(log_path, OUTAGE_LINE, 20, times=2)  # the second outage's line
        started = time.monotonic()
        node.send_signal(signal.SIGTERM)
        node.wait(timeout=60)
        took = time.monotonic() - started
        assert took < 8, f"SIGTERM took {took:.1f} s:\n{log_path.read_text()}"
        waiting.join(timeout=60)
        log = log_path.read_text(errors="replace")
        assert "Traceback" not in log, log
        assert log.count(OUTAGE_LINE) == 2, log


def _quietly(request: Callable[[], object]) -> None:
    with contextlib.suppress(httpx.HTTPError):
        request()
