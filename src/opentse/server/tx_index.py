"""Transactions as the API answers them, rebuilt from their signed logs.

Each signed revision carries ``ref = "tx:<uuid>:<rev>"`` and the request's
``extra`` in its log, so the answer of any revision (``stored_revision``) and the
transaction index row (``recover_row``, ``rebuild_index`` at start-up) can always
be rebuilt from the logs; ``derive_raw`` maps ``schema.standard_v1`` to the raw
processType/processData (DSFinV-K Anhang I).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from opentse.engine.ports import LogFilter
from opentse.engine.results import SignResult
from opentse.errors import FormatError, NotFoundError
from opentse.formats import processdata
from opentse.server.context import (
    API_VERSION,
    Call,
    ServerContext,
)
from opentse.server.problems import ApiError
from opentse.server.qrtext import QRText
from opentse.server.service_store import TssRow, TxRow
from opentse.server.service_store import tx_ref as tx_ref  # kept here for its callers

MAX_REVISION = 9007199254740991
OPERATION_NAMES = {
    "StartTransaction": "Start",
    "UpdateTransaction": "Update",
    "FinishTransaction": "Finish",
}
# A cancellation without data: DSFinV-K BON_TYP AVBelegabbruch (receipt aborted).
CANCEL_PROCESS_TYPE = processdata.PROCESS_TYPE_KASSENBELEG
CANCEL_PROCESS_DATA = processdata.ABORTED_RECEIPT


MAX_AMOUNT_CENTS = 10**15  # beyond any receipt; keeps the column inside 64 bits


def transaction_amount(process_type: str, process_data: bytes) -> Decimal | None:
    """The amount a shop owner knows a transaction by: the gross total of a
    Kassenbeleg-V1 (sum of its five BRUTTO sums, DSFinV-K Anhang I) or, for a cash
    movement, the money moved; None for orders, other free content and processData
    without a readable amount.

    A cash movement (Einzahlung, Auszahlung, Geldtransit ...) is no sale: signed as a
    Kassenbeleg-V1 its five gross sums are 0.00 and only its payments carry the amount
    (the fiskaly way); ``opentse pos cash`` signs it as SonstigerVorgang
    ``<GV_TYP>^<payment>[^text]`` (register.sale.CashBookEntry)."""
    try:
        text = process_data.decode("utf-8")
        if process_type == processdata.PROCESS_TYPE_SONSTIGER:
            return _cash_book_amount(text)
        if process_type != processdata.PROCESS_TYPE_KASSENBELEG:
            return None
        receipt = processdata.parse_kassenbeleg(text)
    except (FormatError, UnicodeDecodeError, ValueError):
        return None
    if receipt.total == 0 and receipt.payments:
        return _payments_total(receipt.payments)
    return receipt.total


def _payments_total(payments: Iterable[processdata.Payment]) -> Decimal | None:
    """The sum of payments in EUR (None when any is in another currency)."""
    payments = list(payments)
    if any(p.currency != "EUR" for p in payments):
        return None
    return sum((p.amount for p in payments), Decimal("0.00"))


def _cash_book_amount(text: str) -> Decimal | None:
    """The signed amount of a cash-book SonstigerVorgang (``Einzahlung^50.00:Bar^Wechselgeld``);
    None for any other free content."""
    from opentse.register.sale import CASH_BOOK_TYPES

    parts = text.split("^")
    if len(parts) not in (2, 3) or parts[0] not in CASH_BOOK_TYPES:
        return None
    fields = parts[1].split(":")
    if len(fields) not in (2, 3):
        return None
    currency = fields[2] if len(fields) == 3 else "EUR"
    amount = processdata.parse_amount(fields[0])
    return _payments_total([processdata.Payment(amount, fields[1], currency)])


def amount_cents(state: str, process_type: str, process_data: bytes) -> int | None:
    """``transaction_amount`` of a FINISHED transaction in cents, for the index
    (``TxRow.amount_cents``, migrations 0007 and 0008); None for other states (a
    cancellation's zero sums are no sale) and transactions without an amount. Parsed
    once per finished transaction."""
    if state != "FINISHED":
        return None
    total = transaction_amount(process_type, process_data)
    if total is None:
        return None
    cents = total.scaleb(2)
    if cents != cents.to_integral_value() or abs(cents) >= MAX_AMOUNT_CENTS:
        return None
    return int(cents)


def derive_raw(schema: dict[str, Any] | None) -> tuple[str, bytes, dict[str, Any]]:
    """(processType, processData, response schema) of a request's ``schema``."""
    if not schema:
        return "", b"", {}
    try:
        if "raw" in schema:
            raw = schema["raw"]
            try:
                data = base64.b64decode(raw["process_data"], validate=True)
            except binascii.Error:  # its text ("Incorrect padding") names no field
                raise ApiError(
                    400,
                    "E_FAILED_SCHEMA_VALIDATION",
                    "body/schema.raw.process_data: must be padded standard base64",
                ) from None
            return raw["process_type"], data, {"raw": dict(raw)}
        std = schema["standard_v1"]
        if "receipt" in std:
            ptype, text = processdata.from_fiskaly_receipt(std["receipt"])
        elif "order" in std:
            ptype, text = processdata.from_fiskaly_order(std["order"])
        else:
            other = std.get("other") or {}
            ptype, text = (
                "SonstigerVorgang",
                json.dumps(other, separators=(",", ":")) if other else "",
            )
    except (FormatError, binascii.Error, ValueError) as exc:
        raise ApiError(400, "E_FAILED_SCHEMA_VALIDATION", f"body/schema: {exc}") from None
    data = text.encode("utf-8")
    raw_out = {"process_type": ptype, "process_data": base64.b64encode(data).decode()}
    return ptype, data, {"standard_v1": std, "raw": raw_out}


def answer_schema(schema: Any) -> dict[str, Any]:
    """A transaction's ``schema`` as fiskaly answers it: a payment of
    ``standard_v1.receipt`` without ``currency_code`` shows its schema default
    ``"EUR"`` (ProcessDataStandardV1Receipt; fiskaly's own Postman collection reads
    ``amounts_per_payment_type[0].currency_code == "EUR"`` after a request without
    it), the currency the signed Kassenbeleg-V1 already books it in. Filled in on the
    way out, so transactions signed before answer the same; the stored request and
    the signed data stay as they were."""
    if not isinstance(schema, dict) or not schema:
        return {}
    std = schema.get("standard_v1")
    receipt = std.get("receipt") if isinstance(std, dict) else None
    if not isinstance(std, dict) or not isinstance(receipt, dict):
        return schema
    payments = receipt.get("amounts_per_payment_type")
    if not isinstance(payments, list) or all(
        not isinstance(p, dict) or "currency_code" in p for p in payments
    ):
        return schema
    filled = [
        {**p, "currency_code": "EUR"} if isinstance(p, dict) and "currency_code" not in p else p
        for p in payments
    ]
    return {
        **schema,
        "standard_v1": {**std, "receipt": {**receipt, "amounts_per_payment_type": filled}},
    }


def tx_body(
    result: SignResult,
    extra: dict[str, Any],
    row: TxRow | None,
    tss_id: str,
    env: str,
    qr_text: QRText,
) -> dict[str, Any]:
    state = str(extra.get("state", "ACTIVE"))
    body: dict[str, Any] = {
        "number": result.transaction_number,
        "time_start": result.start_time,
        "client_serial_number": result.client_id,
        "tss_serial_number": result.serial_number.hex(),
        "state": state,
        "client_id": extra.get("client", ""),
        "schema": answer_schema(extra.get("schema")),
        "revision": int(extra.get("rev", 1)),
        "latest_revision": max(int(extra.get("rev", 1)), row.latest_revision if row else 0),
        "tss_id": tss_id,
        "metadata": row.metadata if row else {},
        "log": {
            "operation": OPERATION_NAMES.get(result.operation, result.operation),
            "timestamp": result.log_time,
            "timestamp_format": result.time_format,
        },
        "signature": {
            "value": base64.b64encode(result.signature).decode(),
            "algorithm": result.algorithm,
            "counter": str(result.signature_counter),
            "public_key": base64.b64encode(result.public_key_point).decode(),
        },
        "_type": "TRANSACTION",
        "_id": extra.get("tx", ""),
        "_env": env,
        "_version": API_VERSION,
    }
    if state in ("FINISHED", "CANCELLED"):
        body["time_end"] = result.log_time
        qr = qr_text.text(result, result.client_id)
        if qr is not None:
            body["qr_code_data"] = qr
    return body


def stored_log(
    ctx: ServerContext, tss_id: str, tx_id: str, revision: int
) -> tuple[SignResult, dict[str, Any]] | None:
    """An already signed revision: its log as signed and the request's ``extra`` kept
    with it (None: never signed, or its log deleted after an export)."""
    log = ctx.store.find_ref(tss_id, tx_ref(tx_id, revision))
    if log is None:
        return None
    return ctx.service.find_ref(tss_id, tx_ref(tx_id, revision)), dict(log.extra or {})


def missing_log(
    ctx: ServerContext, tss_id: str, number: int, revision: int, *, log: bool = False
) -> ApiError:
    """A revision that was signed (the index knows it) whose log is not in the store:
    deleted after an export (deleteStoredData keeps only what came after the newest
    complete export). The message says so and where the log is ('revision 2 not found'
    sent a POS to look for a revision that does not exist).

    retrieveTransaction keeps fiskaly's 400 ``E_TX_REVISION_NOT_FOUND``: its 404 means
    "no such transaction" to a register (ours forgets a Start it noted as never
    signed, leaving the transaction open at the TSE). retrieveTransactionLog (``log``)
    answers fiskaly's code for a missing log, 404 ``E_LOG_NOT_FOUND``."""
    deleted = ctx.service.get(tss_id).state.deleted_up_to
    why = (
        f"was deleted after an export (deleteStoredData: signature counters up to "
        f"{deleted}); it is in that export"
        if deleted
        else "is not in the store"
    )
    message = f"the log of revision {revision} of transaction {number} {why}"
    if log:
        return ApiError(404, "E_LOG_NOT_FOUND", message)
    return ApiError(400, "E_TX_REVISION_NOT_FOUND", message)


def stored_revision(
    call: Call, tss: TssRow, tss_id: str, tx_id: str, revision: int, row: TxRow | None
) -> dict[str, Any] | None:
    """The response of an already signed revision, rebuilt from its log (or None)."""
    found = stored_log(call.ctx, tss_id, tx_id, revision)
    if found is None:
        return None
    return tx_body(found[0], found[1], row, tss_id, tss.env, call.ctx.qr)


def recover_row(
    ctx: ServerContext, tss_id: str, tx_id: str, row: TxRow | None, org: str
) -> TxRow | None:
    """Bring the index up to the logs: revisions signed but not indexed (crash, race)."""
    latest = row.latest_revision if row else 0
    found: tuple[SignResult, dict[str, Any]] | None = None
    while True:
        log = ctx.store.find_ref(tss_id, tx_ref(tx_id, latest + 1))
        if log is None:
            break
        latest += 1
        found = (ctx.service.find_ref(tss_id, tx_ref(tx_id, latest)), dict(log.extra or {}))
    if found is None:
        return row
    result, extra = found
    state = str(extra.get("state", "ACTIVE"))
    # the metadata as of that revision travels in its log, whole (upsert merged the
    # request into what the row had then): a row a crash lost or left behind gets
    # exactly that, keys removed by null included; a log without it (its metadata
    # was and stayed empty, or an older opentse signed it) leaves the row's
    logged = extra.get("metadata")
    metadata = dict(logged) if isinstance(logged, dict) else dict(row.metadata) if row else {}
    new = TxRow(
        tss_id,
        tx_id,
        org,
        result.transaction_number,
        str(extra.get("client", "")),
        latest,
        state,
        result.process_type or (row.process_type if row else ""),
        result.start_time,
        result.log_time if state != "ACTIVE" else None,
        metadata,
        amount_cents(state, result.process_type, result.process_data),
    )
    ctx.svc.upsert_tx(new)
    return ctx.svc.get_tx(tss_id, tx_id)


INDEX_MARK_SLACK = 5  # seconds: clock granularity and small steps of the service clock


def rebuild_index(ctx: ServerContext) -> int:
    """At startup: index rows a crash (kill -9) lost before the background writer
    stored them, so GET by number and the lists see every signed revision again.

    Only logs from the durable mark on are read (``ServiceStore`` keeps it: every
    request that began signing before it has its row in the database); without a
    mark, all logs once. Returns the number of transactions repaired.
    """
    mark = ctx.svc.index_mark()
    since = None if mark is None else mark - INDEX_MARK_SLACK
    repaired = 0
    newest: int | None = None
    for tss_id, org in ctx.svc.all_tss():
        latest: dict[str, int] = {}
        try:
            logs = ctx.store.iter_logs(tss_id, LogFilter(start_time=since))
            for log in logs:
                newest = log.log_time if newest is None else max(newest, log.log_time)
                parts = (log.ref or "").split(":")
                if len(parts) == 3 and parts[0] == "tx" and parts[2].isdigit():
                    latest[parts[1]] = max(latest.get(parts[1], 0), int(parts[2]))
        except NotFoundError:
            continue  # a service row whose TSE is gone (healed elsewhere)
        for tx_id, revision in latest.items():
            row = ctx.svc.get_tx(tss_id, tx_id)
            if row is None or row.latest_revision < revision:
                recover_row(ctx, tss_id, tx_id, row, org)
                repaired += 1
    ctx.svc.flush(strict=True)  # the mark says: everything before it is written
    if newest is not None and (mark is None or newest > mark):
        ctx.svc.set_index_mark(newest)
    return repaired
