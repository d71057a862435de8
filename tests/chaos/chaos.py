"""Crash test: POS load against real ``opentse serve`` processes killed with SIGKILL.

Workers run receipts (revision 1 ACTIVE, revision 2 FINISHED) against the live
node(s); a chaos loop kills a node with SIGKILL at a random moment, restarts it on the
same data, and repeats ``kills`` times. A request that fails because its node died is
repeated (revision N again, which the API answers idempotently) at a live node.
Afterwards, with every node stopped, each TSS is exported and checked:

- the store's signature counters are 1..N without gap or repeat,
- the export verifies (``opentse.verify``: every signature, counters, names),
- every signature any client received is in the export under the same counter,
- no counter was ever answered with two different signatures,
- no (transaction, revision) was signed twice.

SQLite: one node, restarted on the same data folder. PostgreSQL (``--postgres``):
two nodes on one database; one is killed while the other carries on.

    .venv/bin/python tests/chaos/chaos.py --kills 100            # the long run
    .venv/bin/python tests/chaos/chaos.py --kills 100 --postgres
"""

from __future__ import annotations

import argparse
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

CLI = "from opentse.cli.main import main; main()"
PIN = "Chaos-Pin-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    index: int
    data: Path
    database: str | None
    log_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    alive: bool = False
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("OPENTSE_SECRET_FILE", None)
        if self.database:
            env["OPENTSE_DATABASE"] = self.database
            env.setdefault("OPENTSE_PG_POOL_MAX", "6")
        return env

    def spawn(self) -> None:
        """Start the process (same port every time, so clients keep their URL)."""
        self.port = self.port or free_port()
        args = ["serve", "--data", str(self.data), "--host", "127.0.0.1", "--port", str(self.port)]
        if self.database:
            args += ["--database", self.database]
        self.log = open(self.log_dir / f"node{self.index}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-c", CLI, *args], env=self.env(), stdout=self.log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.starts += 1

    def wait_ready(self, timeout: float = 120) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                tail = (self.log_dir / f"node{self.index}.log").read_text(errors="replace")
                raise RuntimeError(f"node {self.index} exited: {tail[-3000:]}")
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    self.alive = True
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {self.index} did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.alive = False
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        if self.log is not None:
            self.log.close()

    def stop(self) -> None:
        self.alive = False
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()


