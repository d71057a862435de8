"""The export archive: every export kept with its SHA-256, the verifier's result and
its retention date; reminders when exports are overdue; release of stored logs.

Retention (§147 Abs. 3, 4 AO, GoBD Rz. 113): ten years, counted from the end of the
calendar year the export was made in, so ``retain_until`` is 31 December of year+10.

Deletion (TR-03153 1.1.0, 3.x "Löschen von Protokolldaten": stored data may be
deleted only after it was exported and the export checked): ``release_logs`` records
``released_up_to`` (the last signature counter of a verified, archived, unfiltered
export) in ``ops_log_release``; the engine keeps ``exported_up_to`` in the TSE state,
and the SE API's deleteStoredData (``opentse tse delete-stored-data``) drops the
stored logs up to it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentse.engine import export as export_mod
from opentse.errors import NotFoundError, StateError
from opentse.ops import protocol, sites
from opentse.ops.store import DEFAULT_REMINDER_DAYS, OpsContext, dumps
from opentse.register.shoptime import shop_zone

RETENTION_YEARS = 10
DAY = 86400
REMINDER_SETTING = "archive.reminder_days"


@dataclass(frozen=True, slots=True)
class ArchivedExport:
    id: str
    tse_id: str
    path: str
    sha256: str
    size: int
    records: int
    first_counter: int | None
    last_counter: int | None
    verified_ok: bool
    verification: dict[str, Any]
    created_at: int
    retain_until: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tse_id": self.tse_id,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "records": self.records,
            "first_counter": self.first_counter,
            "last_counter": self.last_counter,
            "verified_ok": self.verified_ok,
            "verification": self.verification,
            "created_at": self.created_at,
            "retain_until": self.retain_until,
        }


@dataclass(frozen=True, slots=True)
class Reminder:
    tse_id: str
    last_export_at: int | None
    days_since: float
    message: str


GERMANY = shop_zone()  # the calendar of the retention period (Europe/Berlin)


def retain_until(created_at: int, years: int = RETENTION_YEARS) -> int:
    """End of the calendar year ``years`` after the export's year, kept as the last
    second of 31 December in UTC (a date: read it in UTC). The year is Germany's
    (§147 Abs. 4 AO: the period starts with the end of the calendar year the record
    was made in): an export made on 1 January before 01:00 German time belongs to
    that year, not to the one UTC still shows."""
    year = datetime.fromtimestamp(created_at, tz=GERMANY).year + years
    return int(datetime(year, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: findings kept per export (with their text); ``error_count`` counts them all
MAX_FINDINGS = 20


def _distinct(codes: list[str]) -> list[str]:
    return list(dict.fromkeys(codes))


def verification_summary(path: Path) -> dict[str, Any]:
    """Run the verifier (opentse.verify) over one TAR and keep the essentials: the
    counts, the distinct error and warning codes, and the first error findings with
    their text and file, so the record says what is wrong without the TAR at hand
    (an export of a damaged store is archived all the same)."""
    from opentse.verify.report import verify_exports

    report = verify_exports([path], workers=1)
    data = report.to_json()
    errors = [f for f in data["findings"] if f["severity"] == "error"]
    return {
        "ok": report.ok,
        "log_messages": data["log_messages"],
        "valid_signatures": data["valid_signatures"],
        "invalid_signatures": len(data["invalid_signatures"]),
        "parse_errors": len(data["parse_errors"]),
        "error_count": len(errors),
        "errors": _distinct([f["code"] for f in errors]),
        "warnings": _distinct([f["code"] for f in data["findings"] if f["severity"] == "warning"]),
        "findings": [
            {"code": f["code"], "message": f["message"], "file": f.get("file") or ""}
            for f in errors[:MAX_FINDINGS]
        ],
    }


def archive_dir(ctx: OpsContext, tse_id: str) -> Path:
    """Absolute: the path is recorded, and the next command (a cron job) may run in
    another working directory."""
    path = (ctx.data_dir / "archive" / tse_id).absolute()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@dataclass(frozen=True, slots=True)
class ExportFile:
    """A finished export file in the archive folder, not yet hashed or recorded."""

    id: str
    tse_id: str
    path: Path
    records: int
    first_counter: int | None
    last_counter: int | None
    created_at: int


def write_export_file(
    ctx: OpsContext, tse_id: str, *, without_signature: bool = False
) -> ExportFile:
    """Export the whole TSE into ``<data>/archive/<tse>/<time>_<id>.tar``.

    ``without_signature``: a defective TSE cannot sign its exportData log; its logs
    are written straight from the store (the same TAR layout) and nothing is signed.
    """
    record = ctx.service.require(tse_id)
    now = ctx.now()
    stamp = datetime.fromtimestamp(now, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    export_id = str(uuid.uuid4())
    folder = archive_dir(ctx, tse_id)
    path = folder / f"{stamp}_{export_id[:8]}.tar"
    # written under a temporary name, synced, then renamed: a killed export or a
    # power cut never leaves a cut-off TAR named like the archived exports beside
    # them, and an export recorded as archived (after which its logs may be released
    # and deleted) is on the disk, not only in the page cache
    part = folder / f".{path.name}.part"
    remove_stale_parts(folder)  # left by a killed export: never a valid export
    with folder_turn(folder):  # no cleaner sees the part file before it is locked
        fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        # held until the export is recorded (store_export), also across the rename:
        # a process looking for leftovers (archive leftovers) leaves a locked file alone
        fcntl.flock(fd, fcntl.LOCK_EX)
    _WRITING[str(path)] = fd
    try:
        with os.fdopen(os.dup(fd), "wb") as fh:
            if without_signature:
                summary = export_mod.write_export(ctx.store, record, fh, export_mod.ExportFilter())
            else:
                # the exportData log (after which deleteStoredData may drop these
                # logs) is signed below, once the file is on the disk
                summary = ctx.service.export(tse_id, fh, log_export=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        release(path)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    if not without_signature:
        summary = ctx.service.log_export(tse_id, summary)
    return ExportFile(
        export_id, tse_id, path, summary.records, summary.first_signature_counter,
        summary.last_signature_counter, now,
    )  # fmt: skip


#: export file (final name) -> the descriptor whose lock says its writer is alive
_WRITING: dict[str, int] = {}


def release(path: Path) -> None:
    """Drop the writer's lock on an export file (recorded, or given up)."""
    fd = _WRITING.pop(str(path), None)
    if fd is not None:
        os.close(fd)


