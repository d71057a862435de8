"""Several ``opentse serve`` processes on one PostgreSQL database sign for the same TSEs.

Two real server processes (different ports, one database schema, one shared data
folder for the installation secret and CA) receive concurrent POS flows for the
SAME TSEs from several threads; one process is killed with SIGKILL in the middle
and the clients carry on at the other (repeating an unanswered revision, which
the API answers idempotently). Then each TSE's export must verify: signature
counters 1..N without gap or repeat, every signature valid, and every signature
any client received present in it with the same counter.

Skips only when no PostgreSQL server is reachable (``OPENTSE_TEST_DATABASE``).
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from multinode_support import setup_tss

from opentse.installation import Installation
from opentse.testing.serving import wait_until_serving
from opentse.verify.report import verify_exports

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]

_CLI = "from opentse.cli.main import main; main()"
KILL_AFTER_FINISHED = 30  # transactions finished at both nodes before the SIGKILL
KILL_AFTER_AT_MOST = 20.0  # seconds (cold nodes need a moment for their first requests)
AFTER_KILL_SECONDS = 4.0
THREADS = 6
TSS_COUNT = 2


def _env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["OPENTSE_DATABASE"] = url
    env["OPENTSE_PG_POOL_MAX"] = "6"
    env.pop("OPENTSE_SECRET_FILE", None)  # the secret must come from the shared data dir
    return env


def _cli(args: list[str], url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _CLI, *args],
        env=_env(url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _start_nodes(count: int, data: Path, url: str, log_dir: Path) -> list[Node]:
    """Start ``count`` nodes at once (they migrate the empty schema concurrently)."""
    nodes = []
    for index in range(count):
        port = _free_port()
        log = open(log_dir / f"node{index}.log", "wb")  # noqa: SIM115 - lives with the process
        args = ["serve", "--data", str(data), "--database", url, "--port", str(port)]
        process = subprocess.Popen(
            [sys.executable, "-c", _CLI, *args], env=_env(url), stdout=log, stderr=log
        )
        nodes.append(Node(port, process, log))
    return nodes


def _wait_ready(nodes: list[Node]) -> None:
    deadline = time.monotonic() + 60
    for node in nodes:
        started = wait_until_serving(node.base, node.process, seconds=deadline - time.monotonic())
        assert node.process.poll() is None, Path(node.log.name).read_text()
        assert started, "server node did not start"


@dataclass
class Received:
    """Signatures the clients got back: (tss, counter) -> signature bytes."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    signatures: dict[tuple[str, int], bytes] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    finished: int = 0
    failovers: int = 0
    answered_by: Counter[int] = field(default_factory=Counter)  # node index -> 200s

    def add(self, tss: str, body: dict[str, Any]) -> None:
        sig = body["signature"]
        assert isinstance(sig, dict)
        key = (tss, int(sig["counter"]))
        value = base64.b64decode(sig["value"])
        with self.lock:
            old = self.signatures.setdefault(key, value)
            if old != value:
                self.conflicts.append(f"{key}: two different signatures for one counter")


def _receipt() -> dict[str, Any]:
    return {
        "standard_v1": {
            "receipt": {
                "receipt_type": "RECEIPT",
                "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "11.90"}],
                "amounts_per_payment_type": [{"payment_type": "CASH", "amount": "11.90"}],
            }
        }
    }


def _pos_worker(
    index: int,
    nodes: list[Node],
    alive: list[bool],
    tss_clients: list[tuple[str, str]],
    headers: dict[str, str],
    stop: threading.Event,
    received: Received,
    errors: list[str],
) -> None:
    """Start and finish transactions, each request at a random live node."""
    rng = random.Random(index)
    clients = [httpx.Client(base_url=n.base, timeout=30) for n in nodes]

    def put(tss: str, tx: str, rev: int, body: dict[str, Any]) -> dict[str, Any]:
        last = ""
        for _attempt in range(20):
            live = [i for i, ok in enumerate(alive) if ok] or [0]
            i = rng.choice(live)
            try:
                r = clients[i].put(
                    f"/api/v2/tss/{tss}/tx/{tx}?tx_revision={rev}", json=body, headers=headers
                )
            except httpx.TransportError:
                with received.lock:
                    received.failovers += 1
                time.sleep(0.05)
                continue
            if r.status_code >= 500:  # the killed node may answer 5xx once
                last = f"{r.status_code} {r.text}"
                time.sleep(0.05)
                continue
            assert r.status_code == 200, r.text
            with received.lock:
                received.answered_by[i] += 1
            result: dict[str, Any] = r.json()
            return result
        raise AssertionError(f"no node answered {tx} rev {rev}: {last}")

    try:
        while not stop.is_set():
            tss, client_id = rng.choice(tss_clients)
            tx = str(uuid.uuid4())
            started = put(tss, tx, 1, {"state": "ACTIVE", "client_id": client_id})
            received.add(tss, started)
            body = {"state": "FINISHED", "client_id": client_id, "schema": _receipt()}
            finished = put(tss, tx, 2, body)
            received.add(tss, finished)
            assert finished["state"] == "FINISHED"
            assert int(finished["number"]) == int(started["number"])
            with received.lock:
                received.finished += 1
    except BaseException as exc:  # reported by the main thread
        errors.append(f"worker {index}: {exc!r}")
    finally:
        for c in clients:
            c.close()


