"""Transaction routes: upsertTransaction (server/upsert.py), retrieve, lists,
metadata; their OpenAPI operations."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from opentse.errors import NotFoundError
from opentse.server.context import (
    Call,
    Operation,
    envelope,
    merge_metadata,
    parse_int,
    parse_page,
    parse_states,
    parse_uuid,
)
from opentse.server.problems import ApiError
from opentse.server.routes_client import owned_client
from opentse.server.routes_tss import owned_tss
from opentse.server.schemas import MAX_SAFE, TX_STATES, states_query
from opentse.server.service_store import TxRow
from opentse.server.tx_index import (
    MAX_REVISION,
    missing_log,
    recover_row,
    stored_revision,
    tx_ref,
)
from opentse.server.tx_unlogged import open_tx_body
from opentse.server.upsert import upsert_transaction


def _find_tx(call: Call, tss_id: str) -> TxRow:
    raw = call.path["tx_id_or_number"]
    if raw.isascii() and raw.isdigit() and len(raw) < 17:
        row = call.ctx.svc.get_tx_by_number(tss_id, int(raw))
    else:
        try:
            tx_id = parse_uuid(raw, "tx_id_or_number")
        except ApiError:
            # the reads take a transaction number too: say so ('must be a UUID' sent a
            # POS developer who passed a number of 17 digits looking for a UUID bug)
            raise ApiError(
                400,
                "E_FAILED_SCHEMA_VALIDATION",
                f"params/tx_id_or_number must be a UUID or a transaction number (0..{MAX_SAFE})",
            ) from None
        assert call.principal is not None
        row = recover_row(
            call.ctx,
            tss_id,
            tx_id,
            call.ctx.svc.get_tx(tss_id, tx_id),
            call.principal.organization_id,
        )
    if row is None:
        raise ApiError(404, "E_TX_NOT_FOUND", f"transaction {raw} not found")
    return row


def retrieve_transaction(call: Call) -> tuple[int, Any]:
    tss_id, tss = owned_tss(call, call.path["tss_id"])
    row = _find_tx(call, tss_id)
    revision = parse_int(call.query, "tx_revision", row.latest_revision, 1, MAX_REVISION)
    assert revision is not None
    body = (
        stored_revision(call, tss, tss_id, row.tx_id, revision, row)
        if revision <= row.latest_revision
        else None
    )
    if body is None and revision == row.latest_revision:
        body = open_tx_body(call.ctx, row, tss.env)  # open, its log deleted: recovery
    if body is None and revision <= row.latest_revision:
        raise missing_log(call.ctx, tss_id, row.number, revision)
    if body is None:
        raise ApiError(400, "E_TX_REVISION_NOT_FOUND", f"revision {revision} not found")
    return 200, body


def retrieve_transaction_log(call: Call) -> Response:
    """The signed log message (DER) of a revision (fiskaly: deprecated, kept for clients)."""
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    row = _find_tx(call, tss_id)
    revision = parse_int(call.query, "tx_revision", row.latest_revision, 1, MAX_REVISION)
    log = call.ctx.store.find_ref(tss_id, tx_ref(row.tx_id, revision or 1))
    if (revision or 1) > row.latest_revision:
        raise ApiError(400, "E_TX_REVISION_NOT_FOUND", f"revision {revision} not found")
    if log is None:
        raise missing_log(call.ctx, tss_id, row.number, revision or 1, log=True)
    return Response(
        log.message,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{log.filename}"'},
    )


def _list(call: Call, tss_id: str | None, client_id: str | None) -> tuple[int, Any]:
    assert call.principal is not None
    page = parse_page(call, ("number", "state", "time_start", "time_end"))
    states = parse_states(call, TX_STATES)
    rows, total = call.ctx.svc.list_txs(
        call.principal.organization_id, page, tss_id, client_id, states, listed=True
    )
    data = []
    for r in rows:
        tss = call.ctx.svc.get_tss(r.tss_id)
        try:
            body = (
                stored_revision(call, tss, r.tss_id, r.tx_id, r.latest_revision, r) if tss else None
            )
            if body is None and tss is not None:  # open, its log deleted (tx_unlogged)
                body = open_tx_body(call.ctx, r, tss.env)
        except NotFoundError:
            body = None
        if body is not None:
            data.append(body)
    return 200, envelope(call, "TRANSACTION_LIST", data, total)


def list_transactions(call: Call) -> tuple[int, Any]:
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    return _list(call, tss_id, None)


def list_all_transactions(call: Call) -> tuple[int, Any]:
    return _list(call, None, None)


def list_client_transactions(call: Call) -> tuple[int, Any]:
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    client = owned_client(call, tss_id, call.path["client_id"])
    return _list(call, tss_id, client.client_id)


def retrieve_transaction_metadata(call: Call) -> tuple[int, Any]:
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    return 200, _find_tx(call, tss_id).metadata


def update_transaction_metadata(call: Call) -> tuple[int, Any]:
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    row = _find_tx(call, tss_id)
    merged = merge_metadata(row.metadata, call.body or {})
    call.ctx.svc.set_tx_metadata(tss_id, row.tx_id, merged)
    return 200, merged


_REV = ("tx_revision", {"type": "integer", "minimum": 1, "maximum": MAX_REVISION})
_LIST_QUERY = (
    ("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
    ("offset", {"type": "integer", "minimum": 0}),
    ("order", {"type": "string", "enum": ["asc", "desc"]}),
    ("order_by", {"type": "string", "enum": ["number", "state", "time_start", "time_end"]}),
    states_query(TX_STATES),
)
_TX = "/tss/{tss_id}/tx/{tx_id_or_number}"
HOT_PATH = _TX  # upsertTransaction: two calls per receipt

OPERATIONS = [
    Operation(
        "PUT",
        _TX,
        "upsertTransaction",
        upsert_transaction,
        "Start, update or finish a transaction",
        "Transactions",
        body_schema="TxRequest",
        body_required=True,
        response="Transaction",
        errors=(400, 401, 404, 409, 423),
        query=(_REV,),
    ),
    Operation(
        "GET",
        _TX,
        "retrieveTransaction",
        retrieve_transaction,
        "Retrieve a transaction",
        "Transactions",
        response="Transaction",
        query=(_REV,),
    ),
    Operation(
        "GET",
        _TX + "/log",
        "retrieveTransactionLog",
        retrieve_transaction_log,
        "Retrieve the signed log message of a transaction (deprecated)",
        "Transactions",
        response_media="application/octet-stream",
        query=(_REV,),
    ),
    Operation(
        "GET",
        "/tss/{tss_id}/tx",
        "listTransactions",
        list_transactions,
        "List transactions of a TSS",
        "Transactions",
        response="TransactionList",
        query=_LIST_QUERY,
    ),
    Operation(
        "GET",
        "/tx",
        "listAllTransactions",
        list_all_transactions,
        "List all transactions",
        "Transactions",
        response="TransactionList",
        query=_LIST_QUERY,
    ),
    Operation(
        "GET",
        "/tss/{tss_id}/client/{client_id}/tx",
        "listClientTransactions",
        list_client_transactions,
        "List transactions of a client",
        "Clients",
        response="TransactionList",
        query=_LIST_QUERY,
    ),
    Operation(
        "GET",
        _TX + "/metadata",
        "retrieveTransactionMetadata",
        retrieve_transaction_metadata,
        "Retrieve metadata of a transaction",
        "Transactions",
        response="Metadata",
    ),
    Operation(
        "PATCH",
        _TX + "/metadata",
        "updateTransactionMetadata",
        update_transaction_metadata,
        "Update metadata of a transaction",
        "Transactions",
        body_schema="MetadataRequest",
        response="Metadata",
    ),
]
