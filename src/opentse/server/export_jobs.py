"""The background worker of exports: a thread pool writing TAR files, with leases.

fiskaly triggerExport answers at once with the export PENDING; this worker moves it
to WORKING and COMPLETED (or ERROR) and writes a TAR file into ``<data>/exports/``.
On several API nodes over one database each export is worked on by the one node that
holds its lease (migration 0006, ``ServiceStore.claim_export``).

Files are never overwritten: each attempt writes ``<id>.<node>.part`` and renames it
to a name of its own, ``<id>.<node>.<random>.tar``; the COMPLETED update records that
name only while the writer still holds the lease (the database decides), and a writer
whose update is refused deletes its file. So a node that stalled past its lease (GC
pause, suspended VM) and comes back can neither replace nor publish a file while
another node took the export over and published its own.

A node that takes an export over from a node whose lease ran out, and a node that
brings an export to its end, delete the export's attempt files of other nodes in the
exports folder (``remove_stale_attempts``): a dead node's part file does not wait for
the next start-up's ``remove_orphans``.

An export that fails on the store or the exports folder ends ERROR with ``exception``
E_INTERNAL (fiskaly's Export.exception is an enum: the service failed, not the
request); the row keeps the honest opentse code (``E_STORAGE_UNAVAILABLE``,
``E_STORAGE_BUSY``, ``E_STORAGE``, ``E_EXPORT_WRITE_FAILED``), which the log line and
the file route's message name. A database that is away or busy is tried again:
EXPORT_ATTEMPTS attempts per node, one heartbeat apart, then ERROR.

While the database is away the heartbeat logs one line when the outage begins and one
when it is over (``OutageLog``), and a node that stops waits at most a few seconds
for it (``shutdown``): unfinished exports' leases run out on their own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from opentse.crypto.private_file import private_dir
from opentse.engine.export import ExportFilter, plan
from opentse.errors import OpenTSEError, ProtocolError, StorageError
from opentse.server.context import ServerContext, refuse_if_stale
from opentse.server.problems import from_opentse_error
from opentse.server.service_store import ExportRow

log = logging.getLogger("opentse.server.export")

# an attempt's file: "<id>.<node>.part", "<id>.<node>.<random>.tar", and the files
# of before: "<id>.tar.<host>.<pid>.part" and the final "<id>.tar" (kept if recorded)
_ATTEMPT_FILE = re.compile(
    r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(\..+)?\.(part|tar)$"
)


EXPORT_ATTEMPTS = 3  # attempts per node at an export while the database is away or busy
TRANSIENT = frozenset(("E_STORAGE_UNAVAILABLE", "E_STORAGE_BUSY"))
STOP_WAIT = 2.0  # seconds a stopping node waits for its heartbeat and export workers
WRITE_FAILED = "E_EXPORT_WRITE_FAILED"  # the exports folder could not be written
# what the database's failures look like here: the engine store's StorageError, the
# service tables' sqlite3 errors (PostgreSQL: pg_service.DatabaseUnavailable is both)
DATABASE_ERRORS = (StorageError, sqlite3.OperationalError)


class _Cancelled(Exception):
    pass


class _Workers:
    """The export worker threads: daemons, so an export stuck for good (an exports
    folder on a hung network share, a database that accepts but never answers) does
    not keep a stopping node's process alive (a ThreadPoolExecutor's threads are
    joined when the interpreter exits, for ever); its lease runs out and another
    node, or this one restarted, writes it."""

    def __init__(self, size: int) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[..., object], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._size = size
        for n in range(size):
            threading.Thread(target=self._loop, name=f"opentse-export-{n}", daemon=True).start()

    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        self._queue.put((fn, args))

    def shutdown(self) -> list[tuple[Any, ...]]:
        """Stop the threads once their work is over; returns the arguments of the
        work still queued (dropped, never started)."""
        dropped: list[tuple[Any, ...]] = []
        with contextlib.suppress(queue.Empty):
            while True:
                item = self._queue.get_nowait()
                if item is not None:
                    dropped.append(item[1])
        for _ in range(self._size):
            self._queue.put(None)
        return dropped

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            fn, args = item
            try:
                fn(*args)
            except Exception:
                log.exception("export worker failed")


class OutageLog:
    """One warning when the database stops answering ``what``, one when it is back:
    an admin reads when an outage began and ended, not a traceback per retry."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._since: float | None = None

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        if self._since is not None:
            return
        self._since = time.monotonic()
        code = getattr(exc, "code", type(exc).__name__)
        text = getattr(exc, "message", str(exc)).strip().splitlines()
        log.warning(
            "%s: the database is not available (%s: %s); retrying until it answers",
            self._what,
            code,
            text[0] if text else "",
        )

    def answered(self) -> None:
        if self._since is None:
            return
        took = time.monotonic() - self._since
        self._since = None
        log.warning("%s: the database is available again (away %.0f s)", self._what, took)


