"""Transactions for the dashboard: search (number, register, date, amount, state),
one transaction with its receipt, QR text and decoded log messages.

The search runs over the API's transaction index (service store); amounts are not
indexed, so they are read from the signed Finish logs (Kassenbeleg-V1 totals) of
at most ``SEARCH_SCAN`` candidates, newest first.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from opentse.dashboard.views import all_clients, owned_tss
from opentse.engine.ports import LogFilter
from opentse.engine.results import SignResult
from opentse.errors import OpenTSEError
from opentse.server.service_store import Page, TxRow
from opentse.tr03151.oids import LogType

SEARCH_LIMIT = 50
SEARCH_SCAN = 5000


@dataclass(frozen=True, slots=True)
class TxQuery:
    tss_id: str | None = None
    number: int | None = None
    register: str = ""
    date_from: int | None = None  # unix, inclusive
    date_to: int | None = None  # unix, exclusive (start of the day after)
    amount: Decimal | None = None
    state: str = ""

    @property
    def empty(self) -> bool:
        return self == TxQuery()


@dataclass(frozen=True, slots=True)
class TxHit:
    row: TxRow
    tse_serial: str
    register: str
    amount: Decimal | None


def parse_date(text: str, *, end: bool = False) -> int | None:
    """A ``YYYY-MM-DD`` date as unix seconds (UTC), the day after for ``end``."""
    if not text:
        return None
    day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    return int(day.timestamp()) + (86400 if end else 0)


def parse_amount(text: str) -> Decimal | None:
    if not text:
        return None
    try:
        value = Decimal(text.replace(",", ".").strip())
    except InvalidOperation:
        raise ValueError(text) from None
    if not value.is_finite():
        raise ValueError(text)
    return value.quantize(Decimal("0.01"))


def amount_of(result: SignResult | None) -> Decimal | None:
    """The gross total of a Kassenbeleg-V1 (None for orders and other types)."""
    if result is None or result.process_type != "Kassenbeleg-V1":
        return None
    from opentse.formats.processdata import parse_kassenbeleg

    try:
        return parse_kassenbeleg(result.process_data.decode("utf-8")).total
    except (OpenTSEError, UnicodeDecodeError, ValueError):
        return None


def tx_ref(tx_id: str, revision: int) -> str:
    from opentse.server.tx_index import tx_ref as api_ref

    return api_ref(tx_id, revision)


def latest_result(ctx: Any, row: TxRow) -> SignResult | None:
    try:
        result: SignResult | None = ctx.service.find_ref(
            row.tss_id, tx_ref(row.tx_id, row.latest_revision)
        )
    except OpenTSEError:
        return None
    return result


def search(ctx: Any, org: str, q: TxQuery) -> tuple[list[TxHit], bool]:
    """Matching transactions, newest first; True when more than SEARCH_LIMIT matched."""
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
        wanted_clients = {cid for cid, s in clients.items() if q.register in (cid, s)}
    candidates: list[TxRow] = []
    if q.number is not None:
        for tid in tss_ids:
            row = ctx.svc.get_tx_by_number(tid, q.number)
            if row is not None and row.organization_id == org:
                candidates.append(row)
    else:
        only_client = (
            next(iter(wanted_clients)) if wanted_clients and len(wanted_clients) == 1 else None
        )
        states = [q.state] if q.state else []
        offset = 0
        while offset < SEARCH_SCAN:
            page = Page(limit=100, offset=offset, order_by="time_start", order="desc")
            rows, total = ctx.svc.list_txs(org, page, q.tss_id, only_client, states)
            candidates.extend(rows)
            offset += len(rows)
            if not rows or offset >= total:
                break
    hits: list[TxHit] = []
    more = False
    for row in candidates:
        if row.tss_id not in serials:
            continue
        if wanted_clients is not None and row.client_id not in wanted_clients:
            continue
        if q.state and row.state != q.state:
            continue
        if q.date_from is not None and row.time_start < q.date_from:
            continue
        if q.date_to is not None and row.time_start >= q.date_to:
            continue
        amount = None
        if q.amount is not None or len(hits) < SEARCH_LIMIT:
            amount = amount_of(latest_result(ctx, row))
        if q.amount is not None and amount != q.amount:
            continue
        if len(hits) >= SEARCH_LIMIT:
            more = True
            break
        hits.append(TxHit(row, serials[row.tss_id], clients.get(row.client_id, ""), amount))
    return hits, more


@dataclass(frozen=True, slots=True)
class LogView:
    filename: str
    operation: str
    counter: int
    log_time: int
    client_id: str
    process_type: str
    process_data: str
    transaction_number: int | None
    signature: str
    size: int


@dataclass(frozen=True, slots=True)
class TxDetail:
    row: TxRow
    tse_serial: str
    register: str
    result: SignResult | None
    amount: Decimal | None
    receipt_text: str
    qr_text: str | None
    logs: list[LogView]


def decode_logs(ctx: Any, tss_id: str, number: int) -> list[LogView]:
    from opentse.tr03151.codec import decode_log_message
    from opentse.tr03151.logmessage import TransactionLogData

    flt = LogFilter(
        start_transaction_number=number,
        end_transaction_number=number,
        log_types=(LogType.TRANSACTION,),
    )
    views: list[LogView] = []
    for log in list(ctx.service.logs(tss_id, flt)):
        if log.transaction_number != number:
            continue
        try:
            msg = decode_log_message(log.message)
        except OpenTSEError:
            continue
        data = msg.certified
        if not isinstance(data, TransactionLogData):
            continue
        views.append(
            LogView(
                filename=log.filename,
                operation=data.operation_type,
                counter=msg.signature_counter,
                log_time=msg.log_time.unix,
                client_id=data.client_id,
                process_type=data.process_type,
                process_data=data.process_data.decode("utf-8", "replace"),
                transaction_number=data.transaction_number,
                signature=base64.b64encode(msg.signature_value).decode(),
                size=len(log.message),
            )
        )
    return views


def tx_detail(ctx: Any, org: str, tss_id: str, number: int, org_name: str = "") -> TxDetail | None:
    tss = owned_tss(ctx, org, tss_id)
    if tss is None:
        return None
    row = ctx.svc.get_tx_by_number(tss.tss_id, number)
    if row is None or row.organization_id != org:
        return None
    client = ctx.svc.get_client(row.client_id)
    register = client.serial_number if client else ""
    result = latest_result(ctx, row)
    info = ctx.service.get(tss.tss_id)
    receipt_text, qr_text = "", None
    if result is not None and row.state in ("FINISHED", "CANCELLED"):
        from opentse.dashboard.receipts import receipt_for

        receipt_text, qr_text = receipt_for(ctx, org_name, tss, result)
    return TxDetail(
        row,
        info.record.serial_number.hex(),
        register,
        result,
        amount_of(result),
        receipt_text,
        qr_text,
        decode_logs(ctx, tss.tss_id, number),
    )


def find_log(ctx: Any, org: str, tss_id: str, number: int, counter: int) -> Any | None:
    """The stored log of one transaction (by its signature counter), owned by ``org``."""
    tss = owned_tss(ctx, org, tss_id)
    if tss is None:
        return None
    log = ctx.store.get_log(tss.tss_id, counter)
    if log is None or log.transaction_number != number:
        return None
    return log
