"""TSS, admin PIN and API authentication routes (fiskaly SIGN DE v2).

fiskaly "Changes in TSS handling": createTss returns the PUK; PATCH moves CREATED ->
UNINITIALIZED -> INITIALIZED -> DISABLED (and UNINITIALIZED -> DISABLED), anything
else is 400 ``E_ILLEGAL_TSS_STATE_CHANGE``; INITIALIZED and DISABLED need an admin
login; the admin PIN is blocked until set with the PUK (changeAdminPin), and five
wrong PINs block it again (423 ``E_ADMIN_PIN_BLOCKED``). A TSS of another
organization answers 404 exactly like one that does not exist.
"""

from __future__ import annotations

import base64
import contextlib
import time
from typing import Any

from starlette.responses import Response

from opentse.engine.provision import generate_puk
from opentse.engine.results import TSEInfo
from opentse.engine.state import Lifecycle
from opentse.errors import ConflictError, NotFoundError, OpenTSEError
from opentse.server.auth import seal, unseal
from opentse.server.auth_limit import Blocked, Busy, address_bucket
from opentse.server.context import (
    API_VERSION,
    Call,
    FastJSONResponse,
    Operation,
    ServerContext,
    envelope,
    merge_metadata,
    parse_page,
    parse_states,
    parse_uuid,
)
from opentse.server.problems import ApiError
from opentse.server.schemas import TSS_STATES, states_query
from opentse.server.service_store import TssRow


def owned_tss(call: Call, raw_id: str) -> tuple[str, TssRow]:
    """The caller's TSS or 404 ``E_TSS_NOT_FOUND`` (also for other organizations')."""
    tss_id = parse_uuid(raw_id, "tss_id")
    row = call.ctx.svc.get_tss(tss_id) or _heal(call, tss_id)
    assert call.principal is not None
    if row is None or row.organization_id != call.principal.organization_id:
        raise ApiError(404, "E_TSS_NOT_FOUND", f"TSS {tss_id} not found")
    return tss_id, row


def owned_tss_owner(call: Call, raw_id: str) -> tuple[str, TssRow]:
    """``owned_tss`` for signing: ownership and env from a cache (they never change);
    the row's metadata and PUK must not be read from it. Misses take the full path."""
    tss_id = parse_uuid(raw_id, "tss_id")
    row = call.ctx.svc.get_tss_owner(tss_id)
    if row is None:
        return owned_tss(call, raw_id)
    assert call.principal is not None
    if row.organization_id != call.principal.organization_id:
        raise ApiError(404, "E_TSS_NOT_FOUND", f"TSS {tss_id} not found")
    return tss_id, row


def _heal(call: Call, tss_id: str) -> TssRow | None:
    """Rebuild a missing service row from the TSE record (a crash right after the
    engine created the TSE): the record carries the owner, env and the sealed PUK."""
    try:
        info = call.ctx.service.get(tss_id)
    except NotFoundError:
        return None
    rec = info.record
    if not rec.owner:
        return None
    sealed = rec.extra.get("svc_puk_sealed")
    puk = base64.b64decode(sealed) if sealed and info.state.lifecycle is Lifecycle.CREATED else None
    env = str(rec.extra.get("svc_env", call.principal.env if call.principal else "TEST"))
    with contextlib.suppress(ConflictError):  # healed concurrently
        call.ctx.svc.add_tss(tss_id, rec.owner, env, {}, puk, rec.created_at)
    return call.ctx.svc.get_tss(tss_id)


def tss_body(call: Call, info: TSEInfo, row: TssRow, *, puk: str | None = None) -> dict[str, Any]:
    rec, st = info.record, info.state
    body: dict[str, Any] = {
        "certificate": base64.b64encode(rec.certificate_chain[0]).decode()
        if rec.certificate_chain
        else "",
        "serial_number": rec.serial_number.hex(),
        "public_key": base64.b64encode(rec.public_key_point).decode(),
        "signature_algorithm": rec.signature_algorithm,
        "signature_timestamp_format": rec.time_format,
        "transaction_data_encoding": "UTF-8",
        "max_number_registered_clients": st.max_clients,
        "max_number_active_transactions": st.max_open_transactions,
        "supported_update_variants": "SIGNED",
        "metadata": row.metadata,
        "description": st.description,
        "state": st.lifecycle.value,
        "signature_counter": str(st.signature_counter),
        "transaction_counter": str(st.transaction_counter),
        "number_registered_clients": sum(1 for c in st.clients.values() if c.registered),
        "number_active_transactions": len(st.open_transactions),
        "time_creation": st.created_at or rec.created_at,
        "_id": rec.tse_id,
        "_type": "TSS",
        "_env": row.env,
        "_version": API_VERSION,
    }
    for name, value in (
        ("time_uninit", st.uninitialized_at),
        ("time_init", st.initialized_at),
        ("time_disable", st.disabled_at),
    ):
        if value is not None:
            body[name] = value
    if puk is not None:
        body["admin_puk"] = puk
    return body


