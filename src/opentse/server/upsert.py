"""upsertTransaction: revisions, idempotency, the quick path and the full path.

fiskaly upsertTransaction: ``PUT /tss/{tss_id}/tx/{tx_id}?tx_revision=N``; revision 1
starts (state ACTIVE), every later call increments the revision; ACTIVE signs an
update, FINISHED or CANCELLED the Finish log. The API is idempotent ("you can send
the same request several times safely ... only one transaction will be started"):
each revision is signed with ``ref = "tx:<uuid>:<rev>"``, stored atomically with the
log, so a repeated revision returns the stored log and never signs twice, even across
a crash between the engine's commit and our index update: the engine finds the ref
itself (the quick path answers its replay), and refusals are decided again after
reading the logs (``recover_row``). A revision beyond the next one is 400
``E_TX_UPSERT``, and so is a PUT without ``tx_revision``: fiskaly's text says the query
string must include it, and taking the next revision instead made a retried PUT sign
again. ``schema.standard_v1`` is mapped to the raw processType/processData
(DSFinV-K Anhang I) and both are returned.

One revision's steps are a generator (``Flow``) that yields its engine call: the
blocking driver runs it on a handler thread, the asyncio driver on the event loop
with the engine awaited (embedded SQLite; server/hotpath.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from opentse.engine import rules
from opentse.engine.results import SignResult
from opentse.engine.service import TransactionOp, TSEService
from opentse.errors import OpenTSEError
from opentse.server.context import (
    Call,
    ServerContext,
    merge_metadata,
    parse_int,
    parse_uuid,
)
from opentse.server.problems import ApiError
from opentse.server.replay import refuse_changed
from opentse.server.routes_tss import owned_tss_owner
from opentse.server.service_store import TssRow, TxRow
from opentse.server.tx_index import (
    CANCEL_PROCESS_DATA,
    CANCEL_PROCESS_TYPE,
    MAX_REVISION,
    amount_cents,
    derive_raw,
    missing_log,
    recover_row,
    stored_log,
    tx_body,
    tx_ref,
)


class _Recover(Exception):
    """The quick path cannot decide without reading the logs first."""


def upsert_transaction(call: Call) -> tuple[int, Any]:
    """upsertTransaction. Quick path: the index row as it is (revision 1 given
    explicitly with state ACTIVE: no row at all), without first reading the logs for
    revisions the index may miss (``recover_row``): signing carries ``ref``, so the
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
    row = recover_row(call.ctx, tss_id, tx_id, call.ctx.svc.get_tx(tss_id, tx_id), org)
    return _drive(call.ctx, _upsert(call, tss, tss_id, tx_id, org, row, quick=False))


def _quick_flow(call: Call) -> Flow | None:
    """The quick path's flow for a transaction named by UUID, else None (numbers
    take the full path: their row is read anyway)."""
    assert call.principal is not None
    if len(call.path["tx_id_or_number"]) != 36:
        return None  # before any read: the full path looks the number up once
    ctx = call.ctx
    tss_id, tss = owned_tss_owner(call, call.path["tss_id"])  # only tss.env is read
    tx_id = _tx_id_for_upsert(call, tss_id)
    if call.query.get("tx_revision") == "1" and call.body["state"] == "ACTIVE":
        row = None  # the engine's ref check finds an existing revision 1
    else:
        row = ctx.svc.get_tx(tss_id, tx_id)
    return _upsert(call, tss, tss_id, tx_id, call.principal.organization_id, row, quick=True)


def _refuse_for_tss_state(ctx: ServerContext, tss_id: str) -> None:
    """A TSS that cannot sign is named before a client it does not know: a register
    whose TSS is not initialized yet (or disabled) was told E_CLIENT_NOT_FOUND and
    went looking at its client ids. fiskaly's upsertTransaction answers
    E_TSS_NOT_INITIALIZED / E_TSS_DISABLED for it. Read only when the client check
    fails, so signing pays nothing for it."""
    # the engine's own refusal, mapped onto fiskaly's status like every engine error
    rules.check_can_sign(rules.Op.START, ctx.service.get(tss_id).state.lifecycle)


