"""Seconds of the dashboard's amount search typed without a sign (2,50 finds 2,50 and
-2,50) on a shop's year in the transaction index: the first and the last page, and
the last page as the search made it before (every hit up to the page from each sign,
merged in Python). tests/dashboard/test_dashboard_search_scale.py asserts the work
(statements, rows handed to Python, query plans); the seconds are measured here.

usage: python bench/bench_dashboard_search.py [--rows 100000] [--runs 5]  -> JSON on stdout
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from opentse.dashboard import transactions
from opentse.dashboard.transactions import TxQuery
from opentse.server.service_store import Page, ServiceStore, TxRow

ORG = "bench-org"
TSES = [("tss-a", "client-a"), ("tss-b", "client-b")]
PRICES = [250, 120, 380, 99, 450, 1230, 2142, 75, 510, 1999, *range(300, 9000, 37)]


def fill(store: ServiceStore, count: int) -> None:
    """``count`` finished receipts over a year on two TSEs selling in the same second,
    the prices Zipf-like (2,50 the most sold), about 3% of them cancelled (negative)."""
    rnd = random.Random(7)
    weights = [1 / (i + 1) for i in range(len(PRICES))]
    step = 365 * 86400 / count
    rows = []
    for i in range(count):
        tss, client = TSES[i % 2]
        cents = rnd.choices(PRICES, weights)[0] * (-1 if rnd.random() < 0.03 else 1)
        t = 1_704_067_200 + int(i // 2 * 2 * step)
        rows.append(
            TxRow(tss, f"tx-{i:08d}", ORG, 10_000_000 + i // 2, client, 2, "FINISHED",
                  "Kassenbeleg-V1", t, t + 5, {}, cents)
        )  # fmt: skip
    with store._tx(durable=False) as c:
        c.executemany(store._UPSERT_SQL, [store._upsert_params(r) for r in rows])


def old_page(store: ServiceStore, cents: int, offset: int) -> list[TxRow]:
    """The page as it was made before: each sign's hits up to it, merged here."""
    first = Page(limit=offset + transactions.SEARCH_LIMIT, order_by="time_start", order="desc")
    plus, _ = store.list_txs(ORG, first, amount_cents=cents)
    minus, _ = store.list_txs(ORG, first, amount_cents=-cents)
    merged = sorted(plus + minus, key=lambda r: (r.time_start, r.number), reverse=True)
    return merged[offset : offset + transactions.SEARCH_LIMIT]


def best(runs: int, action: Any) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = ServiceStore(Path(folder) / "svc.db")
        try:
            fill(store, args.rows)
            ctx = SimpleNamespace(svc=store)  # what either_sign_page reads of the context
            q = TxQuery(amount=Decimal("2.50"), either_sign=True)
            _, total = transactions.either_sign_page(ctx, ORG, q, 250, None, 0)
            last = (total - 1) // transactions.SEARCH_LIMIT * transactions.SEARCH_LIMIT

            def page(offset: int) -> Any:
                return lambda: transactions.either_sign_page(ctx, ORG, q, 250, None, offset)

            result = {
                "rows": args.rows,
                "hits": total,
                "last_offset": last,
                "first_page_s": best(args.runs, page(0)),
                "last_page_s": best(args.runs, page(last)),
                "last_page_old_merge_s": best(args.runs, lambda: old_page(store, 250, last)),
            }
        finally:
            store.close()
    result["old_over_new"] = result["last_page_old_merge_s"] / result["last_page_s"]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