def _require_data(ctx: ServerContext, tss_id: str, flt: ExportFilter) -> None:
    """An export whose filters match no log ends ERROR ``E_NO_DATA_AVAILABLE``
    (fiskaly's ExportException), before its exportData log is signed: no TAR of
    only certificates that looks like a successful export of nothing. The count is
    the engine's own selection (``plan``: a count, or a transaction range's logs
    read once more; exports are rare, signing is not slowed)."""
    if plan(ctx.store, tss_id, flt).count == 0:
        raise ProtocolError("no log matches the export's filters", code="E_NO_DATA_AVAILABLE")


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
        # every organization's TSE data: 0700 also in a data folder made 0755
        self._dir = private_dir(Path(ctx.config.data_dir) / "exports")
        self._pool = _Workers(workers)
        self._cancel: dict[str, threading.Event] = {}  # queued or running here
        self._working: set[str] = set()  # claimed by this node and being written
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when a run ends
        self._closed = False
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        # per process and manager: two processes on one host are two lease owners
        self.owner = f"{ctx.svc.node_id}:{os.getpid()}:{secrets.token_hex(4)}"
        self._tag = _tag_of(self.owner)  # in this node's file names
        self.lease_seconds = ctx.config.export_lease
        self.renew_seconds = ctx.config.export_renew
        self._outage = OutageLog("export lease heartbeat")
        self._attempts: dict[str, int] = {}  # failed attempts on a database away or busy

    def part_path(self, export_id: str) -> Path:
        """Where this node writes ``export_id`` until it is complete: a name no other
        node (or manager in this process) uses; one attempt per export at a time."""
        return self._dir / f"{export_id}.{self._tag}.part"

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or running on this node; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._cancel, timeout)

    def remove_orphans(self) -> int:
        """Delete the attempt files of exports that are over but did not record them
        (a node died or lost its lease between writing and its update; part files and
        unrecorded ``<id>.tar`` of the naming before). Files of PENDING or WORKING
        exports stay: a live node may be writing them. An export that is over never
        records another file, so this cannot race with a writer. Returns how many
        files were deleted."""
        files = attempt_files(self._dir)
        removed = 0
        for export_id, (state, recorded) in self._ctx.svc.export_files(list(files)).items():
            if state in ("PENDING", "WORKING"):
                continue
            keep = Path(recorded).name if recorded else None  # nodes may mount it elsewhere
            removed += _remove(p for p in files[export_id] if p.name != keep)
        return removed

    def remove_stale_attempts(self, export_id: str) -> int:
        """Delete the attempt files of ``export_id`` in this node's exports folder that
        no attempt can still record: all but the recorded file once the export is over
        (COMPLETED, ERROR, CANCELLED: final, nothing is recorded after), and while it is
        PENDING or WORKING all but those of the lease's owner (the one node whose
        COMPLETED update the database can still apply). Without an owner nothing is
        deleted: any node may claim it at once.

        A slow owner of before (its lease ran out, another node took over) whose file is
        deleted under it finds its rename failing or its update refused, so it never
        records a deleted file. Only the lease's owner at the time of the database read
        is spared; a node that takes the export over between that read and the unlink
        finds its part file gone and hands the export back (``_work``). Returns how many
        files were deleted."""
        row = self._ctx.svc.get_export(export_id)
        if row is None:
            return 0
        running = row.state in ("PENDING", "WORKING")
        if running and row.lease_owner is None:
            return 0
        owner_tag = _tag_of(row.lease_owner) if running and row.lease_owner else None
        recorded = Path(row.file_path).name if row.file_path and not running else None
        removed = _remove(
            path
            for path in attempt_files(self._dir, export_id).get(export_id, [])
            if path.name != recorded and (owner_tag is None or _attempt_tag(path.name) != owner_tag)
        )
        if removed:
            log.info("export %s: removed %d stale attempt files", export_id, removed)
        return removed

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
        ``max_running`` exports of its TSS are already PENDING or WORKING. 503
        E_SCHEMA_NEWER while the node is older than its database (the API's PUT is
        refused before, the dashboard's export form here)."""
        refuse_if_stale(self._ctx)
        try:
            added = self._ctx.svc.add_export(
                row, max_running, owner=self.owner, lease_seconds=self.lease_seconds
            )
        except StorageError as exc:  # the API's answer for the dashboard's form too
            raise from_opentse_error(exc, self._ctx.storage_failures) from None
        if not added:
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
        """Cancel what runs here and hand the leases back, waiting a few seconds at
        most: with the database away the heartbeat and the workers may be waiting for
        it, and their exports are taken up again once the leases ran out."""
        with self._lock:
            self._closed = True
            for event in self._cancel.values():
                event.set()
        self._stop.set()
        if self._heartbeat is not None and self._heartbeat.is_alive():
            self._heartbeat.join(timeout=STOP_WAIT)
        for args in self._pool.shutdown():  # queued, never started: nothing to wait for
            with self._lock:
                self._cancel.pop(str(args[0]) if args else "", None)
        if not self.wait_idle(STOP_WAIT):
            log.warning("stopping with exports still running; their leases run out")
        if self._outage.down:
            return  # nothing to hand back through a database that is away
        # hand unfinished exports back at once instead of letting leases run out; in a
        # thread of its own: a database that accepts but never answers holds a query
        # for ever (no pool wait applies to a connection it already gave out)
        releasing = threading.Thread(
            target=self._release, name="opentse-export-release", daemon=True
        )
        releasing.start()
        releasing.join(timeout=STOP_WAIT)
        if releasing.is_alive():
            log.warning("releasing export leases: no answer from the database; they run out")

    def _release(self) -> None:
        try:
            self._ctx.svc.forget_node(self.owner)
            self._ctx.svc.release_export_leases(self.owner)
        except DATABASE_ERRORS as exc:
            log.warning("releasing export leases failed (they run out on their own): %s", exc)
        except Exception:
            log.exception("releasing export leases failed (they expire on their own)")

    def _beat(self) -> None:
        try:  # in this thread, so a large exports folder does not delay start-up
            if removed := self.remove_orphans():
                log.info("removed %d orphaned export files", removed)
        except Exception:
            log.exception("removing orphaned export files failed")
        # a database that is away is noticed in seconds, not after a request's 30
        wait = max(1.0, min(self.renew_seconds, 5.0))
        try:  # this node is alive from its start on, not after the first interval
            with self._ctx.svc.waiting(wait):
                self._beat_node()
        except DATABASE_ERRORS as exc:
            self._outage.failed(exc)
        except Exception:
            log.exception("export lease heartbeat failed")
        while not self._stop.wait(self.renew_seconds):
            try:
                with self._ctx.svc.waiting(wait):
                    self._beat_node()
                    self._renew()
                    self._sweep()
            except DATABASE_ERRORS as exc:
                if not self._stop.is_set():
                    self._outage.failed(exc)
                continue
            except Exception:
                log.exception("export lease heartbeat failed")
                continue
            self._outage.answered()

    def _beat_node(self) -> None:
        """This node is alive; and it stops writing (503 E_SCHEMA_NEWER) while its
        database has migrations its code does not know (a forced migrate under it)."""
        from opentse import __version__
        from opentse.storage.nodes import schema_level, stale_message

        self._ctx.svc.beat_node(
            self.owner, os.getpid(), schema_level(), __version__, self.renew_seconds
        )
        stale = stale_message(self._ctx.svc.schema_versions())
        if stale != self._ctx.stale_schema:
            if stale is not None:
                log.error("E_SCHEMA_NEWER: %s", stale)
            else:
                log.warning("the database's schema is known to this node again: it writes")
            self._ctx.stale_schema = stale

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
        if self._ctx.stale_schema is not None:
            return  # taken up by an upgraded node, or here once the schema is known
        for export_id in self._ctx.svc.claimable_exports():
            self.submit(export_id)

    def _run(self, export_id: str) -> None:
        try:
            self._work(export_id)
        finally:
            with self._lock:
                self._cancel.pop(export_id, None)
                self._working.discard(export_id)
                self._idle.notify_all()

    def _work(self, export_id: str) -> None:
        svc = self._ctx.svc
        with self._lock:
            cancelled = self._cancel.get(export_id, threading.Event())
        if cancelled.is_set() or self._ctx.stale_schema is not None:
            # a node older than its database writes no export rows or files: it stays
            # PENDING (or its lease runs out) for an upgraded node, or for this one
            # once the schema is known again (the heartbeat's sweep)
            return
        before = svc.get_export(export_id)
        row = svc.claim_export(export_id, self.owner, self.lease_seconds, self._ctx.now())
        if row is None:  # finished, cancelled, or another live node holds it
            return
        with self._lock:
            self._working.add(export_id)
        # started before: a node whose lease ran out (or that handed it back) may have
        # left files; none without, and then no other node can have written any since
        # (only this node's COMPLETED or ERROR update can apply until its lease is lost)
        retry = before is None or before.time_start is not None
        if retry:
            self.tidy(export_id)
        partial = self.part_path(export_id)
        # this attempt's own name: no node ever overwrites a file another one recorded
        final = self._dir / f"{export_id}.{self._tag}.{secrets.token_hex(4)}.tar"
        try:
            flt = ExportFilter(**row.params)
            with open(partial, "wb") as fh:
                _require_data(self._ctx, row.tss_id, flt)
                self._ctx.service.export(row.tss_id, _CancellableFile(fh, cancelled), flt)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.rename(partial, final)
            except FileNotFoundError:
                # another node's clean-up removed it: the export is over, or taken over
                # from this node, or that node read the lease just before this node took
                # it: then hand it back (PENDING, unclaimed) to be written again at once
                log.warning("export %s: partial file gone, not completed here", export_id)
                self._hand_back(export_id)
                return
            _sync_dir(self._dir)  # the name is on disk before the database names it
            self._attempts.pop(export_id, None)
            if self._publish(export_id, final) and retry:
                self.tidy(export_id)
        except _Cancelled:
            partial.unlink(missing_ok=True)
        except StorageError as exc:  # reading the logs or signing the exportData log
            partial.unlink(missing_ok=True)
            self._failed_on_service(export_id, exc.code, exc.message, retry)
        except OSError as exc:  # the exports folder: gone, read-only, full, I/O error
            for path in (partial, final):
                with contextlib.suppress(OSError):  # the folder may be what is broken
                    path.unlink(missing_ok=True)
            self._failed_on_service(export_id, WRITE_FAILED, _os_text(exc), retry)
        except OpenTSEError as exc:
            partial.unlink(missing_ok=True)
            code = (
                exc.code
                if exc.code in ("E_TOO_MANY_RECORDS", "E_NO_DATA_AVAILABLE")
                else "E_BAD_REQUEST"
            )
            if self._fail(export_id, code) and retry:
                self.tidy(export_id)
        except Exception:
            log.exception("export %s failed", export_id)
            partial.unlink(missing_ok=True)
            final.unlink(missing_ok=True)  # renamed but not recorded
            if self._fail(export_id, "E_INTERNAL") and retry:
                self.tidy(export_id)

    def _failed_on_service(self, export_id: str, code: str, detail: str, retry: bool) -> None:
        """The store or the exports folder failed (no fault of the request): a
        database away or busy is tried again (EXPORT_ATTEMPTS here, then ERROR), any
        other failure ends the export ERROR with ``code``. One log line each."""
        attempt = self._attempts.get(export_id, 0) + 1
        if code in TRANSIENT and attempt < EXPORT_ATTEMPTS:
            self._attempts[export_id] = attempt
            log.warning(
                "export %s: attempt %d of %d failed (%s: %s); it is tried again",
                export_id,
                attempt,
                EXPORT_ATTEMPTS,
                code,
                detail,
            )
            self._hand_back(export_id)
            return
        self._attempts.pop(export_id, None)
        log.error("export %s failed: %s: %s", export_id, code, detail)
        try:
            if self._fail(export_id, code) and retry:
                self.tidy(export_id)
        except DATABASE_ERRORS as exc:
            log.warning(
                "export %s: its failure could not be recorded (%s); it is tried again once"
                " its lease ran out",
                export_id,
                exc,
            )

    def tidy(self, export_id: str) -> None:
        """``remove_stale_attempts``, whose failure never fails the export (or the
        request that cancelled it): a file it leaves goes at a start-up."""
        try:
            self.remove_stale_attempts(export_id)
        except Exception:
            log.exception("export %s: removing stale attempt files failed", export_id)

    def _hand_back(self, export_id: str) -> None:
        """Give a WORKING export this node holds back (PENDING, unclaimed), as a node
        stopping on purpose does; refused when it is over or not this node's."""
        try:
            self._ctx.svc.update_export(
                export_id,
                only_from=("WORKING",),
                owner=self.owner,
                state="PENDING",
                lease_owner=None,
                lease_until=None,
            )
        except DATABASE_ERRORS as exc:
            log.warning("export %s: handing back failed (the lease runs out): %s", export_id, exc)
        except Exception:
            log.exception("export %s: handing back failed (the lease runs out)", export_id)

    def _fail(self, export_id: str, code: str) -> bool:
        """The ERROR update (applied only while this node holds the lease)."""
        return self._ctx.svc.update_export(
            export_id,
            only_from=("WORKING",),
            owner=self.owner,
            lease_until=None,
            state="ERROR",
            exception=code,
            time_error=self._ctx.now(),
        )

    def _publish(self, export_id: str, final: Path) -> bool:
        """Record ``final`` as the export's file with the COMPLETED update, which the
        database applies only while this node holds the lease; refused (cancelled, or
        another node took the export over), this attempt's file is deleted. True when
        the update was applied."""
        try:
            done = self._ctx.svc.update_export(
                export_id,
                only_from=("WORKING",),
                owner=self.owner,
                lease_until=None,
                state="COMPLETED",
                time_end=self._ctx.now(),
                file_path=str(final),
            )
        except DATABASE_ERRORS as exc:  # away, busy, its disk full: one line, its code
            # it may have committed before the error: keep the file (remove_orphans
            # deletes it at a start-up if the export ended without it)
            log.error(
                "export %s: recording the completed file failed (%s); it is written again "
                "once its lease ran out",
                export_id,
                exc,
            )
            return False
        except Exception:
            log.exception("export %s: recording the completed file failed", export_id)
            return False
        if not done:
            final.unlink(missing_ok=True)
            log.warning(
                "export %s: lease lost before completing; this node's file removed", export_id
            )
        return done


def attempt_files(folder: Path, export_id: str | None = None) -> dict[str, list[Path]]:
    """The attempt files in the exports ``folder`` by export id (only ``export_id``'s
    when given): the one scan of both clean-ups (``remove_orphans``,
    ``remove_stale_attempts``), so both go by one rule.

    The rule: an entry directly in ``folder`` whose name is an attempt file's
    (``_ATTEMPT_FILE``) and which is itself a regular file, by its own ``lstat``. A
    directory, a symlink (wherever it points, in the folder or out of it), a fifo or
    a socket is never returned, so no clean-up deletes or follows one. (``folder``
    itself may be a symlink to a shared folder: that is where the exports are.)
    Which of the files may go, never the one a finished export records, nor while it
    runs the lease owner's, is the caller's decision.
    """
    files: dict[str, list[Path]] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            match = _ATTEMPT_FILE.match(entry.name)
            if match is None or (export_id is not None and match.group(1) != export_id):
                continue
            if entry.is_file(follow_symlinks=False):
                files.setdefault(match.group(1), []).append(Path(entry.path))
    return files


def _remove(paths: Iterable[Path]) -> int:
    """Unlink each path (a link itself, never its target); how many were removed
    here. One already gone was removed by its writer or another node first."""
    removed = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


def _tag_of(owner: str) -> str:
    """A lease owner as it appears in its attempt files' names (no dots)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", owner)


def _attempt_tag(name: str) -> str | None:
    """The writer's tag in ``<id>.<tag>.part`` or ``<id>.<tag>.<random>.tar``; None
    for the names of before (``<id>.tar``, ``<id>.tar.<host>.<pid>.part``)."""
    parts = name.split(".")
    if len(parts) == 3 and parts[2] == "part" and parts[1] != "tar":
        return parts[1]
    if len(parts) == 4 and parts[3] == "tar":
        return parts[1]
    return None


def _os_text(exc: OSError) -> str:
    """``[Errno 30] Read-only file system: 'name'`` without the folder's path."""
    name = Path(exc.filename).name if isinstance(exc.filename, str) else None
    return f"{exc.strerror or type(exc).__name__}" + (f": {name}" if name else "")


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
