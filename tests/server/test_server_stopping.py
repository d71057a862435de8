"""SIGTERM while a request still waits for the database: after the grace
(``cli.serve.STOP_GRACE``) that request is answered 503 ``E_SERVER_STOPPING`` with
Retry-After (a register retries elsewhere or later; fiskaly replays are safe), the
process ends soon after, and its log holds no traceback.

The wait is real: another process holds SQLite's write lock on the data folder's
database (an ``opentse`` command, a backup tool), so the signing request waits in
the busy timeout.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_support import login, new_key_in, setup_tss

from opentse.cli.serve import STOP_GRACE
from opentse.testing.serving import serve_process, wait_until_serving

OPENTSE = str(Path(sys.executable).parent / "opentse")


@pytest.mark.parametrize("route", ["upsert", "client"])
def test_a_request_still_waiting_after_the_grace_gets_503_server_stopping(
    tmp_path: Path, route: str
) -> None:
    """``upsert``: the register's hot route (hotpath.py); ``client``: a route through
    Starlette's stack (registering a client writes too)."""
    data = tmp_path / "data"
    key = new_key_in(data)
    log = tmp_path / "serve.log"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with log.open("w") as out:
        proc = subprocess.Popen(
            [OPENTSE, "serve", "--data", str(data), "--port", str(port)], stdout=out, stderr=out
        )
    origin = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_serving(origin, proc), log.read_text()
        with httpx.Client(base_url=origin, timeout=60) as c:
            h = login(c, key)
            tss, cid = setup_tss(c, h)
            answers: list[Any] = []
            tx = str(uuid.uuid4())

            def put() -> None:
                try:
                    if route == "upsert":
                        path = f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1"
                        body = {"state": "ACTIVE", "client_id": cid}
                    else:
                        path = f"/api/v2/tss/{tss}/client/{uuid.uuid4()}"
                        body = {"serial_number": "KASSE-2"}
                    answers.append(c.put(path, json=body, headers=h))
                except httpx.HTTPError as exc:
                    answers.append(exc)

            locker = sqlite3.connect(data / "opentse.db", isolation_level=None)
            try:
                locker.execute("BEGIN IMMEDIATE")  # the write lock, held
                waiting = threading.Thread(target=put)
                waiting.start()
                time.sleep(1.0)  # the PUT is in the busy wait now
                assert not answers, answers
                stopped_at = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                waiting.join(timeout=30)
                answered_after = time.monotonic() - stopped_at
            finally:
                locker.execute("ROLLBACK")
                locker.close()
        assert len(answers) == 1 and isinstance(answers[0], httpx.Response), answers
        r = answers[0]
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "E_SERVER_STOPPING", r.text
        assert r.headers["retry-after"] == "1"
        assert "signature" not in r.json()
        assert STOP_GRACE - 0.5 <= answered_after < STOP_GRACE + 5, answered_after
        proc.wait(timeout=15)
        assert time.monotonic() - stopped_at < STOP_GRACE + 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert "Traceback" not in text, text
    if route == "upsert":  # the register's retry: one transaction, whether or not it was
        # signed before the stop (the writer may have finished it once the lock was free)
        with serve_process(data) as origin, httpx.Client(base_url=origin, timeout=60) as c:
            h = login(c, key)
            path = f"/api/v2/tss/{tss}/tx/{tx}"
            body = {"state": "ACTIVE", "client_id": cid}
            first = c.put(path, params={"tx_revision": 1}, json=body, headers=h)
            again = c.put(path, params={"tx_revision": 1}, json=body, headers=h)
            assert first.status_code == 200 and again.status_code == 200, first.text
            assert first.json()["number"] == again.json()["number"] == 1
            assert first.json()["signature"] == again.json()["signature"]
