"""kill -9 right after signing: the transaction index must not lose what was signed.

The index rows (UUID -> number, revision, state) are written by a background writer;
a process killed before it ran loses the queued rows. On the next start the server
rebuilds them from the logs' refs, so GET by number and the lists (``states=ACTIVE``)
see every transaction whose revision was answered before the kill.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from server_support import login, setup_tss

OPENTSE = str(Path(sys.executable).parent / "opentse")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [OPENTSE, "serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("server did not start")
        time.sleep(0.1)


def test_index_rows_survive_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = json.loads(
        subprocess.run(
            [OPENTSE, "apikey", "create", "--data", str(data), "--json"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    )
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(data, port)
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            h = login(c, key)
            tss, cid = setup_tss(c, h)
            finished = str(uuid.uuid4())
            r = c.put(
                f"/api/v2/tss/{tss}/tx/{finished}?tx_revision=1",
                json={"state": "ACTIVE", "client_id": cid},
                headers=h,
            )
            assert r.status_code == 200, r.text
            r = c.put(
                f"/api/v2/tss/{tss}/tx/{finished}?tx_revision=2",
                json={"state": "CANCELLED", "client_id": cid},
                headers=h,
            )
            assert r.status_code == 200, r.text
            started: dict[str, int] = {}
            for _ in range(3):  # the last ones are still queued when the kill comes
                tx = str(uuid.uuid4())
                r = c.put(
                    f"/api/v2/tss/{tss}/tx/{tx}?tx_revision=1",
                    json={"state": "ACTIVE", "client_id": cid},
                    headers=h,
                )
                assert r.status_code == 200, r.text
                started[tx] = r.json()["number"]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)

    proc = _start(data, port)
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            h = login(c, key)
            for tx, number in started.items():
                r = c.get(f"/api/v2/tss/{tss}/tx/{number}", headers=h)
                assert r.status_code == 200, r.text
                assert r.json()["_id"] == tx and r.json()["state"] == "ACTIVE"
            r = c.get(f"/api/v2/tss/{tss}/tx", params={"states[]": "ACTIVE"}, headers=h)
            assert r.status_code == 200, r.text
            assert {t["_id"] for t in r.json()["data"]} == set(started)
            r = c.get(f"/api/v2/tss/{tss}/tx", headers=h)
            assert {t["_id"] for t in r.json()["data"]} == {*started, finished}
            # a new revision continues the recovered transaction
            last = list(started)[-1]
            r = c.put(
                f"/api/v2/tss/{tss}/tx/{last}?tx_revision=2",
                json={"state": "CANCELLED", "client_id": cid},
                headers=h,
            )
            assert r.status_code == 200, r.text
            assert r.json()["number"] == started[last]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_index_mark_never_passes_a_request_still_signing(tmp_path: Path) -> None:
    from opentse.server.service_store import ServiceStore, TxRow

    store = ServiceStore(tmp_path / "svc.sqlite3")
    try:

        def row(tx: str, number: int) -> TxRow:
            return TxRow("tss", tx, "org", number, "c", 1, "ACTIVE", "", 100, None, {})

        assert store.index_mark() is None
        slow = store.begin_signing(100)  # signed, row not queued yet
        fast = store.begin_signing(200)
        store.upsert_tx(row("b", 2))
        store.end_signing(fast)
        store.flush()
        assert store.index_mark() == 100  # "a" may still be missing: not past 100
        store.upsert_tx(row("a", 1))
        store.end_signing(slow)
        store.flush()
        assert store.index_mark() == 200
        assert store.get_tx_by_number("tss", 1) is not None
    finally:
        store.close()
