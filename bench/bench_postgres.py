"""PostgreSQL benchmark: finished transactions/s for 1 and 2 processes, many TSEs and
one hot TSE, beside the raw signing rate.

A finished transaction is Start + Finish: two signatures, two ``run_locked``
commits (``synchronous_commit = on``). Each process opens its own PostgresStore and
TSEService on the same database, like API nodes do; threads in each process drive
start/finish pairs. "many": every thread has its own TSE (they run in parallel);
"hot": every thread of every process signs for ONE TSE (serialised by its row
lock, so this is the per-TSE ceiling). Afterwards every TSE's stored counters are
checked for gaps. Prints one JSON object; runs in a throw-away schema.

    .venv/bin/python bench/bench_postgres.py [--seconds 3] [--threads 4] [--processes 1,2]
        [--database postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import threading
import time
from typing import Any

from opentse.crypto import keys
from opentse.engine.keyring import Keyring
from opentse.engine.service import TSEService
from opentse.engine.state import TSEState
from opentse.storage.pg_testing import server_url, temporary_schema
from opentse.storage.postgres import PostgresStore
from opentse.testing import TEST_SECRET, SystemClock, ready_tse
from opentse.testing.store_conformance import append_and_save, make_record

PROCESS_DATA = b"Beleg^21.42_0.00_0.00_0.00_0.00^21.42:Unbar"
CLIENT = "C0"


def raw_rate(curve: str, seconds: float) -> float:
    """Plain ECDSA signatures/s of one core: the ceiling without any storage."""
    signer = keys.PlainSigner(keys.generate_private_key(curve), keys.default_algorithm(curve))
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            signer.sign(b"x" * 200)
        n += 50
    return n / (time.perf_counter() - start)


def store_rate(url: str, batch: int, threads: int, seconds: float) -> dict[str, Any]:
    """run_locked/s on ONE hot TSE (one log + state per call, no signing): what group
    commit buys when the commit, not the CPU, is the limit."""
    store = PostgresStore(url, pool_max=threads + 2, apply_migrations=False, max_batch=batch)
    tse_id = f"store-{batch}"
    store.create_tse(make_record(tse_id), TSEState(tse_id))
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        while time.perf_counter() < stop:
            append_and_save(store, tse_id, 1)
            done[i] += 1

    before = store.stats
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    after = store.stats
    store.close()
    commits = max(1, after["commits"] - before["commits"])
    return {
        "max_batch": batch,
        "threads": threads,
        "run_locked_per_s": round(sum(done) / seconds, 1),
        "calls_per_commit": round((after["requests"] - before["requests"]) / commits, 1),
    }


def _node(
    url: str, tse_ids: list[str], ready: Any, go: Any, seconds: float, batch: int, out: Any
) -> None:
    """One 'API node': its own store and service, one thread per entry of tse_ids.
    Reports ready after warming up, starts when every node is ready."""
    store = PostgresStore(url, pool_max=len(tse_ids) + 2, apply_migrations=False, max_batch=batch)
    service = TSEService(store, Keyring(TEST_SECRET), SystemClock())
    for tse_id in set(tse_ids):  # warm the key cache and the connections
        r = service.start_transaction(tse_id, CLIENT, b"", "")
        service.finish_transaction(
            tse_id, CLIENT, r.transaction_number, PROCESS_DATA, "Kassenbeleg-V1"
        )
    counts = [0] * len(tse_ids)
    latencies: list[list[float]] = [[] for _ in tse_ids]
    before = store.stats
    ready.put(True)
    go.wait()
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        tse_id = tse_ids[i]
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            r = service.start_transaction(tse_id, CLIENT, b"", "")
            service.finish_transaction(
                tse_id, CLIENT, r.transaction_number, PROCESS_DATA, "Kassenbeleg-V1"
            )
            latencies[i].append(time.perf_counter() - t0)
            counts[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(tse_ids))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = store.stats
    store.close()
    stats = {k: after[k] - before[k] for k in after}
    flat = sorted(x for xs in latencies for x in xs)
    out.put({"transactions": sum(counts), "latencies": flat, "stats": stats})


def run(
    url: str,
    processes: int,
    threads: int,
    tse_ids: list[list[str]],
    seconds: float,
    batch: int,
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_node, args=(url, tse_ids[p], ready, go, seconds, batch, out))
        for p in range(processes)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=300)
    go.set()
    results = [out.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join()
    total = sum(r["transactions"] for r in results)
    lat = sorted(x for r in results for x in r["latencies"])
    parsed = sum(r["stats"]["state_parsed"] for r in results)
    commits = sum(r["stats"]["commits"] for r in results)
    requests = sum(r["stats"]["requests"] for r in results)

    def pct(q: float) -> float:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 2) if lat else 0.0

    return {
        "processes": processes,
        "threads_per_process": threads,
        "max_batch": batch,
        "transactions": total,
        "tx_per_s": round(total / seconds, 1),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "calls_per_commit": round(requests / max(1, commits), 2),
        "state_parse_ratio": round(parsed / max(1, requests), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--curve", default="P-256")
    parser.add_argument(
        "--max-batch", default="64,1", help="group commit sizes to compare (1 = off)"
    )
    parser.add_argument("--database", default=os.environ.get("OPENTSE_TEST_DATABASE"))
    args = parser.parse_args()
    base = server_url(args.database)
    if base is None:
        raise SystemExit("no PostgreSQL reachable (pass --database postgresql://...)")
    counts = [int(p) for p in args.processes.split(",")]
    batches = [int(b) for b in args.max_batch.split(",")]
    raw = raw_rate(args.curve, min(args.seconds, 2.0))
    runs: list[dict[str, Any]] = []
    store_only: list[dict[str, Any]] = []
    with temporary_schema(base, prefix="opentse_bench_") as url:
        store = PostgresStore(url)
        service = TSEService(store, Keyring(TEST_SECRET), SystemClock())
        try:
            ready_tse(service, "hot", curve=args.curve, client_id=CLIENT, logout=True)
            for procs in counts:
                many = [
                    [f"many-{procs}-{p}-{t}" for t in range(args.threads)] for p in range(procs)
                ]
                for ids in many:
                    for tse_id in ids:
                        ready_tse(service, tse_id, curve=args.curve, client_id=CLIENT, logout=True)
                hot = [["hot"] * args.threads for _ in range(procs)]
                for batch in batches:
                    result = run(url, procs, args.threads, many, args.seconds, batch)
                    runs.append({"scenario": "many TSEs", **result})
                    result = run(url, procs, args.threads, hot, args.seconds, batch)
                    runs.append({"scenario": "one hot TSE", **result})
            for batch in batches:
                store_only.append(store_rate(url, batch, 2 * args.threads, args.seconds))
            gapless = all(
                store.count_logs(r.tse_id) == store.get_state(r.tse_id).signature_counter
                and [log.signature_counter for log in store.iter_logs(r.tse_id)]
                == list(range(1, store.count_logs(r.tse_id) + 1))
                for r in store.list_tses()
            )
        finally:
            store.close()
    print(
        json.dumps(
            {
                "benchmark": "postgres",
                "curve": args.curve,
                "cpus": os.cpu_count(),
                "raw_signatures_per_s": round(raw, 1),
                "half_raw_tx_per_s": round(raw / 2, 1),
                "runs": runs,
                "store_only_hot_tse": store_only,
                "counters_gapless": gapless,
                "note": "every run_locked commits durably (synchronous_commit=on); a hot "
                "TSE is serialised by its row lock across all processes",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
