"""Reading a SQLite WAL file the way recovery after a power loss would: the tests
that simulate losing a commit, and those that count commits, share it."""

from __future__ import annotations

from pathlib import Path

WAL_HEADER, FRAME_HEADER = 32, 24


def commit_ends(wal: Path) -> list[int]:
    """Byte offsets just after each commit frame of the WAL's current generation (a
    commit frame's header gives the database size in pages, other frames 0; frames
    of an older generation have another salt and are not part of the log)."""
    data = wal.read_bytes()
    page_size = int.from_bytes(data[8:12], "big")
    salt = data[16:24]
    frame = FRAME_HEADER + page_size
    ends = []
    offset = WAL_HEADER
    while offset + frame <= len(data) and data[offset + 8 : offset + 16] == salt:
        if int.from_bytes(data[offset + 4 : offset + 8], "big") != 0:
            ends.append(offset + frame)
        offset += frame
    return ends
