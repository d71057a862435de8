"""A shop's year for the dashboard's scale tests: two TSEs and ~100,000 transactions
in the API's transaction index, written through the real ``ServiceStore`` (the search
reads the index, never the logs of these rows), with the amounts of a bakery: a few
prices sold very often, some cancellations (negative) of them."""

from __future__ import annotations

import itertools
import random
from typing import Any

from opentse.server.service_store import TxRow

YEAR_START = 1_704_067_200  # 2024-01-01 00:00 UTC
#: the prices of the shop, the first the most often sold (a Zipf-like share)
PRICES = [250, 120, 380, 99, 450, 1230, 2142, 75, 510, 1999, *range(300, 9000, 37)]


def index_year(
    ctx: Any, org: str, tss_clients: list[tuple[str, str]], count: int, seed: int = 7
) -> None:
    """``count`` FINISHED receipts over 365 days, alternating between the TSEs of
    ``tss_clients`` ((tss_id, client_id)); numbers go on from 10,000,000 per TSE.
    About 3% are cancellations (the negative amount of a price). The two registers
    sell in the same second, with the same number (each TSE counts its own): hits
    that only the search's last tie-breaks order."""
    rows: list[TxRow] = []
    rnd = random.Random(seed)
    cumulative = list(itertools.accumulate(1 / (i + 1) for i in range(len(PRICES))))
    numbers = {tss: 10_000_000 for tss, _ in tss_clients}
    step = 365 * 86400 / count
    for i in range(count):
        tss, cid = tss_clients[i % len(tss_clients)]
        numbers[tss] += 1
        t = YEAR_START + int(i // 2 * 2 * step)  # both registers in the same second
        cents = rnd.choices(PRICES, cum_weights=cumulative)[0]
        if rnd.random() < 0.03:
            cents = -cents
        rows.append(
            TxRow(
                tss,
                f"{seed:08x}-0000-4000-8000-{i:012x}",
                org,
                numbers[tss],
                cid,
                2,
                "FINISHED",
                "Kassenbeleg-V1",
                t,
                t + 5,
                {},
                cents,
            )
        )
    write_rows(ctx, rows)


def write_rows(ctx: Any, rows: list[TxRow]) -> None:
    """Index rows as ``ServiceStore.upsert_tx``'s writer stores them (its statement),
    in one transaction (a few seconds for 100,000 rows; one upsert_tx each took 14)."""
    svc = ctx.svc
    with svc._tx(durable=False) as c:
        c.executemany(svc._UPSERT_SQL, [svc._upsert_params(r) for r in rows])
