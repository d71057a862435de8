"""Transactions for the dashboard: the search (number, register, date, amount, state)
and what it shows of a hit. The fields as typed are read by ``search_fields``, one
transaction's page is ``tx_detail``'s.

The search is one query over the API's transaction index (service store): register,
date, state and amount are conditions of that query, however old the match (an
amount typed without a sign: two, merged by the database). The amount
(``tx_index.transaction_amount``) is the gross total of a finished Kassenbeleg-V1, or
the money a cash movement moved, kept in the index in cents (``amount_cents``,
migrations 0007-0009) when its FINISHED revision is indexed or rebuilt from the logs;
rows indexed before are backfilled by each amount search (``amounts``). Results come
a page of ``SEARCH_LIMIT`` at a time, with the total; the next and previous pages are
read from a cursor (``Cursor``: the neighbouring hit's key), not by OFFSET.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from opentse.dashboard.amounts import CASH_BOOK_TODO as CASH_BOOK_TODO  # re-exported
from opentse.dashboard.amounts import SEARCH_SCAN as SEARCH_SCAN
from opentse.dashboard.amounts import backfill_amounts as backfill_amounts
from opentse.dashboard.search_fields import ascii_digits
from opentse.dashboard.views import all_clients
from opentse.engine.results import SignResult
from opentse.errors import OpenTSEError
from opentse.server.service_store import TxRow

SEARCH_LIMIT = 50  # hits shown; more: the page asks to narrow the search


@dataclass(frozen=True, slots=True)
class TxQuery:
    tss_id: str | None = None
    number: int | None = None
    register: str = ""
    date_from: int | None = None  # unix, inclusive
    date_to: int | None = None  # unix, exclusive (start of the day after)
    amount: Decimal | None = None
    state: str = ""
    #: the amount was typed without a sign: it finds -amount too (a cancellation of
    #: that receipt, a payout of that much), as a shop owner remembers "12,30"
    either_sign: bool = False
    #: only the finished transactions whose amount could not be read from their log
    #: (migration 0012's marks), which an amount search cannot find
    unread: bool = False

    @property
    def empty(self) -> bool:
        return self == TxQuery()


@dataclass(frozen=True, slots=True)
class TxHit:
    row: TxRow
    tse_serial: str
    register: str
    amount: Decimal | None


def amount_of(result: SignResult | None) -> Decimal | None:
    """The amount shown for a transaction: the gross total of a Kassenbeleg-V1, or,
    for a cash movement, the money moved (``tx_index.transaction_amount``, the same
    rule as the index's amount the search looks up)."""
    if result is None:
        return None
    from opentse.server.tx_index import transaction_amount

    return transaction_amount(result.process_type, result.process_data)


def tx_ref(tx_id: str, revision: int) -> str:
    from opentse.server.tx_index import tx_ref as api_ref

    return api_ref(tx_id, revision)


def read_result(ctx: Any, row: TxRow) -> SignResult | None:
    """The result of the row's latest revision from its log; None: no such log (never
    signed here, or deleted after an export). Raises what the store raised when it
    could not read or decode the log now (StorageError, FormatError)."""
    result: SignResult | None = ctx.service.find_ref(
        row.tss_id, tx_ref(row.tx_id, row.latest_revision)
    )
    return result


def latest_result(ctx: Any, row: TxRow) -> SignResult | None:
    """``read_result``, None also when the log could not be read (a page shows the
    row without what its log holds)."""
    try:
        return read_result(ctx, row)
    except OpenTSEError:
        return None


@dataclass(frozen=True, slots=True)
class Cursor:
    """A hit's place in the search's one order: newest first; in one second the
    higher number, then (two TSEs) by TSE and transaction id. A "next" link names the
    last hit of its page (``after``), a "previous" one the first (``before``): the
    page is read from there along the index (keyset), not by stepping over every hit
    before it (OFFSET), and the link shows the same hits however many come later."""

    time_start: int
    number: int
    tss_id: str
    tx_id: str

    @staticmethod
    def of(row: TxRow) -> Cursor:
        return Cursor(row.time_start, row.number, row.tss_id, row.tx_id)

    def text(self) -> str:
        return f"{self.time_start}.{self.number}.{self.tss_id}.{self.tx_id}"

    @staticmethod
    def parse(text: str) -> Cursor | None:
        """The cursor of a link; None for anything else (an edited URL)."""
        parts = text.split(".", 3)
        if len(parts) != 4 or len(text) > 300 or not all(parts[2:]):
            return None
        if not text.isprintable():  # a NUL reaches PostgreSQL as an error, not a miss
            return None
        t, n = parts[0], parts[1]
        if not (ascii_digits(t) and ascii_digits(n) and int(t) < 2**63 and int(n) < 2**63):
            return None
        return Cursor(int(t), int(n), parts[2], parts[3])


@dataclass(frozen=True, slots=True)
class TxResults:
    """One page of a search: its hits, newest first, and how many matched in all."""

    hits: list[TxHit]
    total: int
    offset: int = 0  # of the first hit among all matches
    #: the page can be linked by its neighbours' cursors (an indexed search, not
    #: one by number, whose few hits are sorted here)
    keyset: bool = False

    @property
    def more(self) -> bool:
        return self.offset + len(self.hits) < self.total

    def after(self) -> str:
        """The "older" link's cursor: the last hit."""
        return Cursor.of(self.hits[-1].row).text() if self.hits else ""

    def before(self) -> str:
        """The "newer" link's cursor: the first hit."""
        return Cursor.of(self.hits[0].row).text() if self.hits else ""


def search(
    ctx: Any,
    org: str,
    q: TxQuery,
    offset: int = 0,
    *,
    after: Cursor | None = None,
    before: Cursor | None = None,
) -> TxResults:
    """The matching transactions, newest first (at most SEARCH_LIMIT), and their
    total: from ``offset`` on, or those just older than ``after`` or just newer than
    ``before`` (the cursors of the links to the next and previous page).

    Every filter is a condition of one index query, so a match is found however
    many newer transactions there are."""
    tss_ids = ctx.svc.list_tss_ids(org)
    if q.tss_id is not None:
        tss_ids = [t for t in tss_ids if t == q.tss_id]
    clients: dict[str, str] = {}
    serials: dict[str, str] = {}
    for tid in tss_ids:
        found = all_clients(ctx, org, tid)
        clients.update({c.client_id: c.serial_number for c in found})
        try:
            serials[tid] = ctx.service.get(tid).record.serial_number.hex()
        except OpenTSEError:
            serials[tid] = ""
    wanted_clients = None
    if q.register:
        wanted = q.register.casefold()  # as typed: "kasse-02" is the register KASSE-02
        wanted_clients = sorted(
            cid for cid, s in clients.items() if wanted in (cid.casefold(), s.casefold())
        )
    cents = _cents(q.amount)
    if cents is not None:
        backfill_amounts(ctx, org, q.tss_id)
    rows: list[TxRow] = []
    total = 0
    keyset = False
    if q.number is not None:  # one row per TSE at most: the filters are checked here
        for tid in tss_ids:
            row = ctx.svc.get_tx_by_number(tid, q.number)
            if (
                row is not None
                and row.organization_id == org
                and _matches(row, q, cents, wanted_clients)
            ):
                rows.append(row)
        rows.sort(key=lambda r: r.time_start, reverse=True)
        total = len(rows)
        rows = rows[offset : offset + SEARCH_LIMIT]
    elif tss_ids:
        keyset = True
        amounts: list[int | None] = [None] if cents is None else [cents]
        if cents and q.either_sign:  # two indexed queries, merged newest first
            amounts.append(-cents)
        rows, total, offset = indexed_page(
            ctx, org, q, amounts, wanted_clients, offset, after=after, before=before
        )
    hits = [
        TxHit(row, serials.get(row.tss_id, ""), clients.get(row.client_id, ""), _amount(ctx, row))
        for row in rows
    ]
    return TxResults(hits, total, offset, keyset)


#: the order of every indexed page: newest first; in one second the higher number,
#: then (two TSEs) by TSE and transaction id, so every page is cut from one order
_ORDER_COLUMNS = "(time_start, number, tss_id, tx_id)"
_EITHER_ORDER = "time_start DESC, number DESC, tss_id DESC, tx_id DESC"
_OLDEST_FIRST = "time_start ASC, number ASC, tss_id ASC, tx_id ASC"


def _filters(org: str, q: TxQuery, clients: list[str] | None) -> tuple[list[str], list[Any]]:
    """The WHERE terms of a search but its amount, and their parameters."""
    where = ["organization_id = ?"]
    args: list[Any] = [org]
    if q.tss_id is not None:
        where.append("tss_id = ?")
        args.append(q.tss_id)
    if clients is not None:  # none of an empty list
        where.append(f"client_id IN ({','.join('?' * len(clients))})" if clients else "0 = 1")
        args.extend(clients)
    if q.state:
        where.append("state = ?")
        args.append(q.state)
    if q.date_from is not None:
        where.append("time_start >= ?")
        args.append(q.date_from)
    if q.date_to is not None:
        where.append("time_start < ?")
        args.append(q.date_to)
    if q.unread:  # the literal term of the partial index svc_transactions_amount_unread
        where.append("amount_unread IS NOT NULL")
    return where, args


def indexed_page(
    ctx: Any,
    org: str,
    q: TxQuery,
    amounts: list[int | None],
    clients: list[str] | None,
    offset: int,
    *,
    after: Cursor | None = None,
    before: Cursor | None = None,
) -> tuple[list[TxRow], int, int]:
    """One page of the index rows matching ``q`` with any of ``amounts`` (None: any
    amount), newest first; its hits, how many match in all and the offset of its
    first hit.

    One statement: each amount is read newest first along its index
    (``svc_transactions_amount``, or ``svc_transactions_org`` without an amount) and
    the database merges them (UNION ALL) and hands over one page. With a cursor each
    side starts at the cursor's row (keyset), so a page deep into a year's receipts
    reads about a page of rows; the offset shown is then counted along the index.
    Without one the page is cut at ``offset`` (a page number typed into the URL)."""
    from opentse.ops.store import OpsDB

    svc = ctx.svc
    svc.flush()  # index rows still queued are searched too, as list_txs does
    db = OpsDB(svc)
    where, args = _filters(org, q, clients)
    sides = []
    for amount in amounts:
        terms, params = list(where), list(args)
        if amount is not None:
            terms.append("amount_cents = ?")
            params.append(amount)
        sides.append((terms, params))
    total = 0
    for terms, params in sides:
        found = db.one(f"SELECT count(*) FROM svc_transactions WHERE {' AND '.join(terms)}", params)
        total += int(found[0]) if found else 0
    cursor = after or before
    order = _OLDEST_FIRST if before is not None and after is None else _EITHER_ORDER
    if cursor is None and offset >= total:
        return [], total, offset
    per_side = SEARCH_LIMIT if cursor is not None else offset + SEARCH_LIMIT
    selects: list[str] = []
    values: list[Any] = []
    for terms, params in sides:
        terms, params = list(terms), list(params)
        if cursor is not None:
            newer = order == _OLDEST_FIRST
            terms.append(f"time_start {'>=' if newer else '<='} ?")
            terms.append(f"{_ORDER_COLUMNS} {'>' if newer else '<'} (?, ?, ?, ?)")
            params += [cursor.time_start, *_key(cursor)]
        selects.append(
            f"SELECT * FROM (SELECT {svc._TX_COLS} FROM svc_transactions"
            f" WHERE {' AND '.join(terms)} ORDER BY {order} LIMIT ?) AS side{len(selects)}"
        )
        values += [*params, per_side]
    sql = " UNION ALL ".join(selects) + f" ORDER BY {order} LIMIT ?"
    values.append(SEARCH_LIMIT)
    if cursor is None:
        sql += " OFFSET ?"
        values.append(offset)
    rows = [svc._txrow(r) for r in db.rows(sql, values)]
    if order == _OLDEST_FIRST:
        rows.reverse()
    if cursor is not None:
        offset = _newer_than(db, sides, rows[0]) if rows else total
    return rows, total, offset


def _key(c: Cursor) -> list[Any]:
    return [c.time_start, c.number, c.tss_id, c.tx_id]


def _newer_than(db: Any, sides: list[tuple[list[str], list[Any]]], row: TxRow) -> int:
    """How many matches come before ``row`` in the order (the offset of a page
    reached by a cursor): the later seconds counted along the index, the same
    second's few rows compared key by key."""
    count = 0
    for terms, params in sides:
        found = db.one(
            f"SELECT count(*) FROM svc_transactions WHERE {' AND '.join(terms)}"
            f" AND (time_start > ? OR (time_start = ? AND (number, tss_id, tx_id) > (?, ?, ?)))",
            [*params, row.time_start, row.time_start, row.number, row.tss_id, row.tx_id],
        )
        count += int(found[0]) if found else 0
    return count


def either_sign_page(
    ctx: Any, org: str, q: TxQuery, cents: int, clients: list[str] | None, offset: int
) -> tuple[list[TxRow], int]:
    """The hits ``offset`` to ``offset + SEARCH_LIMIT`` of an amount typed without a
    sign (``cents`` or ``-cents``), newest first, and how many there are (one
    ``indexed_page``)."""
    rows, total, _ = indexed_page(ctx, org, q, [cents, -cents], clients, offset)
    return rows, total


def _matches(row: TxRow, q: TxQuery, cents: int | None, clients: list[str] | None) -> bool:
    """``row`` (found by its number) passes the query's other filters."""
    return (
        (clients is None or row.client_id in clients)
        and (not q.state or row.state == q.state)
        and (q.date_from is None or row.time_start >= q.date_from)
        and (q.date_to is None or row.time_start < q.date_to)
        and (
            cents is None
            or row.amount_cents == cents
            or (q.either_sign and row.amount_cents == -cents)
        )
    )


def _cents(amount: Decimal | None) -> int | None:
    """An amount searched for in cents (parse_amount quantized it to 0.01)."""
    return None if amount is None else int(amount.scaleb(2))


def _amount(ctx: Any, row: TxRow) -> Decimal | None:
    """The amount shown: the index's, else (not a finished receipt, or not yet
    backfilled) read from the latest log as before, for at most SEARCH_LIMIT hits.
    An indexed 0 is read too: it may be a cash movement, whose payments are its amount."""
    if row.amount_cents:
        return Decimal(row.amount_cents).scaleb(-2)
    return amount_of(latest_result(ctx, row))
