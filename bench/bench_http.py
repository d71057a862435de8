"""HTTP benchmark: finished transactions/s and latency through ``opentse serve``.

Starts a real server process on a free loopback port with a temporary data folder
(SQLite store), sets up one TSS with one client per worker, then runs N concurrent
POS workers (httpx async), each doing what a register does per receipt: PUT revision
1 (ACTIVE, Start log) and PUT revision 2 (FINISHED with a standard_v1 receipt,
Finish log). Beside it, the raw signing rate of the TSE key (ECDSA P-256 plain) in
this process. Prints JSON.

    .venv/bin/python bench/bench_http.py --clients 16 --seconds 10
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
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


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


async def worker(
    client: httpx.AsyncClient,
    tss: str,
    cid: str,
    stop: float,
    req_lat: list[float],
    tx_lat: list[float],
) -> int:
    done = 0
    finish = {
        "state": "FINISHED",
        "client_id": cid,
        "schema": {"standard_v1": {"receipt": RECEIPT}},
    }
    while time.perf_counter() < stop:
        tx = str(uuid.uuid4())
        t0 = time.perf_counter()
        r1 = await client.put(
            f"/tss/{tss}/tx/{tx}",
            params={"tx_revision": 1},
            json={"state": "ACTIVE", "client_id": cid},
        )
        t1 = time.perf_counter()
        r2 = await client.put(f"/tss/{tss}/tx/{tx}", params={"tx_revision": 2}, json=finish)
        t2 = time.perf_counter()
        if r1.status_code != 200 or r2.status_code != 200:
            raise RuntimeError(f"request failed: {r1.status_code} {r2.status_code} {r2.text}")
        req_lat.extend((t1 - t0, t2 - t1))
        tx_lat.append(t2 - t0)
        done += 1
    return done


async def load(
    base: str, headers: dict[str, str], tss: str, ids: list[str], seconds: float, warmup: float
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=len(ids) + 4, max_keepalive_connections=len(ids) + 4)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=60, limits=limits
    ) as client:
        scratch: list[float] = []
        await asyncio.gather(
            *(worker(client, tss, cid, time.perf_counter() + warmup, scratch, []) for cid in ids)
        )
        req_lat: list[float] = []
        tx_lat: list[float] = []
        t0 = time.perf_counter()
        counts = await asyncio.gather(
            *(worker(client, tss, cid, t0 + seconds, req_lat, tx_lat) for cid in ids)
        )
        elapsed = time.perf_counter() - t0
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
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent POS workers")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--data", type=Path, default=None, help="data folder (default: a temp dir)")
    args = parser.parse_args()
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
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("server did not start")
                time.sleep(0.1)
            headers, tss, ids = setup(base, key, args.clients)
            server_cpu0, client_cpu0 = process_cpu(proc.pid), time.process_time()
            result = asyncio.run(load(base, headers, tss, ids, args.seconds, args.warmup))
            result["server_cpu_s"] = round(process_cpu(proc.pid) - server_cpu0, 2)
            result["client_cpu_s"] = round(time.process_time() - client_cpu0, 2)
            result["load_average"] = os.getloadavg()[0]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    result = {
        "benchmark": "http",
        "store": "sqlite",
        "clients": args.clients,
        "cpus": os.cpu_count(),
        **result,
        "engine_finished_tx_per_s": engine_rate(args.clients),
        "raw_sign_per_s": raw_sign_rate(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
