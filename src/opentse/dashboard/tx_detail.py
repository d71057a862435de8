"""One transaction of the dashboard: its index row, receipt and QR text rebuilt from
its signed Finish log, its decoded log messages, the TSE's transactions before and
after it, and one log message to download (the search is in ``transactions``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from opentse.dashboard.transactions import amount_of, latest_result
from opentse.dashboard.views import owned_tss
from opentse.engine.ports import LogFilter
from opentse.engine.results import SignResult
from opentse.errors import OpenTSEError
from opentse.server.service_store import TxRow
from opentse.tr03151.oids import LogType


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
    #: finished, but its logs were deleted after a verified export (deleteStoredData):
    #: no receipt can be rebuilt here, the archived export has them
    logs_deleted: bool = False
    #: the numbers of the TSE's transactions just before and after this one (an
    #: auditor steps through a TSE's transactions one by one)
    previous: int | None = None
    following: int | None = None
    #: why the amount search cannot find it (amounts.REASONS), or None
    amount_unread: str | None = None


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
    logs = decode_logs(ctx, tss.tss_id, number)
    deleted = row.state != "ACTIVE" and not logs and info.state.deleted_up_to > 0
    previous, following, unread = _around(ctx, org, row)
    return TxDetail(
        row,
        info.record.serial_number.hex(),
        register,
        result,
        # the index keeps the amount when the logs were deleted after an export
        amount_of(result) if result is not None else _indexed_amount(row),
        receipt_text,
        qr_text,
        logs,
        deleted,
        previous,
        following,
        unread,
    )


def _around(ctx: Any, org: str, row: TxRow) -> tuple[int | None, int | None, str | None]:
    """The numbers of the transactions of ``row``'s TSE just before and after it in
    the index (each one step along its (tss_id, number) key), and its mark."""
    from opentse.ops.store import OpsDB

    db = OpsDB(ctx.svc)
    near = "SELECT number FROM svc_transactions WHERE tss_id = ? AND organization_id = ?"
    args = [row.tss_id, org, row.number]
    before = db.one(f"{near} AND number < ? ORDER BY number DESC LIMIT 1", args)
    after = db.one(f"{near} AND number > ? ORDER BY number ASC LIMIT 1", args)
    mark = db.one(
        "SELECT amount_unread FROM svc_transactions WHERE tss_id = ? AND tx_id = ?",
        [row.tss_id, row.tx_id],
    )
    return (
        None if before is None else int(before[0]),
        None if after is None else int(after[0]),
        None if mark is None or mark[0] is None else str(mark[0]),
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


def _indexed_amount(row: TxRow) -> Decimal | None:
    return None if row.amount_cents is None else Decimal(row.amount_cents).scaleb(-2)
