"""Export routes and the background worker that writes the TAR files.

fiskaly triggerExport: PUT with the filters in the query returns the export in state
PENDING; it moves to WORKING and COMPLETED (or ERROR / CANCELLED) in the background.
At most 10 exports per TSS may be PENDING or WORKING (409 ``E_TOO_MANY_EXPORTS``);
only an INITIALIZED or DISABLED TSS exports (409
``E_TSS_ILLEGAL_STATE_TO_PERFORM_EXPORT``); fetching the file early is 404
``E_EXPORT_NOT_COMPLETED`` with ``Retry-After``. Exports read committed logs only
(WAL snapshot), so they never block signing.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from starlette.responses import FileResponse, Response

from opentse.engine.export import ExportFilter
from opentse.engine.state import Lifecycle
from opentse.errors import OpenTSEError
from opentse.server.context import (
    API_VERSION,
    Call,
    Operation,
    ServerContext,
    envelope,
    merge_metadata,
    parse_page,
    parse_states,
    parse_uuid,
)
from opentse.server.problems import ApiError
from opentse.server.routes_tss import owned_tss
from opentse.server.schemas import EXPORT_STATES
from opentse.server.service_store import ExportRow

log = logging.getLogger("opentse.server.export")

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


class _Cancelled(Exception):
    pass


class _CancellableFile:
    """Raises inside the engine's writer as soon as the export was cancelled."""

    def __init__(self, fh: IO[bytes], cancelled: threading.Event) -> None:
        self._fh = fh
        self._cancelled = cancelled

    def write(self, data: bytes) -> int:
        if self._cancelled.is_set():
            raise _Cancelled()
        return self._fh.write(data)

    def flush(self) -> None:
        self._fh.flush()


