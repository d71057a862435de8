"""A fast in-memory scan of plain ustar archives, for the verifier's hot path.

``opentse.formats.tar.iter_members`` streams through ``tarfile`` and costs about
100 us per member, more than a signature check; an export of 10^5 logs would spend
most of its time there. TSE exports are plain ustar with small regular files, so this
scanner walks the 512-byte headers itself (checksum verified, ustar prefix, pax
``path`` records and GNU long names understood) and hands anything else (compressed
archives, links, devices, sparse files, unsafe names, bad checksums) to
``iter_members``, which stays the authority on what a readable export is.
"""

from __future__ import annotations

from pathlib import Path

from opentse.formats.tar import iter_members

BLOCK = 512


class _Fallback(Exception):
    """Something this scanner does not handle: use the full reader."""


def _field(header: bytes, start: int, end: int) -> bytes:
    return header[start:end].split(b"\0", 1)[0]


def _octal(raw: bytes) -> int:
    text = raw.strip(b" \0")
    if not text:
        return 0
    if raw[:1] in (b"\x80", b"\xff"):  # base-256 sizes: leave them to tarfile
        raise _Fallback
    try:
        return int(text, 8)
    except ValueError:
        raise _Fallback from None


def _pax_path(data: bytes) -> str | None:
    path: str | None = None
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        if key == b"path":
            path = value.decode("utf-8", "surrogateescape")
        pos += length
    return path


def _safe(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    if not name or name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/"):
        raise _Fallback
    return name


def _scan(data: bytes) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    pos = 0
    total = len(data)
    next_name: str | None = None
    while pos + BLOCK <= total:
        header = data[pos : pos + BLOCK]
        if header[0] == 0:
            if header.count(0) == BLOCK:
                return out
            raise _Fallback
        if _octal(header[148:156]) != sum(header) - sum(header[148:156]) + 8 * 32:
            raise _Fallback
        size = _octal(header[124:136])
        kind = header[156:157]
        body = data[pos + BLOCK : pos + BLOCK + size]
        if len(body) != size:
            raise _Fallback
        pos += BLOCK + (size + BLOCK - 1) // BLOCK * BLOCK
        if kind == b"x":
            next_name = _pax_path(body)
            continue
        if kind == b"L":
            next_name = body.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            continue
        if kind == b"5":
            next_name = None
            continue
        if kind not in (b"0", b"\0"):
            raise _Fallback
        name = next_name
        if name is None:
            name = _field(header, 0, 100).decode("utf-8", "surrogateescape")
            if header[257:262] == b"ustar":
                prefix = _field(header, 345, 500).decode("utf-8", "surrogateescape")
                if prefix:
                    name = f"{prefix}/{name}"
        next_name = None
        out.append((_safe(name), body))
    raise _Fallback  # no end-of-archive blocks: maybe truncated, let tarfile judge


def read_members(path: Path) -> list[tuple[str, bytes]]:
    """(name without ``./``, data) of every regular file, in archive order."""
    data = path.read_bytes()
    try:
        return _scan(data)
    except (_Fallback, ValueError, UnicodeError):
        return [(m.name, m.data) for m in iter_members(path)]
