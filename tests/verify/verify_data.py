"""Shared fixtures of the verifier tests: the vendor exports, the spec's QR vectors,
the child processes a verifier left behind, and an archive the fast scan refuses."""

from __future__ import annotations

import io
import os
import re
import tarfile
from pathlib import Path

import pytest

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
