"""Seconds of the first view of a TSE's dashboard page (its first 50 system logs and
its exportData logs, read once and then kept): a TSE with N logs, one system log
(updateTime) per 1,000 transaction logs, read by a fresh ``ExportLogs`` with and
without the partial index of system logs (migration 0013). SQLite, warm page cache,
best of ``--runs``. tests/dashboard/test_dashboard_tse_page_index.py asserts the
plan and the rows read; the seconds are measured here.

usage: python bench/bench_dashboard_tse_page.py [--logs 100000 1000000] [--runs 3]
       -> JSON on stdout
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from opentse.dashboard.tse_exports import ExportLogs
from opentse.engine.ports import LockedTSE, StoredLog
from opentse.installation import Installation
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.testing.serving import serving_in_thread
from opentse.tr03151.oids import LogType

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "dashboard"))
from dashboard_support import api_login, setup_tss

BATCH = 20_000
MESSAGE = b"\x30\x82\x01\x2c" + bytes(300)  # the size of a real log message


def fill(inst: Installation, tss: str, count: int) -> None:
    """``count`` more logs: every 1,000th an updateTime system log, the others
    FinishTransaction logs, written through the store as the engine writes them."""
    now = int(time.time())

    def log(n: int) -> StoredLog:
        if n % 1000 == 0:
            return StoredLog(tss, n, LogType.SYSTEM, "updateTime", now,
                             f"Unixt_{now}_Sig-{n}_Log-Sys_updateTime.log", MESSAGE)  # fmt: skip
        return StoredLog(tss, n, LogType.TRANSACTION, "FinishTransaction", now,
                         f"Unixt_{now}_Sig-{n}_Log-Tra_No-{n}_Finish_Client-K1.log", MESSAGE,
                         n, "KASSE-1")  # fmt: skip

    def batch(locked: LockedTSE) -> None:
        state = locked.load()
        first = state.signature_counter + 1
        locked.append([log(n) for n in range(first, first + BATCH)])
        state.signature_counter = first + BATCH - 1
        locked.save(state)

    for _ in range(count // BATCH):
        inst.store.run_locked(tss, batch)


def first_view(inst: Installation, tss: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        logs = ExportLogs()  # nothing kept: the first view
        logs.first(inst.service, tss)
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data"
        inst = Installation.open(data)
        app = create_app(inst, ServerConfig(data_dir=data))
        ctx = app.state.ctx
        try:
            with serving_in_thread(app) as base, httpx.Client(base_url=base, timeout=60) as api:
                key = create_api_key(ctx.svc, org_name="bench", env="TEST", now=ctx.now())
                tss, _ = setup_tss(api, api_login(api, key), "KASSE-1")
            done = 0
            store_file = inst.store._path  # type: ignore[attr-defined]
            for count in sorted(args.logs):
                fill(inst, tss, count - done)
                done = count
                with_index = first_view(inst, tss, args.runs)
                with sqlite3.connect(store_file) as conn:
                    sql = conn.execute(
                        "SELECT sql FROM sqlite_master WHERE name = 'logs_system'"
                    ).fetchone()[0]
                    conn.execute("DROP INDEX logs_system")
                try:
                    without = first_view(inst, tss, args.runs)
                finally:
                    with sqlite3.connect(store_file) as conn:
                        conn.execute(sql)
                results.append(
                    {"logs": count, "without_index_s": round(without, 4),
                     "with_index_s": round(with_index, 4)}
                )  # fmt: skip
        finally:
            inst.close()
    json.dump(results, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
