"""SIGTERM while a request still waits for the database: after the grace
(``cli.serve.STOP_GRACE``) that request is answered 503 ``E_SERVER_STOPPING`` with
Retry-After (a register retries elsewhere or later; fiskaly replays are safe), the
process ends soon after, and its log holds no traceback.

The wait is real: another process holds SQLite's write lock on the data folder's
database (an ``opentse`` command, a backup tool), so the signing request waits in
the busy timeout. The signal is sent once the server has read the whole request
(``wait_until_read``: the kernel's TCP queues), not after a sleep that a loaded
machine may outlast before the request arrives.
"""

from __future__ import annotations

import http.client
import json
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from server_support import login, new_key_in, setup_tss

from opentse.cli.serve import STOP_GRACE
from opentse.testing.serving import serve_process, wait_until_read, wait_until_serving

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
        tx = str(uuid.uuid4())
        if route == "upsert":
            path = f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1"
            body = {"state": "ACTIVE", "client_id": cid}
        else:
            path = f"/api/v2/tss/{tss}/client/{uuid.uuid4()}"
            body = {"serial_number": "KASSE-2"}
        put = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        locker = sqlite3.connect(data / "opentse.db", isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")  # the write lock, held
            put.request("PUT", path, json.dumps(body), {**h, "Content-Type": "application/json"})
            # the server has read the whole request: its handler runs and waits for the lock
            assert wait_until_read(put.sock), "the server did not read the request"
            assert select.select([put.sock], [], [], 0)[0] == []  # and has not answered
            stopped_at = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            r = put.getresponse()
            answered_after = time.monotonic() - stopped_at
            answer = json.loads(r.read())
        finally:
            put.close()
            locker.execute("ROLLBACK")
            locker.close()
        assert r.status == 503, answer
        assert answer["code"] == "E_SERVER_STOPPING", answer
        assert r.getheader("retry-after") == "1"
        assert "signature" not in answer
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


def test_wait_until_read_waits_until_the_peer_has_read_everything() -> None:
    """The condition the stopping test waits for: not true while the bytes sit unread
    in the peer's socket, true once it has read them all."""
    with (
        socket.create_server(("127.0.0.1", 0)) as listener,
        socket.create_connection(listener.getsockname()) as client,
    ):
        peer, _ = listener.accept()
        with peer:
            client.sendall(b"x" * 5000)
            assert not wait_until_read(client, seconds=0.3)
            received = b""
            while len(received) < 5000:
                received += peer.recv(5000)
            assert wait_until_read(client, seconds=10)
