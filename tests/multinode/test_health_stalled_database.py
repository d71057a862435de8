"""A database that accepts connections but never answers: /health still says 503 in
seconds, and SIGTERM still stops the node.

A frozen PostgreSQL host (or a network path that still acknowledges) holds a query
for ever: ``GET /health``'s read of the store hung with it (and each poll held one
more thread), so a load balancer's check timed out instead of reading 503. A real
``opentse serve`` process reaches PostgreSQL through a TCP relay of this test, which
is stalled (connections accepted, nothing forwarded) and resumed.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from multinode_support import relayed_node, setup_tss

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]


def _health(base: str) -> tuple[int, str | None]:
    """/health's status and, for a 503, why (the class name /health reports). The 30 s
    read timeout only keeps a hang from lasting the whole test; it is no margin."""
    r = httpx.get(base + "/health", timeout=30)
    return r.status_code, r.json().get("error") if r.status_code == 503 else None


def test_health_and_stop_while_the_database_stalls(pg_url: str, tmp_path: Path) -> None:
    with relayed_node(pg_url, tmp_path) as n:
        relay, node, base, log_path = n.relay, n.node, n.base, n.log_path
        with httpx.Client(base_url=base, timeout=30) as client:
            r = client.post("/api/v2/auth", json=n.create_key())
            assert r.status_code == 200, r.text
            setup_tss(client, {"Authorization": f"Bearer {r.json()['access_token']}"})
        assert _health(base)[0] == 200

        relay.stall()
        for _ in range(3):  # a load balancer polling: each answered by /health's deadline
            # the relay forwards nothing until resume(), so any answer at all is the
            # store read cut short by /health, never the read finishing
            status, why = _health(base)
            assert status == 503 and why is not None and why.isidentifier(), (status, why)
        relay.resume()  # the stuck read completes; the node is healthy again
        deadline = time.monotonic() + 30
        while _health(base)[0] != 200:
            assert time.monotonic() < deadline, "/health stayed 503 after the database answered"
            time.sleep(0.5)

        relay.stall()
        assert _health(base)[0] == 503
        node.send_signal(signal.SIGTERM)
        try:  # it hung in the lease release before; 60 s only bounds a hang
            node.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"SIGTERM did not stop the node:\n{log_path.read_text()}"
            ) from None
        # each poll's read failed after /health answered: "Future exception was never
        # retrieved" and a traceback per poll were logged (server/health.py)
        log = log_path.read_text()
        assert "Traceback" not in log and "never retrieved" not in log, log
