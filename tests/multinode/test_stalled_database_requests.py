"""A POS request on a database that stops answering: 503 in seconds, nothing half-done.

A request already running on a connection whose PostgreSQL stops answering (a frozen
host, a network path that still acknowledges) waited until the TCP stack gave up,
many minutes: the register hung with it. Now every statement has a client-side
deadline (storage/pg_deadline.py). Two faults of a TCP relay between a real
``opentse serve`` and PostgreSQL: the answer to a signing COMMIT is lost (the
signature is stored, the node cannot know), then the database stalls altogether.
Each PUT answers 503 with the problem body in seconds, and a retry of the same
revision gives the one stored signature.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from multinode_support import relayed_node, setup_tss

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(150)]

_SOON = 8.0  # seconds: the 5 s deadline, a tick, and a loaded machine


def _put(
    c: httpx.Client, path: str, revision: int, body: dict[str, str]
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    r = c.put(path, params={"tx_revision": revision}, json=body)
    return r, time.monotonic() - started


def _assert_503(r: httpx.Response, took: float) -> None:
    assert r.status_code == 503, r.text
    assert took < _SOON, f"503 after {took:.1f} s"
    problem = r.json()
    assert problem["status_code"] == 503 and problem["code"].startswith("E_STORAGE_"), problem
    assert r.headers["Retry-After"] == "1"


def test_put_on_a_stalled_database_answers_503_and_a_retry_finds_the_signature(
    pg_url: str, tmp_path: Path
) -> None:
    with relayed_node(pg_url, tmp_path) as n:
        relay, base = n.relay, n.base
        key = n.create_key()
        with httpx.Client(base_url=base, timeout=60) as c:
            r = c.post("/api/v2/auth", json=key)
            assert r.status_code == 200, r.text
            c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
            tss, client = setup_tss(c, dict(c.headers))
            active = {"state": "ACTIVE", "client_id": client}
            finish = {"state": "CANCELLED", "client_id": client}

            # 1. the signing COMMIT is applied, its answer lost
            tx = f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}"
            relay.lose_commit_answer()
            r, took = _put(c, tx, 1, active)
            assert relay.commit_lost.is_set(), "no signing COMMIT went through the relay"
            _assert_503(r, took)
            first, _ = _put(c, tx, 1, active)  # the retry: the stored signature
            assert first.status_code == 200, first.text
            again, _ = _put(c, tx, 1, active)
            assert again.json()["signature"] == first.json()["signature"]
            end, _ = _put(c, tx, 2, finish)
            assert end.status_code == 200, end.text
            counter = int(first.json()["signature"]["counter"])
            assert int(end.json()["signature"]["counter"]) == counter + 1  # signed once
            assert c.get(f"/api/v2/tss/{tss}").json()["signature_counter"] == str(counter + 1)

            # 2. the database stops answering altogether
            tx = f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}"
            relay.stall()
            try:
                for _ in range(2):  # one on a held connection, one waiting for the pool
                    _assert_503(*_put(c, tx, 1, active))
            finally:
                relay.resume()
            deadline = time.monotonic() + 30
            while (r := _put(c, tx, 1, active)[0]).status_code == 503:
                assert time.monotonic() < deadline, "still 503 after the database answered"
                time.sleep(0.5)
            assert r.status_code == 200 and r.json()["revision"] == 1, r.text
            assert int(r.json()["signature"]["counter"]) == counter + 2