def unlocked(path: Path) -> int | None:
    """A descriptor holding the lock on ``path`` when no live writer holds it (the
    process that wrote it was killed, or it finished), else None. Close it after."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def part_files(folder: Path) -> list[Path]:
    """The part files of exports in ``folder`` (``.<name>.tar.part``)."""
    return sorted(folder.glob(".*.tar.part")) if folder.is_dir() else []


def remove_stale_parts(folder: Path) -> list[Path]:
    """Delete the part files no live export writes (a killed export's): they are cut
    off, never an export. Returns the ones deleted."""
    return [part for part in part_files(folder) if remove_stale_part(part)]


FOLDER_LOCK = ".archive.lock"  # neither an export (*.tar) nor a part file


@contextmanager
def folder_turn(folder: Path) -> Iterator[None]:
    """An exclusive lock for the archive folder (flock on its ``.archive.lock``): an
    export creates and locks its part file, a cleaner finds a part file unlocked and
    deletes it, each in its turn. Without it a cleaner could find a new part file in
    the instant between its creation and its writer's lock, and delete it under the
    running export (whose rename then failed). A file opened for writing, not the
    directory: on NFS, flock becomes a POSIX lock, which needs one."""
    fd = os.open(folder / FOLDER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # and with it the lock


def remove_stale_part(part: Path) -> bool:
    """Delete one part file unless a live export writes it; True when deleted."""
    with folder_turn(part.parent):
        fd = unlocked(part)
        if fd is None:
            return False
        try:
            part.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return True


def store_export(
    ctx: OpsContext,
    file: ExportFile,
    verification: dict[str, Any],
    *,
    actor: str = "",
    protocol_kind: str = protocol.EXPORT_ARCHIVED,
    without_signature: bool = False,
    recovered: bool = False,
) -> ArchivedExport:
    """Hash the file and record it with its verification result and retention date.
    ``recovered``: the file of an export killed before it was recorded
    (archive_leftovers), said so in the protocol."""
    extra = {"recovered": True} if recovered else {}
    item = ArchivedExport(
        file.id, file.tse_id, str(file.path), sha256_file(file.path), file.path.stat().st_size,
        file.records, file.first_counter, file.last_counter, bool(verification["ok"]),
        verification, file.created_at, retain_until(file.created_at),
    )  # fmt: skip
    with ctx.db.tx() as c:
        c.execute(
            "INSERT INTO ops_exports(id, tse_id, path, sha256, size, records, first_counter,"
            " last_counter, verified_ok, verification, created_at, retain_until)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                item.id, item.tse_id, item.path, item.sha256, item.size, item.records,
                item.first_counter, item.last_counter, int(item.verified_ok),
                dumps(item.verification), item.created_at, item.retain_until,
            ),
        )  # fmt: skip
        protocol.append(
            c, ctx.now(), protocol_kind, tse_id=file.tse_id, actor=actor,
            details={"export_id": item.id, "sha256": item.sha256, "records": item.records,
                     "verified_ok": item.verified_ok, "retain_until": item.retain_until,
                     "without_signature": without_signature,
                     "error_count": int(verification.get("error_count", 0)), **extra},
        )  # fmt: skip
    release(file.path)
    return item


def archive_export(
    ctx: OpsContext, tse_id: str, *, without_signature: bool = False, actor: str = ""
) -> ArchivedExport:
    """Export the whole TSE, verify the file with the verifier, hash and record it."""
    file = write_export_file(ctx, tse_id, without_signature=without_signature)
    try:
        verification = verification_summary(file.path)
        return store_export(
            ctx, file, verification, actor=actor, without_signature=without_signature
        )
    finally:
        release(file.path)


_COLS = (
    "id, tse_id, path, sha256, size, records, first_counter, last_counter, verified_ok,"
    " verification, created_at, retain_until"
)


def _row(r: tuple[Any, ...]) -> ArchivedExport:
    import json

    return ArchivedExport(
        r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), r[6], r[7], bool(r[8]),
        json.loads(r[9]), int(r[10]), int(r[11]),
    )  # fmt: skip


def exports(ctx: OpsContext, tse_id: str | None = None) -> list[ArchivedExport]:
    sql = f"SELECT {_COLS} FROM ops_exports"
    args: tuple[str, ...] = ()
    if tse_id is not None:
        sql += " WHERE tse_id=?"
        args = (tse_id,)
    return [
        _row(r)
        for r in ctx.db.rows(sql + " ORDER BY created_at, COALESCE(last_counter, 0), id", args)
    ]


def get_export(ctx: OpsContext, export_id: str) -> ArchivedExport:
    row = ctx.db.one(f"SELECT {_COLS} FROM ops_exports WHERE id=?", (export_id,))
    if row is None:
        raise NotFoundError(f"archived export {export_id!r} not found", code="E_ARCHIVE_NOT_FOUND")
    return _row(row)


def locate(item: ArchivedExport, data_dir: Path | None = None) -> Path:
    """The archived file: the same name in ``data_dir``'s own ``archive/<tse>/`` when
    it is there, else the recorded path. The folder's own copy first: a data folder
    copied or moved on the same host (tse move-out retires the old one, which may
    still hold its files) is checked and released by the files it holds, not the
    retired folder's; also a folder restored or mounted elsewhere, or a path an older
    version recorded relative to its working directory."""
    path = Path(item.path)
    if data_dir is not None:
        own = (data_dir / "archive" / item.tse_id / path.name).absolute()
        if own.is_file():
            return own
    return path


def check_integrity(item: ArchivedExport, data_dir: Path | None = None) -> bool:
    """The file is still there and still has the recorded SHA-256 (looked for as
    ``locate`` does)."""
    path = locate(item, data_dir)
    return path.is_file() and sha256_file(path) == item.sha256


def reminder_days(ctx: OpsContext) -> int:
    return int(ctx.db.setting(REMINDER_SETTING, str(DEFAULT_REMINDER_DAYS)))


def set_reminder_days(ctx: OpsContext, days: int) -> None:
    if days < 1:
        raise StateError("reminder interval must be at least one day", code="E_ARCHIVE_DAYS")
    ctx.db.set_setting(REMINDER_SETTING, str(days))


def due_reminders(
    last_exports: dict[str, int | None],
    started: dict[str, int],
    now: int,
    days: int,
    places: dict[str, str] | None = None,
) -> list[Reminder]:
    """Pure: TSEs whose last archived export (or, without one, their start) lies more
    than ``days`` days back; with 0 days every TSE without an export, even one started
    this very second. ``places``: TSE -> where it is, named in the message (with
    several shops a TSE id alone does not say where to go)."""
    found: list[Reminder] = []
    for tse_id, started_at in sorted(started.items()):
        last = last_exports.get(tse_id)
        since = (now - (last if last is not None else started_at)) / DAY
        if since > days or (last is None and days == 0):
            what = "no export yet" if last is None else f"last export {since:.0f} days ago"
            where = f" ({places[tse_id]})" if places and tse_id in places else ""
            found.append(
                Reminder(
                    tse_id, last, since, f"TSE {tse_id}{where}: {what}; take and archive an export"
                )
            )
    return found


def reminders(ctx: OpsContext, days: int | None = None) -> list[Reminder]:
    """Reminders for every TSE still in use (INITIALIZED)."""
    if days is not None and days < 0:
        raise StateError("--days cannot be negative", code="E_ARCHIVE_DAYS")
    days = reminder_days(ctx) if days is None else days
    last: dict[str, int | None] = {}
    for item in exports(ctx):
        last[item.tse_id] = max(item.created_at, last.get(item.tse_id) or 0)
    started = {
        i.record.tse_id: i.state.initialized_at or i.record.created_at
        for i in ctx.service.list()
        if i.state.lifecycle.value == "INITIALIZED"
    }
    names = {loc.id: loc.name for loc in sites.locations(ctx)}
    places = {
        t.tse_id: names[t.location_id] for t in sites.site_tses(ctx) if t.location_id in names
    }
    return due_reminders(last, started, ctx.now(), days, places)


def released_up_to(ctx: OpsContext, tse_id: str) -> int:
    row = ctx.db.one("SELECT released_up_to FROM ops_log_release WHERE tse_id=?", (tse_id,))
    return int(row[0]) if row else 0


def release_logs(ctx: OpsContext, tse_id: str, *, actor: str = "") -> int:
    """Mark the logs covered by the newest verified archived export as deletable.

    Refused (``E_ARCHIVE_NOT_VERIFIED``) when no verified export exists or the newest
    export failed verification: deletion only after a verified export (TR-03153).
    """
    ctx.service.require(tse_id)  # a mistyped id: E_TSS_NOT_FOUND, as list and export say
    items = exports(ctx, tse_id)
    if not items:
        raise StateError(
            f"TSE {tse_id}: no archived export; logs may only be released after a verified export",
            code="E_ARCHIVE_NOT_VERIFIED",
        )
    newest = items[-1]
    if (
        not newest.verified_ok
        or not check_integrity(newest, ctx.data_dir)
        or newest.last_counter is None
    ):
        raise StateError(
            f"TSE {tse_id}: the newest archived export is not verified (or changed on disk);"
            " logs stay",
            code="E_ARCHIVE_NOT_VERIFIED",
        )
    up_to = int(newest.last_counter)
    now = ctx.now()
    with ctx.db.tx() as c:
        c.execute("DELETE FROM ops_log_release WHERE tse_id=?", (tse_id,))
        c.execute(
            "INSERT INTO ops_log_release(tse_id, released_up_to, export_id, released_at)"
            " VALUES (?,?,?,?)",
            (tse_id, up_to, newest.id, now),
        )
        protocol.append(
            c, now, protocol.LOGS_RELEASED, tse_id=tse_id, actor=actor,
            details={"released_up_to": up_to, "export_id": newest.id, "sha256": newest.sha256},
        )  # fmt: skip
    return up_to
