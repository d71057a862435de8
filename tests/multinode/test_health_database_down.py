"""A node that lost its database: ``GET /health`` answers 503 in seconds, the API 503.

A load balancer polls ``/health`` every few seconds with a short timeout; a node
whose PostgreSQL went away must say so promptly (503) instead of holding each
check for the connection pool's 30-second wait, and say 200 again once the
database is back. API requests meanwhile get 503 with ``Retry-After`` (the
database, not a bug: a balancer or client may retry, at another node), not 500
E_INTERNAL. A real ``opentse serve`` process reaches PostgreSQL through a TCP relay
of this test, which is cut and restored. The node re-reads API keys every second and
beats every half second (OPENTSE_KEY_RECHECK_SECONDS, OPENTSE_EXPORT_RENEW_SECONDS).
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from multinode_support import relayed_node, setup_tss

KEY_RECHECK_SECONDS = 1
INTERVALS = {
    "OPENTSE_KEY_RECHECK_SECONDS": str(KEY_RECHECK_SECONDS),
    "OPENTSE_EXPORT_RENEW_SECONDS": "0.5",
    "OPENTSE_EXPORT_LEASE_SECONDS": "5",
}
pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]


def _health(base: str) -> tuple[int, float]:
    started = time.monotonic()
    status = httpx.get(base + "/health", timeout=60).status_code
    return status, time.monotonic() - started


def _setup(base: str, key: dict[str, Any]) -> dict[str, Any]:
    """With the API ``key``: a TSS and a client (the fiskaly flow), and three requests
    to make once the database is away: a login, a transaction and a read with a valid
    token."""
    with httpx.Client(base_url=base, timeout=30) as client:
        r = client.post("/api/v2/auth", json=key)
        assert r.status_code == 200, r.text
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        tss, cid = setup_tss(client, h, serial="K1")

    def login() -> httpx.Response:
        return httpx.post(base + "/api/v2/auth", json=key, timeout=90)

    def start() -> httpx.Response:
        tx = f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}"
        body = {"state": "ACTIVE", "client_id": cid}
        return httpx.put(base + tx, params={"tx_revision": 1}, json=body, headers=h, timeout=90)

    def read() -> httpx.Response:
        return httpx.get(base + f"/api/v2/tss/{tss}", headers=h, timeout=90)

    return {"requests": (login, start, read)}


def test_health_is_503_within_seconds_while_the_database_is_away(
    pg_url: str, tmp_path: Path
) -> None:
    with relayed_node(pg_url, tmp_path, INTERVALS) as n:
        relay, base = n.relay, n.base
        key = _setup(base, n.create_key())
        # the token's API key is due for its check against the store (which ran on
        # the event loop: the pool's 30 s wait held every request, /health too, and
        # ended 500 E_INTERNAL)
        time.sleep(KEY_RECHECK_SECONDS + 1)
        relay.cut()
        with ThreadPoolExecutor(3) as pool:  # each waits for the pool's 30 s: at once
            pending = [pool.submit(f) for f in key["requests"]]
            time.sleep(1)
            status, took = _health(base)  # meanwhile
            assert status == 503 and took < 10, f"/health: {status} after {took:.1f} s"
            answers = [f.result() for f in pending]
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert answer.headers.get("retry-after"), answer.headers
            body = answer.json()
            assert body["code"].startswith("E_STORAGE"), body
            assert "127.0.0.1" not in body["message"], body  # no database details
        for _ in range(2):
            status, took = _health(base)
            assert status == 503
            assert took < 10, f"/health took {took:.1f} s to say 503"
        relay.start()  # the database is back: the node recovers by itself
        deadline = time.monotonic() + 30
        while _health(base)[0] != 200:
            assert time.monotonic() < deadline, "/health stayed 503 after the database returned"
            time.sleep(0.5)
