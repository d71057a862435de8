"""The background worker of exports: a thread pool writing TAR files, with leases.

fiskaly triggerExport answers at once with the export PENDING; this worker moves it
to WORKING and COMPLETED (or ERROR) and writes ``<data>/exports/<id>.tar``. On
several API nodes over one database each export is worked on by the one node that
holds its lease (migration 0006, ``ServiceStore.claim_export``).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from opentse.engine.export import ExportFilter
from opentse.errors import OpenTSEError
from opentse.server.context import ServerContext
from opentse.server.service_store import ExportRow

log = logging.getLogger("opentse.server.export")


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