def _info(call: Call, tss_id: str) -> TSEInfo:
    try:
        info: TSEInfo = call.ctx.service.get(tss_id)
    except NotFoundError:
        raise ApiError(404, "E_TSS_NOT_FOUND", f"TSS {tss_id} not found") from None
    return info


def create_tss(call: Call) -> tuple[int, Any] | Response:
    """PUT /tss/{tss_id}: idempotent while CREATED (the PUK is shown until deployment)."""
    assert call.principal is not None
    ctx = call.ctx
    tss_id = parse_uuid(call.path["tss_id"], "tss_id")
    body = call.body or {}
    row = ctx.svc.get_tss(tss_id) or _heal(call, tss_id)
    if row is None:
        org = call.principal.organization_id
        metadata = merge_metadata({}, body.get("metadata"))
        puk = generate_puk()
        sealed = seal(ctx.puk_key, puk, tss_id)
        extra = {"svc_env": call.principal.env, "svc_puk_sealed": base64.b64encode(sealed).decode()}
        try:
            ctx.service.create_tse(tss_id, owner=org, admin_puk=puk, extra=extra)
        except ConflictError:
            row = _heal(call, tss_id)  # a concurrent create of the same id won
            if row is None:
                raise ApiError(409, "E_TSS_CONFLICT", f"TSS {tss_id} already exists") from None
        else:
            with contextlib.suppress(ConflictError):  # healed meanwhile by a reader
                ctx.svc.add_tss(tss_id, org, call.principal.env, metadata, sealed, ctx.now())
            row = ctx.svc.get_tss(tss_id)
            assert row is not None
            return _secret_answer(tss_body(call, _info(call, tss_id), row, puk=puk))
    if row.organization_id != call.principal.organization_id:
        # another organization's TSS: answer as for every other route on it (404), so a
        # create never confirms that somebody else holds the id
        raise ApiError(404, "E_TSS_NOT_FOUND", f"TSS {tss_id} not found")
    info = _info(call, tss_id)
    if info.state.lifecycle is not Lifecycle.CREATED or row.puk_sealed is None:
        raise ApiError(409, "E_TSS_CONFLICT", f"TSS {tss_id} already exists")
    if body.get("metadata"):
        ctx.svc.set_tss_metadata(tss_id, merge_metadata(row.metadata, body["metadata"]))
        row = ctx.svc.get_tss(tss_id)
        assert row is not None
    puk = unseal(ctx.puk_key, row.puk_sealed, tss_id)  # type: ignore[arg-type]
    return _secret_answer(tss_body(call, info, row, puk=puk))


def retrieve_tss(call: Call) -> tuple[int, Any]:
    tss_id, row = owned_tss(call, call.path["tss_id"])
    return 200, tss_body(call, _info(call, tss_id), row)


def list_tss(call: Call) -> tuple[int, Any]:
    assert call.principal is not None
    page = parse_page(call, ("description", "state", "time_creation", "time_init", "time_disable"))
    states = set(parse_states(call, TSS_STATES))
    items: list[dict[str, Any]] = []
    for tss_id in call.ctx.svc.list_tss_ids(call.principal.organization_id):
        row = call.ctx.svc.get_tss(tss_id)
        try:
            info = call.ctx.service.get(tss_id)
        except NotFoundError:
            continue
        if row is None or (states and info.state.lifecycle.value not in states):
            continue
        items.append(tss_body(call, info, row))
    key = page.order_by or "time_creation"
    blank: Any = "" if key in ("description", "state") else 0
    items.sort(key=lambda b: (key not in b, b.get(key, blank)))
    if page.order == "desc":
        items.reverse()
    return 200, envelope(
        call, "TSS_LIST", items[page.offset : page.offset + page.limit], len(items)
    )


