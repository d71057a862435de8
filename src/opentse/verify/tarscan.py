"""A fast scan of plain ustar archives, for the verifier's hot path.

``opentse.formats.tar.iter_members`` streams through ``tarfile`` and costs about
100 us per member, more than a signature check; an export of 10^5 logs would spend
most of its time there. TSE exports are plain ustar with small regular files, so this
scanner walks the 512-byte headers itself (checksum verified, ustar prefix, pax
``path`` records and GNU long names understood) and hands anything else (links,
devices, sparse files, unsafe names, bad checksums, members over
``MAX_MEMBER_SIZE``) to ``iter_members``, which stays the authority on what a
readable export is, except where ``tarfile`` would silently verify part of a plain
archive: octets that end without the end-of-archive blocks (``Truncated``), a
header after the first whose checksum fails (``Damaged``) and data after the
end-of-archive blocks (``Appended``) are refused here (and by
``refuse_after_end`` for an archive ``tarfile`` read, where it stopped). ``scan``
hands out batches as it goes (the verifier decodes and verifies them meanwhile) and
raises ``Unusual`` where the full reader must decide.

An archive file is read in windows of ``WINDOW`` octets (``verify.reading``: plain
reads, never a memory map, so a file that shrinks or fails while it is scanned is an
error with a code, not SIGBUS); a member running past a window starts the next one.
A compressed archive is scanned the same way, decompressed as it is read
(``verify.decompress``), so damage inside it is found as in a plain one.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Protocol
from zlib import adler32

from opentse.formats.tar import MAX_MEMBER_SIZE

BLOCK = 512
# octets read at a time: small enough to stay in the caches while the scan slices
# it, large enough that the reads cost nothing (~100 per 10^5 logs)
WINDOW = 1 << 20


class Windows(Protocol):
    """Where the scan reads an archive window by window: an open file
    (``reading.ArchiveFile``) or a compressed one decompressed as it is read
    (``decompress.Decompressed``, forward only: the scan never reads before its
    last window's offset, and reads ``window`` octets at a time if it says so)."""

    def read_at(self, offset: int, count: int) -> bytes: ...

    def ends_by(self, offset: int) -> bool: ...


class _Fallback(Exception):
    """Something this scanner does not handle: use the full reader."""


class _Cut(Exception):
    """The octets ended before the end-of-archive blocks."""


class _After(Exception):
    """Data after the end-of-archive blocks."""


class _Bad(Exception):
    """A header after the first fails its checksum, or data follows the end."""


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
    if not name or name.startswith(("/", "\\")) or name[1:2] == ":":
        raise _Fallback  # absolute, or a drive letter (C:...): iter_members decides
    if ".." in name and ".." in name.replace("\\", "/").split("/"):
        raise _Fallback
    return name


_UNUSUAL = "./\\"  # first characters _safe has to look at

# name, size, checksum, type flag, magic ("ustar"): the fields read here (the prefix
# only when its first octet, header[_PREFIX], is set)
_HEADER = struct.Struct("100s24x12s12x8sc100x5s")
_PREFIX = 345
_HALF = BLOCK // 2  # 256 octets sum to at most 65280: below Adler-32's modulus


def _checksum(header: bytes) -> int:
    """Sum of the header's 512 octets (POSIX ustar chksum) from Adler-32's A sums of
    its halves (two C calls instead of a Python-level sum): each is the sum modulo
    65521, exact for 256 octets (at most 65280)."""
    return (adler32(header[:_HALF], 0) & 0xFFFF) + (adler32(header[_HALF:], 0) & 0xFFFF)


def _refuse_damaged(header: bytes, offset: int) -> None:
    """Raise _Bad for a header at ``offset`` > 0 whose checksum field does not hold
    its octets' sum, neither unsigned (POSIX) nor signed (old tars; ``tarfile``
    accepts both; a field that is no octal number matches neither): see Damaged.
    A first header is left to ``tarfile``."""
    if offset == 0:
        return
    try:
        stored = _octal(header[148:156])
    except ValueError:
        stored = -1
    blank = header[:148] + b" " * 8 + header[156:]
    signed = sum(struct.unpack_from("148b8x356b", blank)) + 8 * 32
    if stored not in (sum(blank), signed):
        raise _Bad(
            f"the header at octet {offset} is damaged, its checksum does not match its "
            "content: the members from there on cannot be read"
        )


def _only_zeros_after(
    archive: Windows | None, data: bytes, base: int, pos: int, window: int
) -> None:
    """Raise _After when an octet other than zero follows the zero block at
    ``base + pos`` (in ``data``, then the file's further windows): see Appended."""
    start = pos + BLOCK
    while True:
        rest = data[start:]
        tail = rest.lstrip(b"\0")
        if tail:
            at = base + start + len(rest) - len(tail)
            raise _After(
                f"the end-of-archive blocks at octet {base + pos} are followed by data at "
                f"octet {at} (another archive appended, as `cat a.tar b.tar` makes?): TAR "
                "readers stop at those blocks and the rest would go unverified; give each "
                "export as its own file (opentse verify a.tar b.tar)"
            )
        base += start + len(rest)
        if archive is None or archive.ends_by(base):
            return
        data, start = archive.read_at(base, window), 0


def _octal(field: bytes) -> int:
    """A numeric header field: octal digits, NUL or space padded (anything else,
    such as base-256 sizes, is a ValueError: tarfile then)."""
    return int(field.strip(b" \0") or b"0", 8)


# Field octets -> what they give, computed once per distinct field (sizes and
# checksums repeat from member to member: a dict lookup instead of strip + int).
# _SUMS holds what the header's octet sum must be: the stored checksum plus the
# field's own octets, minus the eight spaces (8 * 32) it counts as.
_SUMS: dict[bytes, int] = {}
_SIZES: dict[bytes, int] = {}
_CACHED = 4096  # entries per dict, then it starts over


def _sum_of(field: bytes) -> int:
    if len(_SUMS) >= _CACHED:
        _SUMS.clear()
    value = _SUMS[field] = _octal(field) + (adler32(field, 0) & 0xFFFF) - 256
    return value


def _size_of(field: bytes) -> int:
    if len(_SIZES) >= _CACHED:
        _SIZES.clear()
    value = _SIZES[field] = _octal(field)
    return value


# (label for findings, file name without directories, data)
Member = tuple[str, str, bytes]


class Unusual(Exception):
    """``scan`` met something only the full reader handles (raised after the batches
    before it were handed out: the verifier then reads that archive with
    ``tarfile`` as a stream, starting over if batches of it were handed out)."""


class Refused(Unusual):
    """The scan refuses the archive for good: ``tarfile`` would end it early without
    a word, and whatever follows would go unverified unnoticed."""


class Truncated(Refused):
    """The archive's octets end at a member's end, in its padding or inside a header,
    without the end-of-archive blocks (POSIX ustar: two zero blocks; every vendor
    export has them): a copy cut short. ``tarfile`` takes such an end of the data
    for the end of the archive, and the logs cut off would go unnoticed, so
    the reader refuses it. Also raised for a cut inside a member's data (its
    header checked, its data not all there), so that the caller need not hand a
    large archive to the full reader only to hear the same."""


class Appended(Refused):
    """Octets other than zeros follow the end-of-archive blocks: most often a second
    archive appended to the first (``cat jan.tar feb.tar > all.tar``). ``tarfile``
    and ``tar`` itself stop at the first end-of-archive blocks, so the second
    archive's logs would be left out of the verdict without a word (a TSE export
    ends in zeros: the blocks, then padding to a record)."""


class Damaged(Refused):
    """A header block after the first holds data but fails its checksum (a flipped
    bit, a copy damaged in transit). ``tarfile`` takes such a block for the end of
    the archive when it is not the first (it stops where the damage is and says
    nothing), so every member after it would be missing from the verdict without a
    finding; the scan refuses the archive instead, naming the octet where the header
    starts. A first header that fails is left to ``tarfile`` (a compressed archive, or
    no TAR at all: it says which)."""


def refuse_after_end(source: bytes | Windows, end: int) -> None:
    """For an archive ``tarfile`` read (the scan left it to it): ``tarfile`` stops at
    ``end``, the first block it takes for no header, without a word. Raise Damaged
    when that block is not zeros (a header it could not read: a bad checksum or
    field), Appended when anything but zeros follows it (an archive appended)."""
    window: int = getattr(source, "window", None) or WINDOW
    if isinstance(source, bytes):
        archive: Windows | None = None
        data, base, pos = source, 0, end
    else:
        archive = source
        data, base, pos = source.read_at(end, max(window, BLOCK)), end, 0
    if data[pos : pos + BLOCK].count(0) != BLOCK:
        raise Damaged(
            f"the header at octet {end} cannot be read, its checksum or fields are "
            "damaged: the members from there on cannot be read"
        )
    try:
        _only_zeros_after(archive, data, base, pos, window)
    except _After as after:
        raise Appended(str(after)) from None


def scan(source: bytes | Windows, prefix: str = "", batch: int = 2000) -> Iterator[list[Member]]:
    """The regular files of a ustar archive (in memory, or an open file of known
    size or a decompressed one, read window by window) as (``prefix`` + name, file
    name, data), ``batch`` at a time, in archive order; names without ``./``,
    entries whose name ends in ``/`` skipped. Raises Unusual for anything else,
    UnreadableExportError when the file fails or shrinks while it is read (or a
    compressed one is corrupt, cut short or a decompression bomb)."""
    try:
        yield from _scan(source, prefix, batch)
    except _Cut as cut:
        raise Truncated(str(cut) or "the archive ends without its end-of-archive blocks") from None
    except _Bad as bad:
        raise Damaged(str(bad)) from None
    except _After as after:
        raise Appended(str(after)) from None
    except (_Fallback, ValueError, UnicodeError):
        raise Unusual from None


def _scan(source: bytes | Windows, prefix: str, batch: int) -> Iterator[list[Member]]:
    out: list[Member] = []
    append = out.append
    window: int = getattr(source, "window", None) or WINDOW
    if isinstance(source, bytes):
        archive: Windows | None = None
        data = source
    else:
        archive = source
        data = source.read_at(0, window)
    base = 0  # offset in the file of data[0]
    pos = 0
    total = len(data)
    next_name: str | None = None
    unpack = _HEADER.unpack_from
    sums = _SUMS
    sizes = _SIZES
    while True:
        if pos + BLOCK > total:
            if archive is None or archive.ends_by(base + total):
                break
            base += pos  # the next window starts at the next header
            data = archive.read_at(base, max(window, BLOCK))
            pos = 0
            total = len(data)
            continue
        header = data[pos : pos + BLOCK]
        raw_name, raw_size, raw_sum, kind, magic = unpack(header)
        if raw_name[0] == 0 and header.count(0) == BLOCK:
            _only_zeros_after(archive, data, base, pos, window)
            yield out
            return
        # the header's octets summed (Adler-32's A sum: exact for ASCII headers, at
        # most 512 * 127 < 65521; else summed in two halves, see _checksum) must be
        # what the checksum field says (see _SUMS)
        try:
            expected = sums[raw_sum]
        except KeyError:
            try:
                expected = _sum_of(raw_sum)
            except ValueError:  # no octal number: no sum matches it
                expected = -1
        if expected != (adler32(header, 0) & 0xFFFF if header.isascii() else _checksum(header)):
            _refuse_damaged(header, base + pos)
            raise _Fallback
        if raw_name[0] == 0:
            raise _Fallback
        try:
            size = sizes[raw_size]
        except KeyError:
            size = _size_of(raw_size)
        start = pos + BLOCK
        pos = start + size
        if pos > total or size > MAX_MEMBER_SIZE:
            if size > MAX_MEMBER_SIZE:
                raise _Fallback
            if archive is None or archive.ends_by(base + total):
                # a checked header whose data the file does not hold
                raise _Cut("the archive is truncated inside a member's data")
            # the member runs past the window: the next one starts at its header,
            # which is read again
            base += start - BLOCK
            data = archive.read_at(base, max(window, BLOCK + size))
            pos = 0
            total = len(data)
            continue
        body = data[start:pos]
        pos += -size % BLOCK
        if kind == b"0" or kind == b"\0":
            name = next_name
            if name is None:
                name = raw_name.partition(b"\0")[0].decode("utf-8", "surrogateescape")
                if header[_PREFIX] and magic == b"ustar":
                    folder = header[_PREFIX : _PREFIX + 155].partition(b"\0")[0]
                    name = f"{folder.decode('utf-8', 'surrogateescape')}/{name}"
            next_name = None
            if not name or name[0] in _UNUSUAL or ".." in name or name[1:2] == ":":
                name = _safe(name)
            if "/" in name:
                if name[-1] == "/":
                    continue
                short = name.rsplit("/", 1)[1]
            else:
                short = name
            append((prefix + name if prefix else name, short, body))
            if len(out) >= batch:
                yield out
                out = []
                append = out.append
        elif kind == b"x":
            next_name = _pax_path(body)
        elif kind == b"L":
            next_name = body.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        elif kind == b"5":
            next_name = None
        else:
            raise _Fallback
    if base + pos == 0:
        raise _Fallback  # empty, or shorter than a header: tarfile says what it is
    raise _Cut  # no end-of-archive blocks: see Truncated
