"""Transaction routes: upsertTransaction with revisions, retrieve, lists.

fiskaly upsertTransaction: ``PUT /tss/{tss_id}/tx/{tx_id}?tx_revision=N``; revision 1
starts (state ACTIVE), every later call increments the revision; ACTIVE signs an
update, FINISHED or CANCELLED the Finish log. The API is idempotent ("you can send
the same request several times safely ... only one transaction will be started"):
each revision is signed with ``ref = "tx:<uuid>:<rev>"``, stored atomically with the
log, so a repeated revision returns the stored log and never signs twice, even across
a crash between the engine's commit and our index update: the engine finds the ref
itself (the quick path answers its replay), and refusals are decided again after
reading the logs (``_recover``). A revision beyond the next one is 400
``E_TX_UPSERT``. ``schema.standard_v1`` is mapped to the raw processType/processData
(DSFinV-K Anhang I) and both are returned.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from opentse.engine.ports import LogFilter
from opentse.engine.results import SignResult
from opentse.engine.service import TransactionOp, TSEService
from opentse.errors import FormatError, NotFoundError, OpenTSEError
from opentse.formats import processdata
from opentse.server.context import (
    API_VERSION,
    Call,
    Operation,
    ServerContext,
    envelope,
    merge_metadata,
    parse_int,
    parse_page,
    parse_states,
    parse_uuid,
)
from opentse.server.problems import ApiError
from opentse.server.qrtext import QRText
from opentse.server.routes_client import owned_client
from opentse.server.routes_tss import owned_tss, owned_tss_owner
from opentse.server.schemas import TX_STATES
from opentse.server.service_store import TssRow, TxRow

MAX_REVISION = 9007199254740991
OPERATION_NAMES = {
    "StartTransaction": "Start",
    "UpdateTransaction": "Update",
    "FinishTransaction": "Finish",
}
# A cancellation without data: DSFinV-K BON_TYP AVBelegabbruch (receipt aborted).
CANCEL_PROCESS_TYPE = "Kassenbeleg-V1"
CANCEL_PROCESS_DATA = "AVBelegabbruch^0.00_0.00_0.00_0.00_0.00^"


def tx_ref(tx_id: str, revision: int) -> str:
    return f"tx:{tx_id}:{revision}"


def derive_raw(schema: dict[str, Any] | None) -> tuple[str, bytes, dict[str, Any]]:
    """(processType, processData, response schema) of a request's ``schema``."""
    if not schema:
        return "", b"", {}
    try:
        if "raw" in schema:
            raw = schema["raw"]
            data = base64.b64decode(raw["process_data"], validate=True)
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
        "schema": extra.get("schema") or {},
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


def stored_revision(
    call: Call, tss: TssRow, tss_id: str, tx_id: str, revision: int, row: TxRow | None
) -> dict[str, Any] | None:
    """The response of an already signed revision, rebuilt from its log (or None)."""
    log = call.ctx.store.find_ref(tss_id, tx_ref(tx_id, revision))
    if log is None:
        return None
    result = call.ctx.service.find_ref(tss_id, tx_ref(tx_id, revision))
    return tx_body(result, dict(log.extra or {}), row, tss_id, tss.env, call.ctx.qr)


def _recover(call: Call, tss_id: str, tx_id: str, row: TxRow | None, org: str) -> TxRow | None:
    return recover_row(call.ctx, tss_id, tx_id, row, org)


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
        row.metadata if row else {},
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
    ctx.svc.flush()
    if newest is not None and (mark is None or newest > mark):
        ctx.svc.set_index_mark(newest)
    return repaired


class _Recover(Exception):
    """The quick path cannot decide without reading the logs first."""


def upsert_transaction(call: Call) -> tuple[int, Any]:
    """upsertTransaction. Quick path: the index row as it is (revision 1 given
    explicitly with state ACTIVE: no row at all), without first reading the logs for
    revisions the index may miss (``_recover``): signing carries ``ref``, so the
    engine itself finds such a revision and replays it (``_answer_replay``). Whatever
    the quick path would refuse before signing, and a Start+Finish in one call, is
    decided again the full way (logs read first), so errors answer as before."""
    quick = _quick_flow(call)
    if quick is not None:
        try:
            return _drive(call.ctx, quick)
        except (ApiError, _Recover):
            pass  # nothing was signed: decide again with the logs read
    return upsert_transaction_full(call)