def update_tss(call: Call) -> tuple[int, Any]:
    """PATCH /tss/{tss_id}: state change (plus description / metadata)."""
    ctx = call.ctx
    tss_id, row = owned_tss(call, call.path["tss_id"])
    body = call.body
    target = Lifecycle(body["state"])
    info = _info(call, tss_id)
    current = info.state.lifecycle
    # checked first, written last: a refused state change (illegal, no admin login)
    # must not leave its metadata behind, nor refused metadata a signed state change
    metadata = merge_metadata(row.metadata, body["metadata"]) if "metadata" in body else None
    try:
        if target is current:
            pass  # metadata-only update with the same state (fiskaly v2.1.22)
        elif target is Lifecycle.INITIALIZED and current is Lifecycle.UNINITIALIZED:
            ctx.service.initialize(tss_id, body.get("description"))
        else:
            ctx.service.set_state(tss_id, target)
    except OpenTSEError:
        # a concurrent request made this change (this one's first attempt, still in
        # flight when the POS retried): answered as the same-state update it now is,
        # not 400 E_ILLEGAL_TSS_STATE_CHANGE 'cannot initialize ... INITIALIZED'
        if _info(call, tss_id).state.lifecycle is not target:
            raise
    if metadata is not None:
        ctx.svc.set_tss_metadata(tss_id, metadata)
    if target is not Lifecycle.CREATED and row.puk_sealed is not None:
        ctx.svc.drop_puk(tss_id)  # fiskaly: the PUK is invisible once the TSS left CREATED
    row2 = ctx.svc.get_tss(tss_id)
    assert row2 is not None
    return 200, tss_body(call, _info(call, tss_id), row2)


def change_admin_pin(call: Call) -> tuple[int, Any]:
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    _admin_state_check(call, tss_id)
    call.ctx.service.set_admin_pin(tss_id, call.body["admin_puk"], call.body["new_admin_pin"])
    return 200, {}


def authenticate_admin(call: Call) -> tuple[int, Any]:
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    _admin_state_check(call, tss_id)
    try:
        call.ctx.service.authenticate(tss_id, call.body["admin_pin"])
    except OpenTSEError as exc:
        if exc.code == "E_ADMIN_PIN_BLOCKED":
            raise ApiError(
                423, "E_ADMIN_PIN_BLOCKED", "the admin PIN is blocked; set a new one with the PUK"
            ) from None
        raise
    return 200, {}


def logout_admin(call: Call) -> tuple[int, Any]:
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    if _info(call, tss_id).state.lifecycle in (Lifecycle.UNINITIALIZED, Lifecycle.INITIALIZED):
        call.ctx.service.logout(tss_id)
    return 200, {}


def _admin_state_check(call: Call, tss_id: str) -> None:
    """Admin operations exist from UNINITIALIZED on (fiskaly changeAdminPin)."""
    lifecycle = _info(call, tss_id).state.lifecycle
    if lifecycle is Lifecycle.CREATED:
        raise ApiError(400, "E_TSS_NOT_INITIALIZED", "deploy the TSS first (state UNINITIALIZED)")
    if lifecycle is Lifecycle.DISABLED:
        raise ApiError(400, "E_TSS_DISABLED", "the TSS is disabled")
    if lifecycle is Lifecycle.DEFECTIVE:
        raise ApiError(423, "E_TSS_DEFECTIVE", "the TSS is defective")


def retrieve_tss_metadata(call: Call) -> tuple[int, Any]:
    _, row = owned_tss(call, call.path["tss_id"])
    return 200, row.metadata


def update_tss_metadata(call: Call) -> tuple[int, Any]:
    tss_id, row = owned_tss(call, call.path["tss_id"])
    merged = merge_metadata(row.metadata, call.body or {})
    call.ctx.svc.set_tss_metadata(tss_id, merged)
    return 200, merged


# RFC 6749 5.1: answers holding tokens (or, here, the admin PUK) are never cached
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _secret_answer(body: dict[str, Any]) -> Response:
    return FastJSONResponse(body, headers=NO_STORE)


def authenticate_api(call: Call) -> Response:
    return _secret_answer(guarded_login(call.ctx, call.body, call.client))