def test_two_nodes_same_tses_survive_sigkill(pg_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    received = Received()
    finished_before_kill = 0
    nodes = _start_nodes(2, data, pg_url, tmp_path)
    try:
        migrated = json.loads(_cli(["migrate", "--database", pg_url, "--json"], pg_url))
        assert migrated["dialect"] == "postgresql" and migrated["current"] >= 2
        args = ["apikey", "create", "--data", str(data), "--database", pg_url, "--json"]
        key = json.loads(_cli(args, pg_url))
        _wait_ready(nodes)
        with httpx.Client(base_url=nodes[0].base, timeout=30) as c0:
            r = c0.post(
                "/api/v2/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]}
            )
            assert r.status_code == 200, r.text
            headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
            tss_clients = [setup_tss(c0, headers) for _ in range(TSS_COUNT)]
        # the token and the TSEs set up at node 0 are known at node 1 (one database)
        r = httpx.get(f"{nodes[1].base}/api/v2/tss/{tss_clients[0][0]}", headers=headers)
        assert r.status_code == 200 and r.json()["state"] == "INITIALIZED", r.text

        alive = [True] * len(nodes)
        stop = threading.Event()
        errors: list[str] = []
        workers = [
            threading.Thread(
                target=_pos_worker,
                args=(i, nodes, alive, tss_clients, headers, stop, received, errors),
            )
            for i in range(THREADS)
        ]
        for w in workers:
            w.start()
        deadline = time.monotonic() + KILL_AFTER_AT_MOST
        while received.finished < KILL_AFTER_FINISHED and time.monotonic() < deadline:
            time.sleep(0.05)
        finished_before_kill = received.finished
        assert received.answered_by[0] > 0 and received.answered_by[1] > 0  # both served
        nodes[1].process.send_signal(signal.SIGKILL)  # in the middle of requests
        nodes[1].process.wait(timeout=10)
        alive[1] = False
        time.sleep(AFTER_KILL_SECONDS)
        stop.set()
        for w in workers:
            w.join(timeout=60)
        assert not any(w.is_alive() for w in workers)
        assert errors == []
        assert received.conflicts == []
        assert finished_before_kill > 0
        assert received.finished > finished_before_kill  # node 0 carried on alone
        _check_api_on_survivor(nodes[0], headers, tss_clients[0][0], tmp_path)
    finally:
        for node in nodes:
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
                try:
                    node.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()
            node.log.close()
        print(
            f"multinode: {received.finished} transactions finished "
            f"({finished_before_kill} before the kill), {len(received.signatures)} signatures "
            f"received, {received.failovers} requests failed over"
        )

    _check_exports(data, pg_url, tss_clients, received, tmp_path)


def _check_api_on_survivor(node: Node, headers: dict[str, str], tss: str, tmp: Path) -> None:
    """The service tables on PostgreSQL: lists, paging and a background export."""
    with httpx.Client(base_url=node.base, timeout=30, headers=headers) as c:
        r = c.get(f"/api/v2/tss/{tss}/tx", params={"limit": 3, "order": "desc"})
        assert r.status_code == 200, r.text
        listed = r.json()
        assert listed["count"] > 3 and len(listed["data"]) == 3
        some = listed["data"][0]
        r = c.get(f"/api/v2/tss/{tss}/tx/{some['_id']}")
        assert r.status_code == 200 and r.json()["signature"] == some["signature"]
        export_id = str(uuid.uuid4())
        r = c.put(f"/api/v2/tss/{tss}/export/{export_id}")
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 60
        while (state := c.get(f"/api/v2/tss/{tss}/export/{export_id}").json()["state"]) in (
            "PENDING",
            "WORKING",
        ):
            assert time.monotonic() < deadline, "export did not finish"
            time.sleep(0.1)
        assert state == "COMPLETED"
        r = c.get(f"/api/v2/tss/{tss}/export/{export_id}/file")
        assert r.status_code == 200
    path = tmp / "api-export.tar"
    path.write_bytes(r.content)
    report = verify_exports([path])
    assert report.ok and len(report.signatures.valid) == report.log_messages > 0


def _check_exports(
    data: Path,
    url: str,
    tss_clients: list[tuple[str, str]],
    received: Received,
    tmp_path: Path,
) -> None:
    with Installation.open(data, database_url=url) as inst:
        for tss, _client in tss_clients:
            counters = [log.signature_counter for log in inst.store.iter_logs(tss)]
            assert counters == list(range(1, len(counters) + 1)), "gap or repeat in the store"
            refs = [log.ref for log in inst.store.iter_logs(tss) if log.ref is not None]
            assert len(refs) == len(set(refs)), "a revision was signed twice"
            out = io.BytesIO()
            inst.service.export(tss, out, log_export=False)
            path = tmp_path / f"{tss}.tar"
            path.write_bytes(out.getvalue())
            report = verify_exports([path])
            assert report.ok, [f.to_json() for f in report.findings]
            logs = [e for e in report.export.logs if e.message is not None]
            assert len(logs) == len(report.export.logs) == len(counters)
            assert all(e.signature_ok for e in logs), "a signature does not verify"
            exported = {e.message.signature_counter: e.message.signature_value for e in logs}  # type: ignore[union-attr]
            assert sorted(exported) == counters
            mine = {c: sig for (t, c), sig in received.signatures.items() if t == tss}
            assert mine, "no client received a signature of this TSE"
            missing = [c for c, sig in mine.items() if exported.get(c) != sig]
            assert missing == [], f"received signatures missing from the export: {missing[:5]}"