async def upsert_transaction_async(call: Call) -> tuple[int, Any] | None:
    """The quick path of :func:`upsert_transaction` on the event loop, the engine
    awaited instead of a handler thread parked on the commit (the reads before it
    are the embedded store's: local, short, mostly from memory). None: the full
    path must decide; run :func:`upsert_transaction_full` in the handler pool.
    Engine errors propagate."""
    quick = _quick_flow(call)
    if quick is None:
        return None
    try:
        return await _drive_async(call.ctx, quick)
    except (ApiError, _Recover):
        return None


def upsert_transaction_full(call: Call) -> tuple[int, Any]:
    """upsertTransaction the full way: the index row brought up to the logs first."""
    assert call.principal is not None
    tss_id, tss = owned_tss_owner(call, call.path["tss_id"])
    tx_id = _tx_id_for_upsert(call, tss_id)
    org = call.principal.organization_id
    row = _recover(call, tss_id, tx_id, call.ctx.svc.get_tx(tss_id, tx_id), org)
    return _drive(call.ctx, _upsert(call, tss, tss_id, tx_id, org, row, quick=False))


def _quick_flow(call: Call) -> Flow | None:
    """The quick path's flow for a transaction named by UUID, else None (numbers
    take the full path: their row is read anyway)."""
    assert call.principal is not None
    ctx = call.ctx
    tss_id, tss = owned_tss_owner(call, call.path["tss_id"])  # only tss.env is read
    tx_id = _tx_id_for_upsert(call, tss_id)
    if len(call.path["tx_id_or_number"]) != 36:
        return None
    if call.query.get("tx_revision") == "1" and call.body["state"] == "ACTIVE":
        row = None  # the engine's ref check finds an existing revision 1
    else:
        row = ctx.svc.get_tx(tss_id, tx_id)
    return _upsert(call, tss, tss_id, tx_id, call.principal.organization_id, row, quick=True)


@dataclass(frozen=True, slots=True)
class _SignCall:
    """The engine call(s) one revision needs (``_sign``'s arguments)."""

    tss_id: str
    serial: str
    row: TxRow | None
    target: str
    data: bytes
    ptype: str
    ref: str
    extra: dict[str, Any]


# An upsert's steps around its one engine call: yields what to sign, is sent the
# result, returns the answer. Blocking and asyncio callers drive the same steps.
Flow = Generator[_SignCall, SignResult, tuple[int, Any]]


def _drive(ctx: ServerContext, flow: Flow) -> tuple[int, Any]:
    """Run ``flow`` on this thread, the engine called blocking."""
    try:
        sign = next(flow)
    except StopIteration as done:  # answered without signing (a stored revision)
        return done.value  # type: ignore[no-any-return]
    try:
        result = _sign(ctx, sign)
    except BaseException as exc:
        flow.throw(exc)  # the flow re-raises it (after its own bookkeeping)
        raise
    return _resume(flow, result)


async def _drive_async(ctx: ServerContext, flow: Flow) -> tuple[int, Any]:
    """Run ``flow`` on the event loop, the engine awaited. A replayed result (the
    revision existed) is answered from the stored logs: that part goes to the
    handler pool, off the loop."""
    try:
        sign = next(flow)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    signing = asyncio.ensure_future(_sign_async(ctx, sign))
    try:
        # shielded: a cancelled request (server shutdown) still has its signature
        # indexed once the commit answers, as a blocking handler thread would
        result = await asyncio.shield(signing)
    except asyncio.CancelledError:
        signing.add_done_callback(lambda done: _conclude_abandoned(flow, done))
        raise
    except BaseException as exc:
        flow.throw(exc)
        raise
    if result.replayed:
        answer: tuple[int, Any] = await ctx.executor.run(_resume, flow, result)
        return answer
    return _resume(flow, result)


def _conclude_abandoned(flow: Flow, signing: asyncio.Future[SignResult]) -> None:
    """The rest of a cancelled request's flow (index row, signing mark); nobody
    hears the answer."""
    with contextlib.suppress(Exception):
        if signing.cancelled():
            flow.close()
        elif signing.exception() is not None:
            flow.throw(signing.exception())  # type: ignore[arg-type]
        else:
            _resume(flow, signing.result())


def _resume(flow: Flow, result: SignResult) -> tuple[int, Any]:
    try:
        flow.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise RuntimeError("an upsert flow signs once")