class ExportManager:
    """A small pool of worker threads; unfinished exports survive a restart.

    Several API nodes on one database: a node works on an export only while it
    holds the export's lease (``svc_exports.lease_owner``/``lease_until``, claimed
    atomically by ``ServiceStore.claim_export``). A heartbeat thread renews this
    node's leases every ``export_renew`` seconds and picks up exports nobody holds a
    live lease on: new ones left unqueued, and those of a node that died, once its
    lease (``export_lease`` seconds) ran out. An export another live node works on is
    left alone. A node that loses a lease (cancelled at another node, or taken over
    after this node stalled) stops writing it.
    """

    def __init__(self, ctx: ServerContext, workers: int) -> None:
        self._ctx = ctx
        self._dir = Path(ctx.config.data_dir) / "exports"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="opentse-export")
        self._cancel: dict[str, threading.Event] = {}  # queued or running here
        self._working: set[str] = set()  # claimed by this node and being written
        self._lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        # per process and manager: two processes on one host are two lease owners
        self.owner = f"{ctx.svc.node_id}:{os.getpid()}:{secrets.token_hex(4)}"
        self.lease_seconds = ctx.config.export_lease
        self.renew_seconds = ctx.config.export_renew

    def resume(self) -> None:
        """Start the heartbeat and queue every export free to claim (at start-up)."""
        with self._lock:
            if self._closed or self._heartbeat is not None:
                return
            self._heartbeat = threading.Thread(
                target=self._beat, name="opentse-export-lease", daemon=True
            )
        self._sweep()
        self._heartbeat.start()

    def trigger(self, row: ExportRow, max_running: int) -> bool:
        """Store a new PENDING export reserved for this node and queue it; False when
        ``max_running`` exports of its TSS are already PENDING or WORKING."""
        if not self._ctx.svc.add_export(
            row, max_running, owner=self.owner, lease_seconds=self.lease_seconds
        ):
            return False
        self.submit(row.export_id)
        return True

    def submit(self, export_id: str) -> None:
        with self._lock:
            if self._closed or export_id in self._cancel:
                return  # already queued or running here
            self._cancel[export_id] = threading.Event()
        self._pool.submit(self._run, export_id)

    def cancel(self, export_id: str) -> None:
        with self._lock:
            event = self._cancel.get(export_id)
        if event is not None:
            event.set()

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            for event in self._cancel.values():
                event.set()
        self._stop.set()
        if self._heartbeat is not None and self._heartbeat.is_alive():
            self._heartbeat.join(timeout=30)
        self._pool.shutdown(wait=True, cancel_futures=True)
        try:  # hand unfinished exports back at once instead of letting leases run out
            self._ctx.svc.release_export_leases(self.owner)
        except Exception:
            log.exception("releasing export leases failed (they expire on their own)")

    def _beat(self) -> None:
        while not self._stop.wait(self.renew_seconds):
            try:
                self._renew()
                self._sweep()
            except Exception:
                log.exception("export lease heartbeat failed")

    def _renew(self) -> None:
        with self._lock:
            if not self._cancel:
                return  # nothing queued or running here: no lease to renew
            before = set(self._working)  # claimed before the renewal reads its answer
        held = self._ctx.svc.renew_export_leases(self.owner, self.lease_seconds)
        with self._lock:
            lost = [self._cancel[i] for i in before - held if i in self._working]
        for event in lost:
            event.set()

    def _sweep(self) -> None:
        for export_id in self._ctx.svc.claimable_exports():
            self.submit(export_id)

    def _run(self, export_id: str) -> None:
        try:
            self._work(export_id)
        finally:
            with self._lock:
                self._cancel.pop(export_id, None)
                self._working.discard(export_id)

    def _work(self, export_id: str) -> None:
        svc = self._ctx.svc
        with self._lock:
            cancelled = self._cancel.get(export_id, threading.Event())
        if cancelled.is_set():
            return
        row = svc.claim_export(export_id, self.owner, self.lease_seconds, self._ctx.now())
        if row is None:  # finished, cancelled, or another live node holds it
            return
        with self._lock:
            self._working.add(export_id)
        final = self._dir / f"{export_id}.tar"
        # per process: a node resuming this export (several API nodes, one shared
        # exports folder) writes its own file; the final rename stays atomic
        partial = self._dir / f"{export_id}.tar.{socket.gethostname()}.{os.getpid()}.part"
        try:
            flt = ExportFilter(**row.params)
            with open(partial, "wb") as fh:
                self._ctx.service.export(row.tss_id, _CancellableFile(fh, cancelled), flt)  # type: ignore[arg-type]
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(partial, final)
            svc.update_export(
                export_id,
                only_from=("WORKING",),
                owner=self.owner,
                lease_until=None,
                state="COMPLETED",
                time_end=self._ctx.now(),
                file_path=str(final),
            )
        except _Cancelled:
            partial.unlink(missing_ok=True)
        except OpenTSEError as exc:
            partial.unlink(missing_ok=True)
            code = (
                exc.code
                if exc.code in ("E_TOO_MANY_RECORDS", "E_NO_DATA_AVAILABLE")
                else "E_BAD_REQUEST"
            )
            svc.update_export(
                export_id,
                only_from=("WORKING",),
                owner=self.owner,
                lease_until=None,
                state="ERROR",
                exception=code,
                time_error=self._ctx.now(),
            )
        except Exception:
            log.exception("export %s failed", export_id)
            partial.unlink(missing_ok=True)
            svc.update_export(
                export_id,
                only_from=("WORKING",),
                owner=self.owner,
                lease_until=None,
                state="ERROR",
                exception="E_INTERNAL",
                time_error=self._ctx.now(),
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
    for name in ("time_start", "time_end", "time_error", "exception"):
        value = getattr(row, name)
        if value is not None:
            body[name] = value
    return body


def _filter_from_query(call: Call, tss_id: str) -> dict[str, Any]:
    q = call.query
    params: dict[str, Any] = {}
    for name in _NUMERIC:
        value = q.get(name)
        if value is None or value == "":
            continue
        if not (value.isascii() and value.isdigit()) or len(value) > 16:
            raise ApiError(
                400, "E_FAILED_SCHEMA_VALIDATION", f"querystring/{name} must be a number"
            )
        params[name] = int(value)
    if (
        "maximum_number_records" in params
        and not 1 <= params["maximum_number_records"] <= MAX_RECORDS
    ):
        raise ApiError(400, "E_PARAMETER_MISMATCH", "maximum_number_records must be 1..1000000")
    client = q.get("client_id")
    if client:
        row = call.ctx.svc.get_client(parse_uuid(client, "client_id"))
        if row is None or row.tss_id != tss_id:
            raise ApiError(400, "E_CLIENT_NOT_FOUND", f"client {client} not found")
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
    try:
        ExportFilter(**params)
    except (TypeError, ValueError, OpenTSEError) as exc:
        raise ApiError(400, "E_PARAMETER_MISMATCH", str(exc)) from None
    return params


def trigger_export(call: Call) -> tuple[int, Any]:
    assert call.principal is not None
    ctx = call.ctx
    tss_id, tss = owned_tss(call, call.path["tss_id"])
    export_id = parse_uuid(call.path["export_id"], "export_id")
    existing = ctx.svc.get_export(export_id)
    if existing is not None:
        if existing.tss_id != tss_id or existing.organization_id != call.principal.organization_id:
            raise ApiError(400, "E_DUPLICATE_EXPORT", f"export {export_id} already exists")
        return 200, export_body(existing, tss.env)  # idempotent retry
    lifecycle = ctx.service.get(tss_id).state.lifecycle
    if lifecycle not in (Lifecycle.INITIALIZED, Lifecycle.DISABLED):
        raise ApiError(
            409, "E_TSS_ILLEGAL_STATE_TO_PERFORM_EXPORT", f"the TSS is {lifecycle.value}"
        )
    params = _filter_from_query(call, tss_id)
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
    if not ctx.exports.trigger(row, ctx.config.max_running_exports):
        raise ApiError(409, "E_TOO_MANY_EXPORTS", "10 exports of this TSS are pending or working")
    return 200, export_body(row, tss.env)


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
        raise ApiError(
            400,
            "E_CANCEL_EXPORT",
            f"export is {row.state}; only PENDING or WORKING can be cancelled",
        )
    call.ctx.exports.cancel(row.export_id)
    updated = call.ctx.svc.get_export(row.export_id)
    assert updated is not None
    return 200, export_body(updated, tss.env)


def retrieve_export_file(call: Call) -> Response:
    tss_id, _ = owned_tss(call, call.path["tss_id"])
    row = _owned_export(call, tss_id)
    if row.state != "COMPLETED" or row.file_path is None or not Path(row.file_path).exists():
        retry = str(call.ctx.config.retry_after_export)
        raise ApiError(
            404, "E_EXPORT_NOT_COMPLETED", f"export is {row.state}", {"Retry-After": retry}
        )
    return FileResponse(
        row.file_path,
        media_type="application/x-tar",
        filename=f"export_{row.export_id}.tar",
    )


def _list(call: Call, tss_id: str | None) -> tuple[int, Any]:
    assert call.principal is not None
    page = parse_page(
        call, ("state", "time_request", "time_start", "time_end", "time_expiration", "time_error")
    )
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
    ("client_id", {"type": "string", "format": "uuid"}),
    *(_q(n) for n in _NUMERIC if n not in ("start_date", "end_date")),
    ("start_date", {"type": "integer", "minimum": 0, "maximum": 9007199254740991}),
    ("end_date", {"type": "integer", "minimum": 0, "maximum": 9007199254740991}),
)
_LIST_QUERY = (
    ("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
    ("offset", {"type": "integer", "minimum": 0}),
    ("order", {"type": "string", "enum": ["asc", "desc"]}),
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
        body_schema="Metadata",
        response="Metadata",
    ),
]
