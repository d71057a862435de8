"""Client routes: the register (ERS) known to a TSS by UUID, written into logs by serial.

fiskaly createClient: PUT with ``serial_number`` registers the client (admin login
needed); the client UUID is unique system-wide and the serial number unique per TSS
(409 ``E_CLIENT_CONFLICT``); past 199 registered clients 403 ``E_CLIENT_LIMIT_REACHED``.
updateClient: ``state`` REGISTERED/DEREGISTERED, both logged by the TSE. The TSE's
logs carry the serial number as TR-03151 clientId; the UUID lives in our index.
"""

from __future__ import annotations

import contextlib
from typing import Any

from opentse.errors import ConflictError, OpenTSEError
from opentse.server.context import (
    API_VERSION,
    Call,
    Operation,
    envelope,
    merge_metadata,
    parse_page,
    parse_uuid,
)
from opentse.server.problems import ApiError
from opentse.server.routes_tss import owned_tss
from opentse.server.schemas import CLIENT_STATES
from opentse.server.service_store import ClientRow


def client_body(row: ClientRow, env: str) -> dict[str, Any]:
    return {
        "serial_number": row.serial_number,
        "state": row.state,
        "tss_id": row.tss_id,
        "metadata": row.metadata,
        "time_creation": row.time_creation,
        "time_update": row.time_update,
        "_id": row.client_id,
        "_type": "CLIENT",
        "_env": env,
        "_version": API_VERSION,
    }


def owned_client(call: Call, tss_id: str, raw_id: str) -> ClientRow:
    client_id = parse_uuid(raw_id, "client_id")
    row = call.ctx.svc.get_client(client_id)
    if row is None or row.tss_id != tss_id:
        raise ApiError(404, "E_CLIENT_NOT_FOUND", f"client {client_id} not found")
    return row


def create_client(call: Call) -> tuple[int, Any]:
    assert call.principal is not None
    ctx = call.ctx
    tss_id, tss = owned_tss(call, call.path["tss_id"])
    client_id = parse_uuid(call.path["client_id"], "client_id")
    serial = call.body["serial_number"]
    existing = ctx.svc.get_client(client_id)
    if existing is not None:
        if existing.tss_id == tss_id and existing.serial_number == serial:
            return 200, client_body(existing, tss.env)  # idempotent retry
        if existing.organization_id != call.principal.organization_id:
            # another organization's client: 404 as on every route on it (and as
            # createTss does), so a create never confirms that somebody holds the id
            raise ApiError(404, "E_CLIENT_NOT_FOUND", f"client {client_id} not found")
        raise ApiError(409, "E_CLIENT_CONFLICT", f"client {client_id} already exists")
    by_serial = ctx.svc.client_by_serial(tss_id, serial)
    if by_serial is not None:
        if by_serial.client_id == client_id:  # stored since the read above: a retry
            return 200, client_body(by_serial, tss.env)
        raise ApiError(
            409, "E_CLIENT_CONFLICT", "a client with this serial_number exists on this TSS"
        )
    # before the TSE signs registerClient: refused metadata must not leave a client
    # registered in the TSE that the API does not know
    metadata = merge_metadata({}, call.body.get("metadata"))
    state = ctx.service.get(tss_id).state
    known = state.clients.get(serial)
    if known is None or not known.registered:
        # registered since the read above: by this request's own first attempt still
        # in flight (a POS that timed out and sent it again), or by another client id
        # with this serial, which the insert below tells apart
        with contextlib.suppress(ConflictError):
            ctx.service.register_client(tss_id, serial)
    now = ctx.now()
    row = ClientRow(
        client_id, tss_id, call.principal.organization_id, serial, "REGISTERED", metadata, now, now
    )
    try:
        ctx.svc.add_client(row)
    except ConflictError:
        # a concurrent create stored its row first: the same request is answered as
        # the retry it is (it was 409 E_CLIENT_CONFLICT, which a POS never retries)
        raced = ctx.svc.get_client(client_id)
        if raced is None or raced.tss_id != tss_id or raced.serial_number != serial:
            raise
        return 200, client_body(raced, tss.env)
    return 200, client_body(row, tss.env)


def retrieve_client(call: Call) -> tuple[int, Any]:
    tss_id, tss = owned_tss(call, call.path["tss_id"])
    return 200, client_body(owned_client(call, tss_id, call.path["client_id"]), tss.env)


