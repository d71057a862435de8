"""A database that accepts connections but never answers: /health still says 503 in
seconds, and SIGTERM still stops the node.

A frozen PostgreSQL host (or a network path that still acknowledges) holds a query
for ever: ``GET /health``'s read of the store hung with it (and each poll held one
more thread), so a load balancer's check timed out instead of reading 503. A real
``opentse serve`` process reaches PostgreSQL through a TCP relay of this test, which
is stalled (connections accepted, nothing forwarded) and resumed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from multinode_support import Relay, setup_tss

from opentse.testing.serving import wait_until_serving

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]

_CLI = "from opentse.cli.main import main; main()"


def _health(base: str) -> tuple[int, float]:
    started = time.monotonic()
    status = httpx.get(base + "/health", timeout=30).status_code
    return status, time.monotonic() - started


def test_health_and_stop_while_the_database_stalls(pg_url: str, tmp_path: Path) -> None:
    parts = urlsplit(pg_url)
    relay = Relay((parts.hostname or "127.0.0.1", parts.port or 5432))
    relay.start()
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    url = urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{relay.port}"))
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "OPENTSE_DATABASE": url, "OPENTSE_PG_POOL_MAX": "3"}
    env.pop("OPENTSE_SECRET_FILE", None)
    log_path = tmp_path / "node.log"
    with open(log_path, "wb") as log:
        node = subprocess.Popen(
            [sys.executable, "-c", _CLI, "serve", "--data", str(tmp_path / "data"),
             "--port", str(port)],
            env=env, stdout=log, stderr=log,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_serving(base, node, seconds=60), log_path.read_text()
        done = subprocess.run(
            [sys.executable, "-c", _CLI, "apikey", "create", "--org", "o", "--json",
             "--data", str(tmp_path / "data"), "--database", url],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        with httpx.Client(base_url=base, timeout=30) as client:
            r = client.post("/api/v2/auth", json=json.loads(done.stdout))
            assert r.status_code == 200, r.text
            setup_tss(client, {"Authorization": f"Bearer {r.json()['access_token']}"})
        assert _health(base)[0] == 200

        relay.stall()
        for _ in range(3):  # a load balancer polling: each answer in seconds
            status, took = _health(base)
            assert status == 503 and took < 6, f"/health: {status} after {took:.1f} s"
        relay.resume()  # the stuck read completes; the node is healthy again
        deadline = time.monotonic() + 30
        while _health(base)[0] != 200:
            assert time.monotonic() < deadline, "/health stayed 503 after the database answered"
            time.sleep(0.5)

        relay.stall()
        assert _health(base)[0] == 503
        started = time.monotonic()
        node.send_signal(signal.SIGTERM)
        node.wait(timeout=60)
        took = time.monotonic() - started
        assert took < 10, f"SIGTERM took {took:.1f} s:\n{log_path.read_text()}"
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
        relay.resume()
        relay.cut()
