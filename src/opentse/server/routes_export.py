"""Export routes; the background worker that writes the TAR files is export_jobs.py.

fiskaly triggerExport: PUT with the filters in the query returns the export in state
PENDING; it moves to WORKING and COMPLETED (or ERROR / CANCELLED) in the background.
At most 10 exports per TSS may be PENDING or WORKING (409 ``E_TOO_MANY_EXPORTS``);
only an INITIALIZED or DISABLED TSS exports (409
``E_TSS_ILLEGAL_STATE_TO_PERFORM_EXPORT``); fetching the file early is 404
``E_EXPORT_NOT_COMPLETED`` with ``Retry-After``. Exports read committed logs only
(WAL snapshot), so they never block signing.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from starlette.responses import (
    FileResponse,
    MalformedRangeHeader,
    RangeNotSatisfiable,
    Response,
)

from opentse.engine.export import ExportFilter
from opentse.engine.state import Lifecycle
from opentse.errors import ConflictError, OpenTSEError
from opentse.server.context import (
    API_VERSION,
    Call,
    Operation,
    envelope,
    merge_metadata,
    parse_page,
    parse_states,
    parse_uuid,
)
from opentse.server.export_jobs import ExportManager as ExportManager  # app.py imports it here
from opentse.server.problems import ApiError
from opentse.server.routes_tss import NO_STORE, owned_tss
from opentse.server.schemas import EXPORT_EXCEPTIONS, EXPORT_STATES, states_query
from opentse.server.service_store import ExportRow

MAX_RECORDS = 1_000_000
_NUMERIC = (
    "transaction_number",
    "start_transaction_number",
    "end_transaction_number",
    "start_signature_counter",
    "end_signature_counter",
    "maximum_number_records",
    "start_date",
    "end_date",
)


def export_body(row: ExportRow, env: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "state": row.state,
        "time_request": row.time_request,
        "tss_id": row.tss_id,
        "metadata": row.metadata,
        "_id": row.export_id,
        "_type": "EXPORT",
        "_env": env,
        "_version": API_VERSION,
    }
    for name in ("time_start", "time_end", "time_error"):
        value = getattr(row, name)
        if value is not None:
            body[name] = value
    if row.exception is not None:
        body["exception"] = shown_exception(row.exception)
    return body


def shown_exception(code: str) -> str:
    """fiskaly's Export.exception is an enum (a generated client refuses other values):
    the opentse codes an export keeps for the service's own failures (the store, the
    exports folder: export_jobs) are shown as its E_INTERNAL."""
    return code if code in EXPORT_EXCEPTIONS else "E_INTERNAL"


def _shown(params: dict[str, Any]) -> str:
    """An export's filters as a request names them (client_id: the client's serial
    number, as kept)."""
    parts = [
        f"client serial_number {v}" if k == "client_id" else f"{k}={v}"
        for k, v in sorted(params.items())
    ]
    return ", ".join(parts) or "none: all data"


def _filter_from_query(call: Call, tss_id: str) -> dict[str, Any]:
    q = call.query
    params: dict[str, Any] = {}
    for name in _NUMERIC:
        value = q.get(name)
        if value is None or value == "":
            continue
        if not (value.isascii() and value.isdigit()) or len(value) > 16:
            raise ApiError(  # -1 is a number too: say which ones are meant
                400,
                "E_FAILED_SCHEMA_VALIDATION",
                f"querystring/{name} must be a whole number >= 0 (at most 16 digits)",
            )
        params[name] = int(value)
    if (
        "maximum_number_records" in params
        and not 1 <= params["maximum_number_records"] <= MAX_RECORDS
    ):
        raise ApiError(400, "E_PARAMETER_MISMATCH", "maximum_number_records must be 1..1000000")
    client = q.get("client_id")
    if client:
        # fiskaly's TriggerExportsQuerystring types client_id as a plain string (no
        # uuid format): one that is no UUID names no client, the same answer as an
        # unknown UUID; its text is not echoed
        try:
            client_id: str | None = parse_uuid(client, "client_id")
        except ApiError:
            client_id = None
        row = call.ctx.svc.get_client(client_id) if client_id else None
        if row is None or row.tss_id != tss_id:
            named = f"client {client_id}" if client_id else "client_id"
            raise ApiError(400, "E_CLIENT_NOT_FOUND", f"{named} names no client of this TSS")
        params = {"client_id": row.serial_number}  # fiskaly: other parameters are ignored
    numbers = any(
        k in params
        for k in ("transaction_number", "start_transaction_number", "end_transaction_number")
    )
    dates = any(k in params for k in ("start_date", "end_date"))
    if numbers and dates:
        raise ApiError(
            400, "E_PARAMETER_MISMATCH", "transaction number and date filters exclude each other"
        )
    try:  # refused now, not as a job that ends E_BAD_REQUEST (a range ending first)
        ExportFilter(**params).validate()
    except OpenTSEError as exc:
        raise ApiError(400, "E_PARAMETER_MISMATCH", exc.message) from None
    except (TypeError, ValueError) as exc:
        raise ApiError(400, "E_PARAMETER_MISMATCH", str(exc)) from None
    return params


def trigger_export(call: Call) -> tuple[int, Any]:
    assert call.principal is not None
    ctx = call.ctx
    tss_id, tss = owned_tss(call, call.path["tss_id"])
    export_id = parse_uuid(call.path["export_id"], "export_id")
    existing = ctx.svc.get_export(export_id)
    if existing is not None:
        return _existing(call, existing, tss_id, tss.env)
    state = ctx.service.get(tss_id).state
    lifecycle = state.lifecycle
    if lifecycle not in (Lifecycle.INITIALIZED, Lifecycle.DISABLED, Lifecycle.DEFECTIVE):
        raise ApiError(
            409, "E_TSS_ILLEGAL_STATE_TO_PERFORM_EXPORT", f"the TSS is {lifecycle.value}"
        )
    params = _filter_from_query(call, tss_id)
    number = params.get("transaction_number")
    if number is not None and not 1 <= number <= state.transaction_counter:
        # fiskaly's triggerExport 400 E_TX_NOT_FOUND, as E_CLIENT_NOT_FOUND for a client
        raise ApiError(400, "E_TX_NOT_FOUND", f"this TSS has no transaction {number}")
    row = ExportRow(
        export_id,
        tss_id,
        call.principal.organization_id,
        "PENDING",
        params,
        None,
        ctx.now(),
        None,
        None,
        None,
        None,
        merge_metadata({}, (call.body or {}).get("metadata")),
    )
    try:
        added = ctx.exports.trigger(row, ctx.config.max_running_exports)
    except ConflictError:  # the id was stored since the read above
        added = False
    if not added:
        # a retry that overtook its own first request (a POS timed out and sent it
        # again) found no export above; the first stored it since, or took the last
        # of the running slots: it is answered as the retry it is, not 400/409
        raced = ctx.svc.get_export(export_id)
        if raced is not None:
            return _existing(call, raced, tss_id, tss.env)
        raise ApiError(409, "E_TOO_MANY_EXPORTS", "10 exports of this TSS are pending or working")
    return 200, export_body(row, tss.env)


def _existing(call: Call, existing: ExportRow, tss_id: str, env: str) -> tuple[int, Any]:
    """triggerExport of an export_id that is stored: the idempotent retry of the same
    request, else refused."""
    assert call.principal is not None
    export_id = existing.export_id
    if existing.organization_id != call.principal.organization_id:
        # another organization's export: 404 as on every route on it, never
        # "already exists" (that would confirm somebody holds the id)
        raise ApiError(404, "E_EXPORT_NOT_FOUND", f"export {export_id} not found")
    if existing.tss_id != tss_id:
        raise ApiError(400, "E_DUPLICATE_EXPORT", f"export {export_id} already exists")
    if _filter_from_query(call, tss_id) != existing.params:
        # the retry of another request: answering the export there is would hand
        # a POS asking for numbers 1-500 the file of 1-100 as if it were that
        raise ApiError(
            400,
            "E_DUPLICATE_EXPORT",
            f"export {export_id} exists with other filters ({_shown(existing.params)});"
            " a new export needs a new export_id",
        )
    return 200, export_body(existing, env)  # idempotent retry


def _owned_export(call: Call, tss_id: str) -> ExportRow:
    export_id = parse_uuid(call.path["export_id"], "export_id")
    row = call.ctx.svc.get_export(export_id)
    if row is None or row.tss_id != tss_id:
        raise ApiError(404, "E_EXPORT_NOT_FOUND", f"export {export_id} not found")
    return row


def retrieve_export(call: Call) -> tuple[int, Any]:
    tss_id, tss = owned_tss(call, call.path["tss_id"])
    return 200, export_body(_owned_export(call, tss_id), tss.env)


def cancel_export(call: Call) -> tuple[int, Any]:
    tss_id, tss = owned_tss(call, call.path["tss_id"])
    row = _owned_export(call, tss_id)
    if not call.ctx.svc.update_export(
        row.export_id, only_from=("PENDING", "WORKING"), state="CANCELLED"
    ):
        # the state that refused it, read again: the one read above was PENDING or
        # WORKING when a concurrent cancel (or the end of the export) came between,
        # and 'export is WORKING; only PENDING or WORKING can be cancelled' says nothing
        now = call.ctx.svc.get_export(row.export_id)
        raise ApiError(
            400,
            "E_CANCEL_EXPORT",
            f"export is {(now or row).state}; only PENDING or WORKING can be cancelled",
        )
    call.ctx.exports.cancel(row.export_id)
    # over: no attempt can record a file any more, so the part files of the nodes
    # that were writing it (this one, or one that stalled or died) go at once
    call.ctx.exports.tidy(row.export_id)
    updated = call.ctx.svc.get_export(row.export_id)
    assert updated is not None
    return 200, export_body(updated, tss.env)


def export_file(row: ExportRow, data_dir: Path) -> Path | None:
    """The file the COMPLETED update recorded (export_jobs: the one attempt that still
    held the lease), or None. Its name is unique, so a node that mounts the shared
    exports folder elsewhere than the node that wrote it finds it there by name."""
    if row.state != "COMPLETED" or row.file_path is None:
        return None
    recorded = Path(row.file_path)
    if recorded.is_file():
        return recorded
    here = data_dir / "exports" / recorded.name
    return here if here.is_file() else None


def retrieve_export_file(call: Call) -> Response:
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    row = _owned_export(call, tss_id)
    path = export_file(row, Path(call.ctx.config.data_dir))
    if path is None and row.state in ("PENDING", "WORKING"):
        retry = str(call.ctx.config.retry_after_export)
        raise ApiError(
            404, "E_EXPORT_NOT_COMPLETED", f"export is {row.state}", {"Retry-After": retry}
        )
    if path is None:  # it will never complete: no Retry-After to poll on for ever
        why = ""
        if row.exception:  # the opentse code too where E_INTERNAL stands for it
            shown = shown_exception(row.exception)
            why = f" ({shown})" if shown == row.exception else f" ({shown}: {row.exception})"
        if row.state == "COMPLETED" and row.file_path:
            # written, but not here: another node's exports folder, or removed since
            message = (
                f"export is COMPLETED but its file {Path(row.file_path).name} is not in"
                " this server's exports folder (several nodes must share one exports"
                " folder, docs/scaling.md; or the file was removed): trigger a new export"
            )
        else:
            message = f"export is {row.state}{why} and has no file; trigger a new export"
        raise ApiError(404, "E_EXPORT_NOT_COMPLETED", message)
    # an organization's receipts: kept in no cache (with Last-Modified alone a browser
    # till could answer a later download from its disk cache), as the dashboard's
    return ExportFileResponse(
        path,
        media_type="application/x-tar",
        filename=f"export_{row.export_id}.tar",
        headers=NO_STORE,
    )


class ExportFileResponse(FileResponse):
    """The TAR with ``Range`` answered as RFC 9110 (section 14.2) asks, errors as the
    API's: a range it cannot read (another unit, a malformed set) is ignored, the
    whole file sent; one past the end is 416 ``E_RANGE_NOT_SATISFIABLE`` with
    ``Content-Range: bytes */size``. Starlette answered both with text/plain (400, 416)
    that no client of the API can branch on."""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader:
            return []  # no range: the whole file
        except RangeNotSatisfiable:  # raised before the answer starts: the API's handler
            # RFC 9110 14.2: ranges that start past the end are left out; 416 only when
            # none is left (Starlette refused the whole set for one of them)
            fitting = _fitting_ranges(http_range, file_size)
            if fitting:
                with contextlib.suppress(MalformedRangeHeader, RangeNotSatisfiable):
                    return super()._parse_range_header(fitting, file_size)
            raise ApiError(
                416,
                "E_RANGE_NOT_SATISFIABLE",
                f"the export file has {file_size} octets: no range asked for starts in it",
                {"Content-Range": f"bytes */{file_size}"},
            ) from None


def _fitting_ranges(http_range: str, file_size: int) -> str:
    """The ``bytes=`` set without the ranges that start at or past ``file_size``
    ("" when none is left or the header is no byte-range set)."""
    unit, _, ranges = http_range.partition("=")
    if unit.strip().lower() != "bytes":
        return ""
    kept = []
    for part in ranges.split(","):
        start, dash, _end = part.strip().partition("-")
        if not dash:
            return ""
        if start.strip() == "" or (start.strip().isdigit() and int(start) < file_size):
            kept.append(part.strip())  # a suffix range (-N) always fits a non-empty file
    return "bytes=" + ",".join(kept) if kept and file_size > 0 else ""


_ORDER_FIELDS = ("state", "time_request", "time_start", "time_end", "time_expiration", "time_error")


def _list(call: Call, tss_id: str | None) -> tuple[int, Any]:
    assert call.principal is not None
    page = parse_page(call, _ORDER_FIELDS)
    states = parse_states(call, EXPORT_STATES)
    rows, total = call.ctx.svc.list_exports(call.principal.organization_id, page, tss_id, states)
    return 200, envelope(
        call, "EXPORT_LIST", [export_body(r, call.principal.env) for r in rows], total
    )


def list_exports(call: Call) -> tuple[int, Any]:
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    return _list(call, tss_id)


def list_all_exports(call: Call) -> tuple[int, Any]:
    return _list(call, None)


def retrieve_export_metadata(call: Call) -> tuple[int, Any]:
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    return 200, _owned_export(call, tss_id).metadata


def update_export_metadata(call: Call) -> tuple[int, Any]:
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    row = _owned_export(call, tss_id)
    merged = merge_metadata(row.metadata, call.body or {})
    call.ctx.svc.update_export(row.export_id, metadata=merged)
    return 200, merged


def _q(name: str) -> tuple[str, dict[str, Any]]:
    return name, {"type": "string", "pattern": r"^\d+$"}


_TRIGGER_QUERY = (
    ("client_id", {"type": "string"}),  # as fiskaly's: no uuid format
    *(_q(n) for n in _NUMERIC if n not in ("start_date", "end_date")),
    ("start_date", {"type": "integer", "minimum": 0, "maximum": 9007199254740991}),
    ("end_date", {"type": "integer", "minimum": 0, "maximum": 9007199254740991}),
)
_LIST_QUERY = (
    ("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
    ("offset", {"type": "integer", "minimum": 0}),
    ("order", {"type": "string", "enum": ["asc", "desc"]}),
    ("order_by", {"type": "string", "enum": list(_ORDER_FIELDS)}),
    states_query(EXPORT_STATES),
)
_EXP = "/tss/{tss_id}/export/{export_id}"

OPERATIONS = [
    Operation(
        "PUT",
        _EXP,
        "triggerExport",
        trigger_export,
        "Trigger an export",
        "Data Exports",
        body_schema="CreateTssRequest",
        response="Export",
        errors=(400, 401, 404, 409),
        query=_TRIGGER_QUERY,
    ),
    Operation(
        "GET",
        _EXP,
        "retrieveExport",
        retrieve_export,
        "Retrieve an export",
        "Data Exports",
        response="Export",
    ),
    Operation(
        "DELETE",
        _EXP,
        "cancelExport",
        cancel_export,
        "Cancel an export",
        "Data Exports",
        response="Export",
    ),
    Operation(
        "GET",
        _EXP + "/file",
        "retrieveExportFile",
        retrieve_export_file,
        "Retrieve the TAR file",
        "Data Exports",
        response_media="application/x-tar",
        errors=(400, 401, 404, 416),
    ),
    Operation(
        "GET",
        "/tss/{tss_id}/export",
        "listExports",
        list_exports,
        "List exports of a TSS",
        "Data Exports",
        response="ExportList",
        query=_LIST_QUERY,
    ),
    Operation(
        "GET",
        "/export",
        "listAllExports",
        list_all_exports,
        "List all exports",
        "Data Exports",
        response="ExportList",
        query=_LIST_QUERY,
    ),
    Operation(
        "GET",
        _EXP + "/metadata",
        "retrieveExportMetadata",
        retrieve_export_metadata,
        "Retrieve metadata of an export",
        "Data Exports",
        response="Metadata",
    ),
    Operation(
        "PATCH",
        _EXP + "/metadata",
        "updateExportMetadata",
        update_export_metadata,
        "Update metadata of an export",
        "Data Exports",
        body_schema="MetadataRequest",
        response="Metadata",
    ),
]