@dataclass
class Ledger:
    """What the clients were told: every signature, keyed by (tss, counter)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    signatures: dict[tuple[str, int], bytes] = field(default_factory=dict)
    revisions: dict[tuple[str, str, int], int] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    finished: int = 0
    retries: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, tss: str, tx: str, rev: int, body: dict[str, Any]) -> None:
        counter = int(body["signature"]["counter"])
        value = base64.b64decode(body["signature"]["value"])
        with self.lock:
            old = self.signatures.setdefault((tss, counter), value)
            if old != value:
                self.conflicts.append(f"{tss} counter {counter}: two different signatures")
            seen = self.revisions.setdefault((tss, tx, rev), counter)
            if seen != counter:
                self.conflicts.append(f"{tx} rev {rev} signed twice ({seen}, {counter})")


def _receipt(cents: int) -> dict[str, Any]:
    amount = f"{cents // 100}.{cents % 100:02d}"
    return {"standard_v1": {"receipt": {
        "receipt_type": "RECEIPT",
        "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": amount}],
        "amounts_per_payment_type": [{"payment_type": "CASH", "amount": amount}],
    }}}  # fmt: skip


def worker(
    seed: int,
    nodes: list[Node],
    tss_clients: list[tuple[str, str]],
    token: str,
    stop: threading.Event,
    ledger: Ledger,
) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    http = httpx.Client(timeout=httpx.Timeout(20, connect=2), headers=headers)

    def put(tss: str, tx: str, rev: int, body: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + 180
        while True:
            live = [n for n in nodes if n.alive]
            node = rng.choice(live or nodes)
            try:
                r = http.put(f"{node.base}/api/v2/tss/{tss}/tx/{tx}?tx_revision={rev}", json=body)
                if r.status_code == 200:
                    result: dict[str, Any] = r.json()
                    return result
                if r.status_code < 500 and r.status_code not in (409, 423):
                    raise AssertionError(f"{tx} rev {rev}: {r.status_code} {r.text}")
            except httpx.TransportError:
                pass
            with ledger.lock:
                ledger.retries += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{tx} rev {rev}: no node answered for 180 s")
            time.sleep(0.1)

    try:
        while not stop.is_set():
            tss, client = rng.choice(tss_clients)
            tx = str(uuid.uuid4())
            r1 = put(tss, tx, 1, {"state": "ACTIVE", "client_id": client})
            ledger.add(tss, tx, 1, r1)
            body = {"state": "FINISHED", "client_id": client,
                    "schema": _receipt(rng.randint(1, 99999))}  # fmt: skip
            r2 = put(tss, tx, 2, body)
            ledger.add(tss, tx, 2, r2)
            if r2["state"] != "FINISHED" or r2["number"] != r1["number"]:
                raise AssertionError(f"{tx}: {r1['number']} -> {r2}")
            with ledger.lock:
                ledger.finished += 1
    except BaseException as exc:  # reported by the main thread
        ledger.errors.append(f"worker {seed}: {exc!r}")
    finally:
        http.close()


def _cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", CLI, *args], env=env, capture_output=True,
                          text=True, timeout=180, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return done.stdout


def _setup(base: str, key: dict[str, str], tss_count: int) -> tuple[str, list[tuple[str, str]]]:
    with httpx.Client(base_url=base + "/api/v2", timeout=60) as c:
        r = c.post("/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]})
        r.raise_for_status()
        token = r.json()["access_token"]
        c.headers["Authorization"] = f"Bearer {token}"
        out = []
        for _ in range(tss_count):
            tss = str(uuid.uuid4())
            r = c.put(f"/tss/{tss}", json={})
            r.raise_for_status()
            puk = r.json()["admin_puk"]
            for method, path, body in (
                ("PATCH", "", {"state": "UNINITIALIZED"}),
                ("PATCH", "/admin", {"admin_puk": puk, "new_admin_pin": PIN}),
                ("POST", "/admin/auth", {"admin_pin": PIN}),
                ("PATCH", "", {"state": "INITIALIZED"}),
            ):
                c.request(method, f"/tss/{tss}{path}", json=body).raise_for_status()
            client = str(uuid.uuid4())
            c.put(f"/tss/{tss}/client/{client}", json={"serial_number": f"CHAOS-{tss[:8]}"}
                  ).raise_for_status()  # fmt: skip
            out.append((tss, client))
    return token, out


@dataclass
class ChaosResult:
    kills: int
    finished: int
    signatures: int
    retries: int
    logs: dict[str, int]
    seconds: float
    backend: str

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def check(data: Path, database: str | None, tss_ids: list[str], ledger: Ledger,
          out_dir: Path) -> dict[str, int]:  # fmt: skip
    """The export of each TSS against what the clients received; raises AssertionError."""
    from opentse.installation import Installation
    from opentse.verify.report import verify_exports

    assert ledger.errors == [], ledger.errors[:5]
    assert ledger.conflicts == [], ledger.conflicts[:5]
    counts = {}
    with Installation.open(data, database_url=database) as inst:
        for tss in tss_ids:
            logs = list(inst.store.iter_logs(tss))
            counters = [log.signature_counter for log in logs]
            assert counters == list(range(1, len(counters) + 1)), f"{tss}: gap or repeat"
            refs = [log.ref for log in logs if log.ref is not None]
            assert len(refs) == len(set(refs)), f"{tss}: a revision was signed twice"
            buf = io.BytesIO()
            inst.service.export(tss, buf, log_export=False)
            path = out_dir / f"{tss}.tar"
            path.write_bytes(buf.getvalue())
            report = verify_exports([path])
            assert report.ok, [f.to_json() for f in report.findings][:5]
            entries = [e for e in report.export.logs if e.message is not None]
            assert len(entries) == len(report.export.logs) == len(counters)
            assert all(e.signature_ok for e in entries), f"{tss}: a signature does not verify"
            exported = {e.message.signature_counter: e.message.signature_value
                        for e in entries if e.message is not None}  # fmt: skip
            assert sorted(exported) == counters
            received = {c: s for (t, c), s in ledger.signatures.items() if t == tss}
            missing = [c for c, s in received.items() if exported.get(c) != s]
            assert missing == [], f"{tss}: received signatures not in the export: {missing[:5]}"
            counts[tss] = len(counters)
    return counts


@contextmanager
def _postgres_schema(url: str | None) -> Iterator[str]:
    from opentse.storage.pg_testing import server_url, temporary_schema

    base = server_url(url)
    if base is None:
        raise RuntimeError("no PostgreSQL reachable (set OPENTSE_TEST_DATABASE)")
    with temporary_schema(base, prefix="opentse_chaos_") as schema_url:
        yield schema_url


def run(
    workdir: Path,
    *,
    kills: int,
    database: str | None = None,
    nodes: int = 1,
    workers: int = 4,
    tss_count: int = 2,
    window: tuple[float, float] = (0.2, 1.2),
    seed: int = 1,
    progress: bool = False,
) -> ChaosResult:
    """The crash test; raises AssertionError when a check fails."""
    started = time.monotonic()
    rng = random.Random(seed)
    data = workdir / "data"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("OPENTSE_SECRET_FILE", None)
    db_args = ["--database", database] if database else []
    if database:
        env["OPENTSE_DATABASE"] = database
        _cli(["migrate", *db_args, "--json"], env)
    key = json.loads(_cli(["apikey", "create", "--data", str(data), *db_args, "--json"], env))
    fleet = [Node(i, data, database, workdir) for i in range(nodes)]
    ledger = Ledger()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    tss_clients: list[tuple[str, str]] = []
    try:
        for node in fleet:
            node.spawn()
        for node in fleet:
            node.wait_ready()
        token, tss_clients = _setup(fleet[0].base, key, tss_count)
        threads = []
        for i in range(workers):
            args = (seed * 1000 + i, fleet, tss_clients, token, stop, ledger)
            threads.append(threading.Thread(target=worker, args=args))
        for t in threads:
            t.start()
        for round_ in range(kills):
            before = ledger.finished
            time.sleep(rng.uniform(*window))
            victim = rng.choice(fleet)
            victim.kill()
            if ledger.errors:
                break
            victim.spawn()
            victim.wait_ready()
            if progress:
                print(f"kill {round_ + 1}/{kills}: node {victim.index}, "
                      f"{ledger.finished - before} receipts since the last kill, "
                      f"{ledger.finished} in all", flush=True)  # fmt: skip
        time.sleep(window[0])
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=240)
        for node in fleet:
            node.stop()
    assert not any(t.is_alive() for t in threads), "a worker hangs"
    assert ledger.finished > 0
    counts = check(data, database, [t for t, _ in tss_clients], ledger, workdir)
    return ChaosResult(
        kills=kills,
        finished=ledger.finished,
        signatures=len(ledger.signatures),
        retries=ledger.retries,
        logs=counts,
        seconds=round(time.monotonic() - started, 1),
        backend="postgresql" if database else "sqlite",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="SIGKILL crash test of opentse serve")
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--postgres", action="store_true", help="two nodes on PostgreSQL")
    parser.add_argument("--database", default=os.environ.get("OPENTSE_TEST_DATABASE"))
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--tss", type=int, default=2)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep")
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="opentse-chaos-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"seed {args.seed}, work folder {workdir}", flush=True)
        if args.postgres:
            with _postgres_schema(args.database) as url:
                result = run(workdir, kills=args.kills, database=url, nodes=2,
                             workers=args.workers, tss_count=args.tss, seed=args.seed,
                             progress=True)  # fmt: skip
        else:
            result = run(workdir, kills=args.kills, workers=args.workers, tss_count=args.tss,
                         seed=args.seed, progress=True)  # fmt: skip
    print(json.dumps(result.to_json(), indent=2))


if __name__ == "__main__":
    main()