def _as_it_stands(
    call: Call, tss_id: str, tx_id: str, row: TxRow
) -> tuple[str, bytes, dict[str, Any]]:
    """FINISHED without a schema finishes the transaction with the type and data its
    latest revision signed (and answers that revision's schema). Only the type was
    carried before, so the Finish log, the receipt's record, was signed with empty
    processData: a receipt without amounts. With no data signed yet there is nothing
    to finish with: 409 E_TX_NO_TYPE_DEFINED, as fiskaly answers a Finish that lacks
    its process_type."""
    latest = row.latest_revision
    ref = tx_ref(tx_id, latest)
    log = call.ctx.store.find_ref(tss_id, ref)
    result = call.ctx.service.find_ref(tss_id, ref) if log is not None else None
    if log is None or result is None or not result.process_data:
        # which of the two it is: a log deleted after its export (deleteStoredData)
        # was read as "nothing signed yet", which sent the shop looking for a
        # revision that never was
        why = (
            "whose log was deleted after an export (deleteStoredData)"
            if log is None or result is None
            else "which signed none"
        )
        raise ApiError(
            409,
            "E_TX_NO_TYPE_DEFINED",
            f"finishing without a schema finishes with the data of the latest revision "
            f"({latest}), {why}: send the receipt's schema (standard_v1 or raw) with "
            "this revision",
        )
    schema = (log.extra or {}).get("schema")
    if not isinstance(schema, dict) or not schema:
        encoded = base64.b64encode(result.process_data).decode()
        schema = {"raw": {"process_type": result.process_type, "process_data": encoded}}
    return result.process_type, result.process_data, dict(schema)


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
    revision = parse_int(call.query, "tx_revision", None, 1, MAX_REVISION)
    if revision is None:
        raise ApiError(
            400,
            "E_TX_UPSERT",
            f"the query string must include tx_revision: 1 to start a transaction, then "
            f"one more on each call ({latest + 1} is next)",
        )
    if revision <= latest:
        stored = stored_log(ctx, tss_id, tx_id, revision)
        if stored is None:  # signed, its log deleted after an export since
            deleted = missing_log(ctx, tss_id, row.number if row else 0, revision)
            raise ApiError(400, "E_TX_REVISION_NOT_FOUND", deleted.message)
        refuse_changed(call, tss_id, tx_id, revision, *stored)  # a retry, or 409
        return 200, tx_body(stored[0], stored[1], row, tss_id, tss.env, ctx.qr)
    if revision > latest + 1:
        raise ApiError(400, "E_TX_UPSERT", f"revision {latest + 1} is next, not {revision}")
    client = ctx.svc.get_client_for_signing(parse_uuid(body["client_id"], "client_id", "body"))
    if client is None or client.tss_id != tss_id:
        _refuse_for_tss_state(ctx, tss_id)
        raise ApiError(400, "E_CLIENT_NOT_FOUND", f"client {body['client_id']} not found")
    if client.state != "REGISTERED":
        _refuse_for_tss_state(ctx, tss_id)
        raise ApiError(400, "E_CLIENT_DEREGISTERED", f"client {client.client_id} is deregistered")
    target = body["state"]
    ptype, data, schema_out = derive_raw(body.get("schema"))
    if "raw" in schema_out:
        # what the TSE signs and fiskaly's ProcessDataRaw names, nothing else: members
        # a request adds beside them are accepted (an open object) but neither signed
        # nor stored, so no answer shows them as if they were part of the transaction
        raw = schema_out["raw"]
        schema_out["raw"] = {k: raw[k] for k in ("process_type", "process_data")}
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
        if quick:
            raise _Recover  # the latest revision is read from the logs (the index may lag)
        ptype, data, schema_out = _as_it_stands(call, tss_id, tx_id, row)
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
    if metadata or (row is not None and row.metadata):
        # durable with the log: an index row a crash lost gets it back, also emptied
        # (every key removed by null), which nothing logged could not tell
        extra["metadata"] = metadata
    ref = tx_ref(tx_id, revision)
    token = ctx.svc.begin_signing(ctx.now())
    indexed = False
    try:
        result = yield _SignCall(tss_id, client.serial_number, row, target, data, ptype, ref, extra)
        if result.replayed:
            # nothing new signed: the index lagged (the quick path) or a concurrent
            # request won the race; the recovery indexes what was, from the logs, and
            # a different request than the one signed is refused there
            indexed = True
            return 200, _answer_replay(call, tss, tss_id, tx_id, org, result, ref)
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
            # the total as signed (Finish log's processData): one parse per receipt,
            # nothing for ACTIVE revisions
            amount_cents(target, result.process_type, result.process_data),
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
    return 200, tx_body(result, extra, current, tss_id, tss.env, ctx.qr)


def _answer_replay(
    call: Call,
    tss: TssRow,
    tss_id: str,
    tx_id: str,
    org: str,
    result: SignResult,
    ref: str,
) -> dict[str, Any]:
    """Nothing was signed: this revision existed (the index was behind, or a
    concurrent request won). Answer as for a stored revision: the index brought up to
    the logs, the body from the stored log, 409 when this request is not the one that
    signed it."""
    ctx = call.ctx
    row = recover_row(ctx, tss_id, tx_id, ctx.svc.get_tx(tss_id, tx_id), org)
    stored = ctx.store.find_ref(tss_id, ref)
    extra = dict(stored.extra or {}) if stored is not None else {}
    refuse_changed(call, tss_id, tx_id, int(extra.get("rev", 1)), result, extra)
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