def _upsert(
    call: Call, tss: TssRow, tss_id: str, tx_id: str, org: str, row: TxRow | None, *, quick: bool
) -> Flow:
    """One revision's steps (``Flow``): checks, the engine call it yields, the index
    row and the answer."""
    ctx = call.ctx
    body = call.body
    latest = row.latest_revision if row else 0
    revision = parse_int(call.query, "tx_revision", latest + 1, 1, MAX_REVISION)
    assert revision is not None
    if revision <= latest:
        replay = stored_revision(call, tss, tss_id, tx_id, revision, row)
        if replay is None:
            raise ApiError(400, "E_TX_REVISION_NOT_FOUND", f"revision {revision} not found")
        return 200, replay
    if revision > latest + 1:
        raise ApiError(400, "E_TX_UPSERT", f"revision {latest + 1} is next, not {revision}")
    client = ctx.svc.get_client_for_signing(parse_uuid(body["client_id"], "client_id"))
    if client is None or client.tss_id != tss_id:
        raise ApiError(400, "E_CLIENT_NOT_FOUND", f"client {body['client_id']} not found")
    if client.state != "REGISTERED":
        raise ApiError(400, "E_CLIENT_DEREGISTERED", f"client {client.client_id} is deregistered")
    target = body["state"]
    ptype, data, schema_out = derive_raw(body.get("schema"))
    if row is not None and row.state != "ACTIVE":
        raise ApiError(400, "E_TX_UPSERT", f"transaction {tx_id} is already {row.state}")
    if row is not None and ptype and row.process_type and ptype != row.process_type:
        raise ApiError(
            409, "E_TX_ILLEGAL_TYPE_CHANGE", f"process type is {row.process_type}, not {ptype}"
        )
    if target == "CANCELLED" and not ptype:
        ptype, data = CANCEL_PROCESS_TYPE, CANCEL_PROCESS_DATA.encode()
        schema_out = {
            "raw": {"process_type": ptype, "process_data": base64.b64encode(data).decode()}
        }
    elif target == "FINISHED" and not ptype:
        if row is None or not row.process_type:
            raise ApiError(409, "E_TX_NO_TYPE_DEFINED", "finishing needs a schema (process type)")
        ptype = row.process_type
    metadata = merge_metadata(row.metadata if row else {}, body.get("metadata"))
    if quick and row is None and target != "ACTIVE":
        raise _Recover  # Start+Finish signs two logs: never on an index that may lag
    extra = {
        "tx": tx_id,
        "rev": revision,
        "state": target,
        "client": client.client_id,
        "schema": schema_out,
    }
    ref = tx_ref(tx_id, revision)
    token = ctx.svc.begin_signing(ctx.now())
    indexed = False
    try:
        result = yield _SignCall(tss_id, client.serial_number, row, target, data, ptype, ref, extra)
        if result.replayed and quick:
            indexed = True  # nothing new signed; the recovery below indexes what was
            return 200, _answer_replay(ctx, tss, tss_id, tx_id, org, result, ref)
        new_row = TxRow(
            tss_id,
            tx_id,
            org,
            result.transaction_number,
            client.client_id,
            revision,
            target,
            ptype or (row.process_type if row else ""),
            result.start_time,
            result.log_time if target != "ACTIVE" else None,
            metadata,
        )
        ctx.svc.upsert_tx(new_row)
        indexed = True
    except OpenTSEError:
        indexed = True  # the engine refused: nothing was signed, nothing to index
        raise
    finally:
        if indexed:  # else: signed but not queued; keep the mark from passing this request
            ctx.svc.end_signing(token)
    current = ctx.svc.get_tx(tss_id, tx_id)
    if result.replayed:  # a concurrent identical request won the race: answer as it did
        stored = ctx.store.find_ref(tss_id, ref)
        extra = dict(stored.extra or {}) if stored is not None else extra
    return 200, tx_body(result, extra, current, tss_id, tss.env, ctx.qr)


def _answer_replay(
    ctx: ServerContext,
    tss: TssRow,
    tss_id: str,
    tx_id: str,
    org: str,
    result: SignResult,
    ref: str,
) -> dict[str, Any]:
    """The quick path signed nothing: this revision existed (the index was behind, or
    a concurrent identical request won). Answer as the full path does for a stored
    revision: the index brought up to the logs, the body from the stored log."""
    row = recover_row(ctx, tss_id, tx_id, ctx.svc.get_tx(tss_id, tx_id), org)
    stored = ctx.store.find_ref(tss_id, ref)
    extra = dict(stored.extra or {}) if stored is not None else {}
    return tx_body(result, extra, row, tss_id, tss.env, ctx.qr)


