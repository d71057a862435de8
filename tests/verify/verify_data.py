"""Shared fixtures of the verifier tests: the vendor exports, the spec's QR vectors,
the child processes a verifier left behind, an archive the fast scan refuses, and the
whole-archive reader the streaming one is compared with."""

from __future__ import annotations

import io
import os
import re
import tarfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from opentse.verify.tarscan import Member

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
EXPORTS = SHARED / "testdata" / "tse-exports"
SPEC = SHARED / "spec" / "tr03151.md"


def vendor_export(relative: str) -> Path:
    path = EXPORTS / relative
    if not path.exists():
        pytest.skip(f"vendor test data absent: {path} (see docs/dev/TEAM.md)")
    return path


def qr_vectors() -> list[str]:
    """The three receipt QR vectors of tr03151.md; empty when the spec is absent."""
    if not SPEC.exists():
        return []
    return re.findall(r"^V0;.*$", SPEC.read_text(encoding="utf-8"), re.MULTILINE)


def unreaped_children() -> set[int]:
    """Pids of this process's children that have not been reaped (a forked verifier
    worker must not outlive its run)."""
    me = str(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me:
                found.add(int(entry))
    return found


def with_global_header(path: Path, at: int) -> bytes:
    """The ustar archive at ``path`` with a pax global header (type ``g``, which
    the verifier's scan leaves to tarfile, which reads it) before member ``at``."""
    out = io.BytesIO()
    with (
        tarfile.open(path) as source,
        tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for index, member in enumerate(source):
            if index == at:
                header = tarfile.TarInfo.create_pax_global_header({"comment": "a tool's note"})
                tar.fileobj.write(header)  # type: ignore[union-attr]
                tar.offset += len(header)  # type: ignore[attr-defined]
            tar.addfile(member, source.extractfile(member))
    return out.getvalue()


def read_members(path: Path) -> list[tuple[str, bytes]]:
    """(name without ``./``, data) of every regular file, in archive order, the
    archive read whole: the reference the streaming reader is compared with (the
    verifier itself read this way before 2026-11-21)."""
    from opentse.errors import FormatError
    from opentse.formats.tar import iter_members
    from opentse.verify.reading import ArchiveFile
    from opentse.verify.tarscan import Refused, Unusual, scan

    with ArchiveFile(path) as archive:
        data = archive.read_all()
    try:
        return [(name, body) for batch in scan(data) for name, _, body in batch]
    except Refused as exc:
        raise FormatError(
            f"{exc} after {len(data)} octets: cut short (a copy not finished?)",
            code="E_TAR_FORMAT",
        ) from None
    except Unusual:
        return [(m.name, m.data) for m in iter_members(io.BytesIO(data))]


def collect_members(paths: Iterable[Path]) -> tuple[list[str], list[Member]]:
    """Every regular file of every archive, named as the verifier names them, all in
    memory (``read_members``); UnreadableExportError if one is no TAR."""
    from opentse.errors import OpenTSEError
    from opentse.verify.archive import _normalise, member_label
    from opentse.verify.reading import UnreadableExportError

    sources = [Path(p) for p in paths]
    several = len(sources) > 1
    members: list[Member] = []
    for source in sources:
        try:
            items = read_members(source)
        except UnreadableExportError:
            raise
        except (OSError, OpenTSEError, ValueError, EOFError) as exc:
            raise UnreadableExportError(f"{source}: not a readable TAR archive ({exc})") from exc
        for name, data in items:
            base = _normalise(name) if name.startswith(("./", "/")) else name
            if base and not base.endswith("/"):
                short = base.rsplit("/", 1)[-1] if "/" in base else base
                members.append(
                    (member_label(source, base, several) if several else base, short, data)
                )
    return [str(p) for p in sources], members
