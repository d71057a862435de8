"""Shared fixtures of the verifier tests: the vendor exports and the spec's QR vectors."""

from __future__ import annotations

import re
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