def guarded_login(ctx: ServerContext, body: dict[str, Any], client: str | None) -> dict[str, Any]:
    """``TokenService.login`` behind the failure limiter (auth_limit): an address or
    API key with too many recent failures is answered 429 with Retry-After before any
    secret is hashed, even when its secret is right this time (only so does guessing
    stop paying). ``client`` is the peer's address as the ASGI server saw it."""
    # refresh tokens are checked by HMAC, not a slow hash: only the address counts
    key = None if "refresh_token" in body else str(body.get("api_key", ""))
    give_up = time.monotonic() + LOGIN_QUEUE_SECONDS
    with ctx.auth_limiter_lock:
        while True:
            try:
                ticket = ctx.auth_limiter.admit(address_bucket(client), key, ctx.now())
                break
            except Busy:  # the limit is made of logins still running: wait for one
                left = give_up - time.monotonic()
                if left > 0:
                    ctx.auth_limiter_lock.wait(left)
                    continue
                raise _too_many(1) from None
            except Blocked as blocked:
                raise _too_many(blocked.retry_after) from None
    failed = False
    try:
        return ctx.tokens.login(body, ctx.now())
    except ApiError as exc:
        failed = exc.status == 401
        raise
    finally:
        with ctx.auth_limiter_lock:
            if failed:
                ctx.auth_limiter.failed(ticket)
            else:  # a login, or an error on our side: no failure of the caller's
                ctx.auth_limiter.succeeded(ticket)
            ctx.auth_limiter_lock.notify_all()


# how long a login waits for the logins of its key or address still running (tills
# sharing one key that start together), before it is answered 429 after all
LOGIN_QUEUE_SECONDS = 10.0


def _too_many(retry_after: int) -> ApiError:
    return ApiError(
        429,
        "E_TOO_MANY_REQUESTS",
        "too many failed logins, retry later",
        {"Retry-After": str(retry_after)},
    )


_LIST_QUERY = (
    ("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
    ("offset", {"type": "integer", "minimum": 0}),
    ("order", {"type": "string", "enum": ["asc", "desc"]}),
)

OPERATIONS = [
    Operation(
        "POST",
        "/auth",
        "authenticateApi",
        authenticate_api,
        "Authenticate API",
        "Authentication",
        body_schema="AuthRequest",
        body_required=True,
        response="AuthResponse",
        auth=False,
        errors=(400, 401, 429),
    ),
    Operation(
        "POST",
        "/tss/{tss_id}/admin/auth",
        "authenticateAdmin",
        authenticate_admin,
        "Authenticate admin",
        "Authentication",
        body_schema="AdminAuthRequest",
        body_required=True,
        response="EmptyObject",
        errors=(400, 401, 404, 423),
    ),
    Operation(
        "POST",
        "/tss/{tss_id}/admin/logout",
        "logoutAdmin",
        logout_admin,
        "Log out admin",
        "Authentication",
        body_schema="EmptyObject",
        response="EmptyObject",
        errors=(404,),
    ),
    Operation(
        "PUT",
        "/tss/{tss_id}",
        "createTss",
        create_tss,
        "Create a TSS",
        "Technical Security System",
        body_schema="CreateTssRequest",
        response="Tss",
        errors=(400, 404, 409),
    ),
    Operation(
        "GET",
        "/tss/{tss_id}",
        "retrieveTss",
        retrieve_tss,
        "Retrieve a TSS",
        "Technical Security System",
        response="Tss",
    ),
    Operation(
        "PATCH",
        "/tss/{tss_id}",
        "updateTss",
        update_tss,
        "Update a TSS",
        "Technical Security System",
        body_schema="UpdateTssRequest",
        body_required=True,
        response="Tss",
        errors=(400, 401, 404, 423),
    ),
    Operation(
        "PATCH",
        "/tss/{tss_id}/admin",
        "changeAdminPin",
        change_admin_pin,
        "Change or unblock the admin PIN",
        "Technical Security System",
        body_schema="ChangeAdminPinRequest",
        body_required=True,
        response="EmptyObject",
        errors=(400, 401, 404, 423),
    ),
    Operation(
        "GET",
        "/tss",
        "listTss",
        list_tss,
        "List TSS",
        "Technical Security System",
        response="TssList",
        query=(
            *_LIST_QUERY,
            (
                "order_by",
                {
                    "type": "string",
                    "enum": ["description", "state", "time_creation", "time_init", "time_disable"],
                },
            ),
            states_query(TSS_STATES),
        ),
    ),
    Operation(
        "GET",
        "/tss/{tss_id}/metadata",
        "retrieveTssMetadata",
        retrieve_tss_metadata,
        "Retrieve metadata of a TSS",
        "Technical Security System",
        response="Metadata",
    ),
    Operation(
        "PATCH",
        "/tss/{tss_id}/metadata",
        "updateTssMetadata",
        update_tss_metadata,
        "Update metadata of a TSS",
        "Technical Security System",
        body_schema="MetadataRequest",
        response="Metadata",
    ),
]
