"""Micro benchmark of SQLiteStore: durable appends per second (one log + state save
per run_locked, synchronous=FULL) with 1 and 16 threads, and streaming reads.

usage: python bench/bench_store.py [--seconds 2] [--dir DIR]   -> JSON on stdout
With 16 threads group commit lets many run_locked calls share one fsync.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from opentse.engine.ports import LockedTSE, StoredLog, TSERecord
from opentse.engine.state import TSEState
from opentse.storage.sqlite import SQLiteStore
from opentse.tr03151.oids import LogType


def _record(tse_id: str) -> TSERecord:
    serial = tse_id.encode().ljust(32, b"\0")
    return TSERecord(
        tse_id,
        serial,
        "P-256",
        "ecdsa-plain-SHA256",
        "unixTime",
        b"\x04" * 65,
        b"key",
        (b"cert",),
        0,
    )


def _append_one(store: SQLiteStore, tse_id: str) -> int:
    def fn(locked: LockedTSE) -> int:
        state = locked.load()
        counter = state.signature_counter + 1
        log = StoredLog(
            tse_id,
            counter,
            LogType.TRANSACTION,
            "FinishTransaction",
            1_700_000_000,
            f"Unixt_1700000000_Sig-{counter}_Log-Tra.log",
            b"\x30" * 400,
            counter,
            "ERS 1",
            f"tx:{counter}",
        )
        locked.append([log])
        state.signature_counter = counter
        locked.save(state)
        return counter

    return store.run_locked(tse_id, fn)


def _run(store: SQLiteStore, threads: int, seconds: float, tse_id: str) -> dict[str, Any]:
    store.create_tse(_record(tse_id), TSEState(tse_id))
    before = store.stats
    done = [0] * threads
    stop = time.monotonic() + seconds

    def worker(index: int) -> None:
        while time.monotonic() < stop:
            _append_one(store, tse_id)
            done[index] += 1

    started = time.monotonic()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - started
    after = store.stats
    commits = after["commits"] - before["commits"]
    return {
        "threads": threads,
        "appends": sum(done),
        "appends_per_s": round(sum(done) / elapsed, 1),
        "commits": commits,
        "appends_per_commit": round(sum(done) / max(commits, 1), 2),
    }


def _fsync_ms(folder: str) -> float:
    """One fsync on this disk right now: the floor under every durable commit."""
    with tempfile.NamedTemporaryFile(dir=folder) as fh:
        started = time.perf_counter()
        for _ in range(20):
            fh.write(b"x" * 100)
            fh.flush()
            os.fsync(fh.fileno())
        return (time.perf_counter() - started) / 20 * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--dir", default=None, help="where the database goes (default: tmp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        fsync_before = _fsync_ms(folder)
        store = SQLiteStore(Path(folder) / "bench.db")
        try:
            one = _run(store, 1, args.seconds, "one")
            sixteen = _run(store, 16, args.seconds, "sixteen")
            started = time.monotonic()
            streamed = sum(1 for _ in store.iter_logs("sixteen"))
            read_s = time.monotonic() - started
        finally:
            store.close()
        fsync_after = _fsync_ms(folder)
    print(
        json.dumps(
            {
                "benchmark": "sqlite_store",
                "durability": "WAL, synchronous=FULL",
                "append_1_thread": one,
                "append_16_threads": sixteen,
                "iter_logs_per_s": round(streamed / max(read_s, 1e-9), 1),
                "fsync_ms_before_after": [round(fsync_before, 2), round(fsync_after, 2)],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
