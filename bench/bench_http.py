"""HTTP benchmark: finished transactions/s and latency through ``opentse serve``.

Starts a real server process on a free loopback port with a temporary data folder
(SQLite store), sets up one TSS with one client per worker, then runs N concurrent
POS workers (raw asyncio HTTP/1.1 keep-alive connections: the generator shares the
CPUs with the server, so it must be cheap), each doing what a register does per
receipt: PUT revision 1 (ACTIVE, Start log) and PUT revision 2 (FINISHED with a standard_v1 receipt,
Finish log). Beside it, the raw signing rate of the TSE key (ECDSA P-256 plain) in
this process. Server CPU seconds are read from /proc for the measured window only, so
``server_cpu_ms_per_finished_tx`` means something on a loaded machine; its user and
system parts and the server's context switches per request show how much of it is
thread hand-offs. Prints JSON.

    .venv/bin/python bench/bench_http.py --clients 1,16,64 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from opentse.testing.serving import wait_until_serving

OPENTSE = str(Path(sys.executable).parent / "opentse")
RECEIPT = {
    "receipt_type": "RECEIPT",
    "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "21.42"}],
    "amounts_per_payment_type": [{"payment_type": "NON_CASH", "amount": "21.42"}],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return round(ordered[k] * 1000, 3)


def process_cpu(pid: int) -> float:
    """User+system CPU seconds of a process (Linux /proc), 0.0 elsewhere."""
    user, system = process_cpu_split(pid)
    return user + system


def process_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process (Linux /proc), zeros elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0


def context_switches(pid: int) -> int:
    """Voluntary + involuntary context switches of every thread of a process (Linux):
    each hand-off between the event loop, handler threads and the store's writer
    costs one or two, so per request they show how much of the CPU is hand-offs."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                for line in (task / "status").read_text().splitlines():
                    if "ctxt_switches:" in line:
                        total += int(line.split()[1])
            except (OSError, ValueError, IndexError):
                continue  # a thread that ended meanwhile
    except OSError:
        return 0
    return total


def raw_sign_rate(seconds: float = 2.0) -> float:
    from opentse.crypto import keys

    key = keys.generate_private_key("P-256")
    signer = keys.PlainSigner(key, "ecdsa-plain-SHA256")
    data = b"x" * 200
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        signer.sign(data)
        n += 1
    return round(n / (time.perf_counter() - t0), 1)


def engine_rate(clients: int, seconds: float = 3.0) -> float:
    """Finished transactions/s of the TSE service in-process (no HTTP), same store."""
    import threading

    from opentse.installation import Installation

    with tempfile.TemporaryDirectory() as tmp:
        inst = Installation.open(Path(tmp))
        try:
            svc = inst.service
            created = svc.create_tse("bench")
            svc.set_state("bench", "UNINITIALIZED")
            svc.set_admin_pin("bench", created.admin_puk, "123456")
            svc.authenticate("bench", "123456")
            svc.initialize("bench")
            for i in range(clients):
                svc.register_client("bench", f"C{i}")
            data = b"Beleg^21.42_0.00_0.00_0.00_0.00^21.42:Unbar"
            counts = [0] * clients
            stop = time.perf_counter() + seconds

            def run(i: int) -> None:
                while time.perf_counter() < stop:
                    r = svc.start_transaction("bench", f"C{i}", b"", "")
                    svc.finish_transaction(
                        "bench", f"C{i}", r.transaction_number, data, "Kassenbeleg-V1"
                    )
                    counts[i] += 1

            t0 = time.perf_counter()
            threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return round(sum(counts) / (time.perf_counter() - t0), 1)
        finally:
            inst.close()


