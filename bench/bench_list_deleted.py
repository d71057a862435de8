"""Time the API's transaction list (a page and its count) on a TSE whose logs were
mostly deleted after an export (deleteStoredData), SQLite.

The index (svc_transactions) and deleted_refs are written directly, as the service
and deleteStoredData leave them: ``--tx`` transactions of one TSS, all but ``--kept``
of them with their latest log deleted. Then ``ServiceStore.list_txs`` is asked for
the first page of the organization's list and of the TSS's, ``--rounds`` times each,
and the median per request printed. Run it on the code of a commit with
``PYTHONPATH=<checkout>/src`` to compare (before migration 0014 the lists filtered
with a NOT EXISTS over deleted_refs per row).

    .venv/bin/python bench/bench_list_deleted.py --tx 200000 --kept 2000
"""

from __future__ import annotations

import argparse
import inspect
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from opentse.server.service_store import Page, ServiceStore
from opentse.storage import migrations

ORG, TSS = "org-1", "tss-1"


def build(db: Path, count: int, kept: int) -> None:
    with sqlite3.connect(db, isolation_level=None) as conn:
        migrations.apply(conn, "sqlite")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO svc_transactions(tss_id, tx_id, organization_id, number, client_id,"
            " latest_revision, state, time_start, time_end) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                (TSS, f"{n:08d}-0000-4000-8000-000000000000", ORG, n, "c", 2, "FINISHED", n, n)
                for n in range(1, count + 1)
            ),
        )
        conn.executemany(
            "INSERT INTO deleted_refs(tse_id, ref, signature_counter) VALUES (?,?,?)",
            (
                (TSS, f"tx:{n:08d}-0000-4000-8000-000000000000:{rev}", 2 * n + rev)
                for n in range(1, count - kept + 1)
                for rev in (1, 2)
            ),
        )
        columns = {str(r[1]) for r in conn.execute("PRAGMA table_info(svc_transactions)")}
        if "log_deleted" in columns:  # what deleteStoredData sets since migration 0014
            conn.execute(
                "UPDATE svc_transactions SET log_deleted = 1 WHERE EXISTS (SELECT 1 FROM"
                " deleted_refs d WHERE d.tse_id = svc_transactions.tss_id AND d.ref ="
                " 'tx:' || svc_transactions.tx_id || ':' || svc_transactions.latest_revision)"
            )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tx", type=int, default=200_000)
    parser.add_argument("--kept", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "opentse.db"
        build(db, args.tx, args.kept)
        svc = ServiceStore(db)
        params = inspect.signature(svc.list_txs).parameters
        flag: dict[str, Any] = {"listed": True} if "listed" in params else {"with_log": True}
        try:
            for tss_id in (None, TSS):
                times = []
                for _ in range(args.rounds):
                    began = time.perf_counter()
                    rows, total = svc.list_txs(ORG, Page(limit=100), tss_id, **flag)
                    times.append(time.perf_counter() - began)
                assert (len(rows), total) == (min(100, args.kept), args.kept), (len(rows), total)
                what = "all TSS" if tss_id is None else "one TSS"
                print(
                    f"{what}: {args.tx} transactions, {args.tx - args.kept} deleted:"
                    f" median {statistics.median(times) * 1000:.1f} ms per list request"
                    f" (page of 100 and count, {args.rounds} rounds)"
                )
        finally:
            svc.close()


if __name__ == "__main__":
    main()
