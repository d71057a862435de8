"""The floor under the SQLite store: what the engine reaches with the least store.

Issue 2's target (finished transactions at 0.6 of half the raw signing rate) has not
been reached by the real store (``TSEService`` + ``SQLiteStore``); this asks whether
any store of the same design could reach it. The engine step (checks, counters, the
DER log, its signature) runs on the event loop for asyncio registers, as the HTTP
server's registers are run, and a committer thread writes each batch the way the real
store does (one multi-row INSERT through the schema's counter trigger and indexes, the
state row, COMMIT with WAL and synchronous=FULL) and only then resolves the callers'
futures. Nothing else: no idempotency refs, no reads through batches, no conflict
epochs, no second process. ``--no-sql`` replaces the SQL by a 0.3 ms sleep (an fsync
here), the floor of the hand-offs alone.

Not a store: it skips every guarantee the real one keeps but the counters. It only
measures. Prints JSON.

    .venv/bin/python bench/bench_store_floor.py --tasks 16,64 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_engine import PROCESS_DATA, engine_rate, raw_rate, run_loop

from opentse.engine import tse
from opentse.engine.keyring import Keyring
from opentse.engine.service import TSEService
from opentse.engine.signing import evolve
from opentse.storage.rows import LOG_COLUMNS, log_params, state_to_json
from opentse.storage.sqlite import SQLiteStore
from opentse.testing import TEST_SECRET, SystemClock, ready_tse

ROW = "(?,?,?,?,?,?,?,?,?,?,?)"


def floor_rate(path: Path, tasks: int, seconds: float, sql: bool) -> dict[str, Any]:
    """Finished transactions/s of ``tasks`` asyncio registers on the least store."""
    setup = SQLiteStore(path)
    service = TSEService(setup, Keyring(TEST_SECRET), SystemClock())
    tse_id = f"floor-{tasks}-{int(sql)}"
    ready_tse(service, tse_id, curve="P-256", client_id="C0", logout=True)
    ctx = service.context(tse_id)
    box: dict[str, Any] = {"state": evolve(setup.get_state(tse_id), time_set=True)}
    setup.close()
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    insert = f"INSERT INTO logs ({LOG_COLUMNS}) VALUES "
    pending: list[tuple[tuple[Any, ...], asyncio.Future[None] | None]] = []
    lock = threading.Lock()
    wake = threading.Event()
    stats = {"commits": 0, "rows": 0}
    stop = threading.Event()

    def resolve(batch: list[tuple[tuple[Any, ...], asyncio.Future[None] | None]]) -> None:
        for _, future in batch:
            if future is not None:
                future.set_result(None)

    def committer(loop: asyncio.AbstractEventLoop) -> None:
        while not stop.is_set():
            wake.wait(0.1)
            wake.clear()
            with lock:
                batch = pending[:]
                pending.clear()
            if not batch:
                continue
            if sql:
                flat = [value for params, _ in batch for value in params]
                con.execute("BEGIN IMMEDIATE")
                con.execute(insert + ",".join([ROW] * len(batch)), flat)
                con.execute(
                    "UPDATE tse_states SET state = ?, version = version + 1 WHERE tse_id = ?",
                    (state_to_json(box["state"]), tse_id),
                )
                con.execute("COMMIT")
            else:
                time.sleep(0.0003)
            stats["commits"] += 1
            stats["rows"] += len(batch)
            loop.call_soon_threadsafe(resolve, batch)

    async def step(operation: str, number: int = 0) -> int:
        now = int(time.time())
        if operation == "start":
            out: Any = tse.start_transaction(ctx, box["state"], now, "C0", b"", "")
        else:
            out = tse.finish_transaction(
                ctx, box["state"], now, "C0", number, PROCESS_DATA, "Kassenbeleg-V1"
            )
        box["state"] = out.state
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        rows = [log_params(log) for log in out.logs]
        with lock:
            pending.extend((params, None) for params in rows[:-1])
            pending.append((rows[-1], future))
        wake.set()
        await future
        return int(out.result.transaction_number)

    latencies: list[float] = []

    async def register(until: float) -> None:
        while time.perf_counter() < until:
            began = time.perf_counter()
            number = await step("start")
            await step("finish", number)
            latencies.append(time.perf_counter() - began)

    async def drive() -> None:
        thread = threading.Thread(target=committer, args=(asyncio.get_running_loop(),))
        thread.start()
        try:
            until = time.perf_counter() + seconds
            await asyncio.gather(*(register(until) for _ in range(tasks)))
        finally:
            stop.set()
            wake.set()
            thread.join()

    start, cpu = time.perf_counter(), time.process_time()
    run_loop(drive())
    elapsed, cpu_used = time.perf_counter() - start, time.process_time() - cpu
    con.close()
    done = sorted(latencies)
    n = max(1, len(done))
    return {
        "asyncio_tasks": tasks,
        "sql": sql,
        "transactions": len(done),
        "tx_per_s": round(len(done) / elapsed, 1),
        "cpu_us_per_tx": round(cpu_used / n * 1e6, 1),
        "rows_per_commit": round(stats["rows"] / max(1, stats["commits"]), 1),
        "latency_ms_p99": round(done[min(n - 1, n * 99 // 100)] * 1000, 2) if done else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="16,64")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--no-sql", action="store_true", help="a 0.3 ms sleep instead of SQL")
    args = parser.parse_args()
    raw, _ = raw_rate("P-256", args.seconds)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "floor.db"
        store = SQLiteStore(path)
        service = TSEService(store, Keyring(TEST_SECRET), SystemClock())
        ready_tse(service, "engine", curve="P-256", client_id="C0", logout=True)
        engine_only = engine_rate(service, "engine", args.seconds)
        store.close()
        for tasks in (int(t) for t in args.tasks.split(",") if t):
            run = floor_rate(path, tasks, args.seconds, sql=not args.no_sql)
            run["ratio_vs_half_raw"] = round(run["tx_per_s"] / (raw / 2), 3)
            runs.append(run)
    print(
        json.dumps(
            {
                "benchmark": "store_floor",
                "raw_signatures_per_s": round(raw, 1),
                "half_raw": round(raw / 2, 1),
                "engine_only_ratio_vs_half_raw": round(engine_only / (raw / 2), 3),
                "target_ratio": 0.6,
                "runs": runs,
                "load_average": os.getloadavg()[0],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