def setup(base: str, key: dict[str, str], clients: int) -> tuple[dict[str, str], str, list[str]]:
    with httpx.Client(base_url=base, timeout=60) as c:
        token = c.post("/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]})
        h = {"Authorization": "Bearer " + token.json()["access_token"]}
        tss = str(uuid.uuid4())
        puk = c.put(f"/tss/{tss}", json={}, headers=h).json()["admin_puk"]
        c.patch(f"/tss/{tss}", json={"state": "UNINITIALIZED"}, headers=h).raise_for_status()
        c.patch(
            f"/tss/{tss}/admin", json={"admin_puk": puk, "new_admin_pin": "123456"}, headers=h
        ).raise_for_status()
        c.post(f"/tss/{tss}/admin/auth", json={"admin_pin": "123456"}, headers=h).raise_for_status()
        c.patch(f"/tss/{tss}", json={"state": "INITIALIZED"}, headers=h).raise_for_status()
        ids = []
        for i in range(clients):
            cid = str(uuid.uuid4())
            c.put(
                f"/tss/{tss}/client/{cid}", json={"serial_number": f"BENCH-{i}"}, headers=h
            ).raise_for_status()
            ids.append(cid)
        return h, tss, ids


class RawConnection:
    """One HTTP/1.1 keep-alive connection on plain asyncio streams.

    The load generator must cost less CPU than the server it measures (on 2 cores
    they share the CPUs): a request is a pre-formatted bytes template, a response is
    read by Content-Length. Anything but 200 is an error.
    """

    def __init__(self, host: str, port: int, prefix: str, token: str) -> None:
        self.host, self.port, self.prefix = host, port, prefix
        self.auth = f"Authorization: Bearer {token}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def put(self, path: str, body: bytes) -> bytes:
        assert self.reader is not None and self.writer is not None
        head = (
            f"PUT {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}\r\n{self.auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        payload = await self.reader.readexactly(length)
        if status_line.split(b" ", 2)[1] != b"200":
            raise RuntimeError(f"request failed: {status_line!r} {payload[:300]!r}")
        return payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def worker(
    conn: RawConnection,
    tss: str,
    cid: str,
    stop: float,
    req_lat: list[float],
    tx_lat: list[float],
) -> int:
    done = 0
    active = json.dumps({"state": "ACTIVE", "client_id": cid}).encode()
    finish = json.dumps(
        {"state": "FINISHED", "client_id": cid, "schema": {"standard_v1": {"receipt": RECEIPT}}}
    ).encode()
    while time.perf_counter() < stop:
        tx = str(uuid.uuid4())
        t0 = time.perf_counter()
        await conn.put(f"/tss/{tss}/tx/{tx}?tx_revision=1", active)
        t1 = time.perf_counter()
        await conn.put(f"/tss/{tss}/tx/{tx}?tx_revision=2", finish)
        t2 = time.perf_counter()
        req_lat.extend((t1 - t0, t2 - t1))
        tx_lat.append(t2 - t0)
        done += 1
    return done


async def load(
    port: int,
    token: str,
    tss: str,
    ids: list[str],
    seconds: float,
    warmup: float,
    server_pid: int,
) -> dict[str, Any]:
    conns = [RawConnection("127.0.0.1", port, "/api/v2", token) for _ in ids]
    await asyncio.gather(*(c.open() for c in conns))
    try:
        scratch: list[float] = []
        await asyncio.gather(
            *(
                worker(c, tss, cid, time.perf_counter() + warmup, scratch, [])
                for c, cid in zip(conns, ids, strict=True)
            )
        )
        req_lat: list[float] = []
        tx_lat: list[float] = []
        server_cpu0, client_cpu0 = process_cpu(server_pid), time.process_time()
        split0, switches0 = process_cpu_split(server_pid), context_switches(server_pid)
        t0 = time.perf_counter()
        counts = await asyncio.gather(
            *(
                worker(c, tss, cid, t0 + seconds, req_lat, tx_lat)
                for c, cid in zip(conns, ids, strict=True)
            )
        )
        elapsed = time.perf_counter() - t0
        server_cpu = process_cpu(server_pid) - server_cpu0
        client_cpu = time.process_time() - client_cpu0
        split1, switches1 = process_cpu_split(server_pid), context_switches(server_pid)
    finally:
        await asyncio.gather(*(c.close() for c in conns))
    finished = sum(counts)
    return {
        "finished_transactions": finished,
        "elapsed_s": round(elapsed, 3),
        "finished_tx_per_s": round(finished / elapsed, 1),
        "requests_per_s": round(2 * finished / elapsed, 1),
        "request_latency_ms": {
            "p50": percentile(req_lat, 50),
            "p99": percentile(req_lat, 99),
            "mean": round(statistics.fmean(req_lat) * 1000, 3) if req_lat else 0.0,
        },
        "transaction_latency_ms": {"p50": percentile(tx_lat, 50), "p99": percentile(tx_lat, 99)},
        "server_cpu_s": round(server_cpu, 3),
        "server_cpu_ms_per_finished_tx": round(1000 * server_cpu / finished, 3) if finished else 0,
        "server_user_s": round(split1[0] - split0[0], 3),
        "server_system_s": round(split1[1] - split0[1], 3),
        "server_context_switches_per_request": (
            round((switches1 - switches0) / (2 * finished), 2) if finished else 0
        ),
        "client_cpu_s": round(client_cpu, 3),
        "load_average": os.getloadavg()[0],
    }


def run_loop(coro: Any) -> Any:
    """``asyncio.run`` on uvloop when installed: the generator shares the two CPUs
    with the server it measures, so its own loop should cost as little as it can."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clients", default="16", help="concurrent POS workers, e.g. 16 or 1,16,64"
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--data", type=Path, default=None, help="data folder (default: a temp dir)")
    parser.add_argument("--no-engine", action="store_true", help="skip the in-process engine rate")
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        help="py-spy profile of the server (GIL samples): SVG, or collapsed stacks for *.txt",
    )
    args = parser.parse_args()
    counts = [int(c) for c in str(args.clients).split(",")]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp) / "data"
        env = {**os.environ}
        key = json.loads(
            subprocess.run(
                [OPENTSE, "apikey", "create", "--data", str(data), "--json"],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            ).stdout
        )
        port = free_port()
        proc = subprocess.Popen(
            [OPENTSE, "serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        base = f"http://127.0.0.1:{port}/api/v2"
        spy: subprocess.Popen[bytes] | None = None
        try:
            if not wait_until_serving(f"http://127.0.0.1:{port}", proc):
                raise SystemExit("server did not start")
            headers, tss, ids = setup(base, key, max(counts))
            token = headers["Authorization"][7:]
            if args.py_spy is not None:
                spy = subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "py-spy"),
                        "record",
                        "-p",
                        str(proc.pid),
                        "-o",
                        str(args.py_spy),
                        "--nonblocking",
                        "--gil",
                        "--format",
                        "raw" if args.py_spy.suffix == ".txt" else "flamegraph",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            for n in counts:
                run = run_loop(load(port, token, tss, ids[:n], args.seconds, args.warmup, proc.pid))
                runs.append({"clients": n, **run})
        finally:
            if spy is not None:
                spy.send_signal(2)
                spy.wait(timeout=60)
            proc.terminate()
            proc.wait(timeout=30)
    result: dict[str, Any] = {
        "benchmark": "http",
        "store": "sqlite",
        "cpus": os.cpu_count(),
        "runs": runs,
        "raw_sign_per_s": raw_sign_rate(),
    }
    if not args.no_engine:
        result["engine_finished_tx_per_s"] = engine_rate(max(counts))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
