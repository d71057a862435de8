"""Amounts of index rows written before the index had them (migrations 0007-0009),
taken from their Finish logs by the amount search, and the rows whose amount could
not be taken (migration 0012's ``amount_unread``).

Each amount search first reads the Finish logs of at most ``SEARCH_SCAN`` finished
Kassenbeleg-V1 rows without an amount (newest first) and of as many cash-book
entries 0009 listed (in key order), and stores their amounts. A row whose log was
read and gave none is marked with why (``UNREADABLE``, ``GONE``, ``NO_AMOUNT``)
instead of staying in the batch: before, such rows were read again at every search,
and 5,000 of them at the head of the batch kept every other row from its amount. So
every row read leaves the batch, and the search says how many cannot be found by
amount (``unread_counts``); "read them again" (``read_again``) clears the marks, for
a store restored from a backup. Only a failing store (StorageError: the database
unavailable) leaves the rows as they were, to be read at the next search.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

from opentse.errors import OpenTSEError, StorageError
from opentse.server.service_store import TxRow

logger = logging.getLogger(__name__)

# finished receipts from before migration 0007 whose amount one amount search
# backfills from their Finish logs (never a limit on what a search finds)
SEARCH_SCAN = 5000

UNREADABLE = "unreadable"  # the stored log does not decode
GONE = "gone"  # no log any more (deleted after an export)
NO_AMOUNT = "no_amount"  # a Kassenbeleg-V1 whose processData has no readable total
REASONS = (UNREADABLE, GONE, NO_AMOUNT)

#: the receipts still to backfill, newest first; the literal conditions are those of
#: the partial index ``svc_transactions_amount_todo`` (migration 0012)
RECEIPTS_TODO = (
    "organization_id = ? AND amount_cents IS NULL AND amount_unread IS NULL"
    " AND state = 'FINISHED' AND process_type = 'Kassenbeleg-V1'"
)

#: the listed cash-book entries of one organization. Read from the short list, each
#: checked by its key: as a join the database walked all the organization's index
#: rows to find an empty list's none (0.07 s per amount search at 100,000 rows)
CASH_BOOK_TODO = (
    "SELECT b.tss_id, b.tx_id FROM svc_amount_backfill b WHERE EXISTS (SELECT 1 FROM"
    " svc_transactions t WHERE t.tss_id = b.tss_id AND t.tx_id = b.tx_id"
    " AND t.organization_id = ?)"
)


#: a row's amount or its mark, once: a row a concurrent search filled is left alone
SET_AMOUNT = (
    "UPDATE svc_transactions SET amount_cents = ?, amount_unread = ?"
    " WHERE tss_id = ? AND tx_id = ? AND state = 'FINISHED' AND amount_cents IS NULL"
)


def _read(ctx: Any, row: TxRow) -> tuple[int | None, str | None]:
    """(cents, None) or (None, why not); raises StorageError (the store is failing
    now: the row stays as it is)."""
    from opentse.dashboard.transactions import read_result
    from opentse.server.tx_index import amount_cents

    try:
        result = read_result(ctx, row)
    except StorageError:
        raise
    except OpenTSEError as exc:
        return None, GONE if exc.code == "E_REF_DELETED" else UNREADABLE
    if result is None:
        return None, GONE
    cents = amount_cents(row.state, result.process_type, result.process_data)
    return cents, None if cents is not None else NO_AMOUNT


def backfill_amounts(ctx: Any, org: str, tss_id: str | None) -> int:
    """Give index rows written before migration 0007 their amount, from their Finish
    logs: at most SEARCH_SCAN finished receipts per call, newest first, and as many
    cash-book entries; returns how many got one. Every row read gets its amount or
    its mark, so each call moves on to rows no call read before."""
    from opentse.ops.store import OpsDB

    if getattr(ctx, "stale_schema", None) is not None:
        return 0  # a node older than its database writes nothing: search what is indexed
    svc = ctx.svc
    svc.flush()
    db = OpsDB(svc)
    where, args = RECEIPTS_TODO, [org]
    if tss_id is not None:
        where += " AND tss_id = ?"
        args.append(tss_id)
    rows = db.rows(
        f"SELECT {svc._TX_COLS} FROM svc_transactions WHERE {where}"
        " ORDER BY time_start DESC, tss_id DESC, tx_id DESC LIMIT ?",
        [*args, SEARCH_SCAN],
    )
    done: list[tuple[TxRow, int | None, str | None]] = []
    for r in rows:
        row = svc._txrow(r)
        try:
            cents, why = _read(ctx, row)
        except StorageError as exc:
            logger.warning("amounts not read now, the store is failing (%s)", exc.code)
            break
        done.append((row, cents, why))
    if done:
        with db.tx() as c:
            for row, cents, why in done:
                c.execute(
                    SET_AMOUNT,
                    (cents, why, row.tss_id, row.tx_id),
                )
    _log_marked(why for *_, why in done)
    filled = sum(1 for _, cents, _ in done if cents is not None)
    return filled + backfill_cash_book(ctx, org, tss_id)


def backfill_cash_book(ctx: Any, org: str, tss_id: str | None) -> int:
    """Give the cash-book entries migration 0009 listed (``svc_amount_backfill``:
    SonstigerVorgang rows indexed without an amount) theirs, at most SEARCH_SCAN per
    call in key order; returns how many got one. The amount (or the mark) and the
    removal of the key are one transaction: a crash leaves the key, and the entry is
    read again. An entry read without an amount in it (free text, "Kassenlade
    geöffnet") just leaves the list; one whose log does not decode or is gone is
    marked; only a failing store leaves the key for the next search."""
    from opentse.ops.store import OpsDB

    db = OpsDB(ctx.svc)
    sql = CASH_BOOK_TODO
    args: list[Any] = [org]
    if tss_id is not None:
        sql += " AND b.tss_id = ?"
        args.append(tss_id)
    todo = db.rows(sql + " ORDER BY b.tss_id, b.tx_id LIMIT ?", [*args, SEARCH_SCAN])
    done: list[tuple[str, str, int | None, str | None]] = []
    for tid, tx_id in todo:
        row = ctx.svc.get_tx(tid, tx_id)
        cents: int | None = None
        why: str | None = None
        if row is not None:
            try:
                cents, why = _read(ctx, row)
            except StorageError as exc:
                logger.warning("cash-book amounts not read now (%s)", exc.code)
                break  # the store is failing: the others would fail too
        done.append((tid, tx_id, cents, None if why == NO_AMOUNT else why))
    if not done:
        return 0
    _log_marked(why for *_, why in done)
    with db.tx() as c:
        for tid, tx_id, cents, why in done:
            if cents is not None or why is not None:
                c.execute(
                    SET_AMOUNT,
                    (cents, why, tid, tx_id),
                )
            c.execute(
                "DELETE FROM svc_amount_backfill WHERE tss_id = ? AND tx_id = ?", (tid, tx_id)
            )
    return sum(1 for *_, cents, _ in done if cents is not None)


def _log_marked(reasons: Iterable[str | None]) -> None:
    """One line per batch (not one per row: a damaged store has thousands)."""
    marked = Counter(why for why in reasons if why is not None)
    if marked:
        logger.warning(
            "amount search: %s finished transactions marked as not readable (%s)",
            sum(marked.values()),
            ", ".join(f"{why}: {n}" for why, n in sorted(marked.items())),
        )


def unread_counts(ctx: Any, org: str, tss_id: str | None = None) -> dict[str, int]:
    """How many of the organization's (or one TSE's) finished transactions are
    marked, by reason (only reasons with rows); read from the partial index of the
    marked rows, so a healthy shop's costs nothing."""
    from opentse.ops.store import OpsDB

    sql = (
        "SELECT amount_unread, count(*) FROM svc_transactions"
        " WHERE organization_id = ? AND amount_unread IS NOT NULL"
    )
    args: list[Any] = [org]
    if tss_id is not None:
        sql += " AND tss_id = ?"
        args.append(tss_id)
    rows = OpsDB(ctx.svc).rows(sql + " GROUP BY amount_unread", args)
    return {str(why): int(n) for why, n in rows if n}


def read_again(ctx: Any, org: str) -> int:
    """Clear the organization's marks (after the store was restored from a backup):
    the next amount search reads those logs again; cash-book entries go back on the
    0009 list. Returns how many were marked. One transaction."""
    from opentse.ops.store import OpsDB

    marked = "organization_id = ? AND amount_unread IS NOT NULL"
    with OpsDB(ctx.svc).tx() as c:
        c.execute(
            "INSERT INTO svc_amount_backfill (tss_id, tx_id) SELECT tss_id, tx_id"
            f" FROM svc_transactions WHERE {marked} AND process_type <> 'Kassenbeleg-V1'"
            " ON CONFLICT DO NOTHING",
            (org,),
        )
        cur = c.execute(f"UPDATE svc_transactions SET amount_unread = NULL WHERE {marked}", (org,))
        count = cur.rowcount
    return max(int(count or 0), 0)