def update_client(call: Call) -> tuple[int, Any]:
    ctx = call.ctx
    tss_id, tss = owned_tss(call, call.path["tss_id"])
    row = owned_client(call, tss_id, call.path["client_id"])
    target = call.body["state"]
    # before the TSE signs the state change: refused metadata used to leave the client
    # deregistered in the TSE while the API still said REGISTERED
    metadata = merge_metadata(row.metadata, call.body.get("metadata"))
    if target != row.state:
        try:
            if target == "DEREGISTERED":
                ctx.service.deregister_client(tss_id, row.serial_number)
            else:
                ctx.service.register_client(tss_id, row.serial_number)
        except OpenTSEError:
            # a concurrent request made the same change (this one's first attempt,
            # still in flight when the POS retried): the TSE has the client as asked,
            # so this is answered as that retry, not 400 E_CLIENT_DEREGISTERED / 409
            known = ctx.service.get(tss_id).state.clients.get(row.serial_number)
            if known is None or known.registered != (target == "REGISTERED"):
                raise
    ctx.svc.update_client(row.client_id, target, metadata, ctx.now())
    updated = ctx.svc.get_client(row.client_id)
    assert updated is not None
    return 200, client_body(updated, tss.env)


def _list(call: Call, tss_id: str | None) -> tuple[int, Any]:
    assert call.principal is not None
    page = parse_page(call, ("serial_number", "time_creation"))
    # fiskaly's client lists take one `state` and no `states[]` (v2.1.35 listClients):
    # `states[]` is not read, as fiskaly does not (tests/server/test_server_client_list_states.py)
    state = call.query.get("state")
    if state is not None and state not in CLIENT_STATES:
        raise ApiError(
            400,
            "E_FAILED_SCHEMA_VALIDATION",
            "querystring/state must be REGISTERED or DEREGISTERED",
        )
    rows, total = call.ctx.svc.list_clients(
        call.principal.organization_id, tss_id, page, call.query.get("serial_number"), state
    )
    return 200, envelope(
        call, "CLIENT_LIST", [client_body(r, call.principal.env) for r in rows], total
    )


def list_clients(call: Call) -> tuple[int, Any]:
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    return _list(call, tss_id)


def list_all_clients(call: Call) -> tuple[int, Any]:
    return _list(call, None)


def retrieve_client_metadata(call: Call) -> tuple[int, Any]:
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    return 200, owned_client(call, tss_id, call.path["client_id"]).metadata


def update_client_metadata(call: Call) -> tuple[int, Any]:
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    row = owned_client(call, tss_id, call.path["client_id"])
    merged = merge_metadata(row.metadata, call.body or {})
    call.ctx.svc.update_client(row.client_id, row.state, merged, row.time_update)
    return 200, merged


_LIST_QUERY = (
    ("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
    ("offset", {"type": "integer", "minimum": 0}),
    ("order", {"type": "string", "enum": ["asc", "desc"]}),
    ("order_by", {"type": "string", "enum": ["serial_number", "time_creation"]}),
    ("state", {"type": "string", "enum": CLIENT_STATES}),
    ("serial_number", {"type": "string"}),
)

OPERATIONS = [
    Operation(
        "PUT",
        "/tss/{tss_id}/client/{client_id}",
        "createClient",
        create_client,
        "Create a client",
        "Clients",
        body_schema="CreateClientRequest",
        body_required=True,
        response="Client",
        errors=(400, 401, 403, 404, 409, 423),
    ),
    Operation(
        "GET",
        "/tss/{tss_id}/client/{client_id}",
        "retrieveClient",
        retrieve_client,
        "Retrieve a client",
        "Clients",
        response="Client",
    ),
    Operation(
        "PATCH",
        "/tss/{tss_id}/client/{client_id}",
        "updateClient",
        update_client,
        "Update a client",
        "Clients",
        body_schema="UpdateClientRequest",
        body_required=True,
        response="Client",
        errors=(400, 401, 403, 404, 423),
    ),
    Operation(
        "GET",
        "/tss/{tss_id}/client",
        "listClients",
        list_clients,
        "List clients of a TSS",
        "Clients",
        response="ClientList",
        query=_LIST_QUERY,
    ),
    Operation(
        "GET",
        "/client",
        "listAllClients",
        list_all_clients,
        "List all clients",
        "Clients",
        response="ClientList",
        query=_LIST_QUERY,
    ),
    Operation(
        "GET",
        "/tss/{tss_id}/client/{client_id}/metadata",
        "retrieveClientMetadata",
        retrieve_client_metadata,
        "Retrieve metadata of a client",
        "Clients",
        response="Metadata",
    ),
    Operation(
        "PATCH",
        "/tss/{tss_id}/client/{client_id}/metadata",
        "updateClientMetadata",
        update_client_metadata,
        "Update metadata of a client",
        "Clients",
        body_schema="MetadataRequest",
        response="Metadata",
    ),
]