def _sign(ctx: ServerContext, call: _SignCall) -> SignResult:
    """The engine call(s) of one revision: Start, Update or Finish (or Start+Finish)."""
    svc: TSEService = ctx.service
    tss_id, serial, ref, extra = call.tss_id, call.serial, call.ref, call.extra
    if call.row is None:
        if call.target == "ACTIVE":
            return svc.start_transaction(
                tss_id, serial, call.data, call.ptype, ref=ref, extra=extra
            )
        start_ref, start_extra = _start_of_one_call(call)
        first = svc.start_transaction(tss_id, serial, b"", "", ref=start_ref, extra=start_extra)
        return svc.finish_transaction(
            tss_id, serial, first.transaction_number, call.data, call.ptype, ref=ref, extra=extra
        )
    op = svc.update_transaction if call.target == "ACTIVE" else svc.finish_transaction
    return op(tss_id, serial, call.row.number, call.data, call.ptype, ref=ref, extra=extra)


async def _sign_async(ctx: ServerContext, call: _SignCall) -> SignResult:
    """``_sign`` awaited on the event loop."""
    service: TSEService = ctx.service
    run = service.transaction_async
    tss_id, serial, ref, extra = call.tss_id, call.serial, call.ref, call.extra
    data, ptype = call.data, call.ptype
    if call.row is None:
        if call.target == "ACTIVE":
            return await run("start", tss_id, serial, 0, data, ptype, ref=ref, extra=extra)
        start_ref, start_extra = _start_of_one_call(call)
        first = await run("start", tss_id, serial, 0, b"", "", ref=start_ref, extra=start_extra)
        number = first.transaction_number
        return await run("finish", tss_id, serial, number, data, ptype, ref=ref, extra=extra)
    op: TransactionOp = "update" if call.target == "ACTIVE" else "finish"
    return await run(op, tss_id, serial, call.row.number, data, ptype, ref=ref, extra=extra)


def _start_of_one_call(call: _SignCall) -> tuple[str, dict[str, Any]]:
    """Ref and extra of the empty Start before the Finish when one call starts and
    ends a transaction."""
    extra = call.extra
    start_extra = {"tx": extra["tx"], "rev": 0, "state": "ACTIVE", "client": extra["client"]}
    return f"{call.ref}:start", start_extra


def _tx_id_for_upsert(call: Call, tss_id: str) -> str:
    raw = call.path["tx_id_or_number"]
    if raw.isascii() and raw.isdigit() and len(raw) < 17:
        row = call.ctx.svc.get_tx_by_number(tss_id, int(raw))
        if row is None:
            raise ApiError(404, "E_TX_NOT_FOUND", f"transaction {raw} not found")
        return row.tx_id
    return parse_uuid(raw, "tx_id_or_number")


def _find_tx(call: Call, tss_id: str) -> TxRow:
    raw = call.path["tx_id_or_number"]
    if raw.isascii() and raw.isdigit() and len(raw) < 17:
        row = call.ctx.svc.get_tx_by_number(tss_id, int(raw))
    else:
        tx_id = parse_uuid(raw, "tx_id_or_number")
        assert call.principal is not None
        row = _recover(
            call, tss_id, tx_id, call.ctx.svc.get_tx(tss_id, tx_id), call.principal.organization_id
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
    if body is None:
        raise ApiError(400, "E_TX_REVISION_NOT_FOUND", f"revision {revision} not found")
    return 200, body


def retrieve_transaction_log(call: Call) -> Response:
    """The signed log message (DER) of a revision (fiskaly: deprecated, kept for clients)."""
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    row = _find_tx(call, tss_id)
    revision = parse_int(call.query, "tx_revision", row.latest_revision, 1, MAX_REVISION)
    log = call.ctx.store.find_ref(tss_id, tx_ref(row.tx_id, revision or 1))
    if log is None or (revision or 1) > row.latest_revision:
        raise ApiError(400, "E_TX_REVISION_NOT_FOUND", f"revision {revision} not found")
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
        call.principal.organization_id, page, tss_id, client_id, states
    )
    data = []
    for r in rows:
        tss = call.ctx.svc.get_tss(r.tss_id)
        try:
            body = (
                stored_revision(call, tss, r.tss_id, r.tx_id, r.latest_revision, r) if tss else None
            )
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
        errors=(400, 401, 404, 409),
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
        body_schema="Metadata",
        response="Metadata",
    ),
]
