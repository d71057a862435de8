"""What a killed archive export leaves in ``DATA/archive/<tse>/``, found and cleaned.

An export is written as ``.<name>.tar.part``, synced, renamed to ``<name>.tar`` and
recorded only after the verifier has read it (archive.py). A process killed on the
way leaves one of two things that no ``archive list`` showed:

- a part file (killed while writing): cut off, never an export. Cleaning deletes it
  (``archive export`` of that TSE also deletes it on its next run);
- a ``.tar`` that is not recorded (killed after the rename, e.g. while the verifier
  read it). It is a whole export (synced before the rename), and the TSE may have
  signed its exportData log already, after which deleteStoredData may drop the logs
  it holds: so it is never deleted. Cleaning verifies it and records it like
  ``archive export`` does (``archive.export`` with ``recovered`` in the protocol);
  one that does not verify (a cut-off TAR an older version wrote under the final
  name) stays where it is, unrecorded, and is named for a person to look at.

A file whose writer is alive (it holds the lock ``write_export_file`` takes until
the export is recorded) is neither listed nor touched. A recorded export is never
deleted or changed.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentse.errors import OpenTSEError
from opentse.ops import archive
from opentse.ops.store import OpsContext

PART = "part"
UNRECORDED = "unrecorded"


@dataclass(frozen=True, slots=True)
class Leftover:
    tse_id: str
    path: Path
    kind: str  # PART or UNRECORDED
    size: int
    modified_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "tse_id": self.tse_id,
            "file": str(self.path),
            "kind": self.kind,
            "size": self.size,
            "modified_at": self.modified_at,
        }


@dataclass(frozen=True, slots=True)
class Cleaned:
    deleted: tuple[Leftover, ...]  # part files
    recorded: tuple[archive.ArchivedExport, ...]  # unrecorded exports, now archived
    kept: tuple[tuple[Leftover, str], ...]  # (unrecorded export, why it was not recorded)

    def to_json(self) -> dict[str, Any]:
        return {
            "deleted": [x.to_json() for x in self.deleted],
            "recorded": [x.to_json() for x in self.recorded],
            "kept": [{**x.to_json(), "reason": why} for x, why in self.kept],
        }


def _folders(ctx: OpsContext, tse_id: str | None) -> list[tuple[str, Path]]:
    root = (ctx.data_dir / "archive").absolute()
    if tse_id is not None:
        return [(tse_id, root / tse_id)]
    if not root.is_dir():
        return []
    return sorted((p.name, p) for p in root.iterdir() if p.is_dir())


def _idle(path: Path) -> bool:
    """No live export writer holds ``path``."""
    fd = archive.unlocked(path)
    if fd is None:
        return False
    os.close(fd)
    return True


def find(ctx: OpsContext, tse_id: str | None = None) -> list[Leftover]:
    """Part files and unrecorded ``.tar`` files in the archive folders (of one TSE),
    those of exports still being written left out."""
    found: list[Leftover] = []
    for tse, folder in _folders(ctx, tse_id):
        if not folder.is_dir():
            continue
        recorded = {Path(i.path).name for i in archive.exports(ctx, tse)}
        tars = sorted(p for p in folder.glob("*.tar") if p.name not in recorded)
        for path, kind in [(p, PART) for p in archive.part_files(folder)] + [
            (p, UNRECORDED) for p in tars
        ]:
            if not path.is_file() or not _idle(path):
                continue
            st = path.stat()
            found.append(Leftover(tse, path, kind, st.st_size, int(st.st_mtime)))
    return found


def _contents(path: Path) -> tuple[int, int | None, int | None]:
    """Number of log files and their first and last signature counter."""
    from opentse.formats.tar import iter_members, parse_log_filename

    counters = [
        parsed.signature_counter
        for member in iter_members(path)
        if (parsed := parse_log_filename(member.name)) is not None
    ]
    return len(counters), min(counters, default=None), max(counters, default=None)


def _created_at(path: Path) -> int:
    """The time in the file's name (``<YYYYmmddTHHMMSSZ>_<id>.tar``), else its mtime."""
    try:
        stamp = datetime.strptime(path.name.split("_", 1)[0], "%Y%m%dT%H%M%SZ")
        return int(stamp.replace(tzinfo=UTC).timestamp())
    except ValueError:
        return int(path.stat().st_mtime)


def _record(ctx: OpsContext, item: Leftover, actor: str) -> archive.ArchivedExport | str | None:
    """Verify an unrecorded export and record it; the reason when it is kept instead;
    None when another clean recorded it meanwhile."""
    fd = archive.unlocked(item.path)  # held while it is read and recorded
    if fd is None:
        return "an export writer holds it now"
    try:
        # another clean may have recorded it between our look and this lock
        if item.path.name in {Path(i.path).name for i in archive.exports(ctx, item.tse_id)}:
            return None
        try:
            records, first, last = _contents(item.path)
        except (OpenTSEError, OSError) as exc:
            return f"not a readable TAR ({getattr(exc, 'code', type(exc).__name__)})"
        verification = archive.verification_summary(item.path)
        if not verification["ok"]:
            errors = ", ".join(verification["errors"]) or "no signed logs"
            return f"does not verify ({errors}): check it with opentse verify {item.path}"
        file = archive.ExportFile(
            str(uuid.uuid4()), item.tse_id, item.path, records, first, last,
            _created_at(item.path),
        )  # fmt: skip
        return archive.store_export(ctx, file, verification, actor=actor, recovered=True)
    finally:
        os.close(fd)


def clean(ctx: OpsContext, tse_id: str | None = None, *, actor: str = "") -> Cleaned:
    """Delete the part files, verify and record the unrecorded exports (module
    docstring); nothing a live writer holds, no recorded export, is touched."""
    deleted: list[Leftover] = []
    recorded: list[archive.ArchivedExport] = []
    kept: list[tuple[Leftover, str]] = []
    for item in find(ctx, tse_id):
        if item.kind == PART:
            if archive.remove_stale_part(item.path):
                deleted.append(item)
            continue
        done = _record(ctx, item, actor)
        if isinstance(done, str):
            kept.append((item, done))
        elif done is not None:
            recorded.append(done)
    return Cleaned(tuple(deleted), tuple(recorded), tuple(kept))
