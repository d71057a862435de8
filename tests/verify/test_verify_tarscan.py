"""The verifier's ustar scan (``verify.tarscan``) against the stdlib ``tarfile``:
the same members for ustar (with prefix), GNU and pax archives with ASCII and
non-ASCII names, also read from a file in windows smaller than its members, and a
changed header octet is never read past (the checksum, checked through cached field
values, sends it to the full reader)."""

from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.verify import tarscan
from opentse.verify.reading import ArchiveFile
from opentse.verify.tarscan import Unusual, scan

_NAME = st.text(alphabet=st.sampled_from("abcXYZ019_-.äé€"), min_size=1, max_size=40).filter(
    lambda n: n not in (".", "..") and not n.startswith(".")
)
_FOLDERS = st.lists(_NAME, max_size=4).map("/".join)
_MEMBERS = st.lists(
    st.tuples(_FOLDERS, _NAME, st.binary(max_size=1300)), min_size=1, max_size=6
).map(
    lambda items: [(f"{folder}/{name}" if folder else name, data) for folder, name, data in items]
)
_FORMATS = st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])


def _archive(members: list[tuple[str, bytes]], fmt: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt, encoding="utf-8") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _reference(archive: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(archive), encoding="utf-8") as tar:
        return [
            (m.name, tar.extractfile(m).read())  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isreg()
        ]


def _scanned(archive: bytes) -> list[tuple[str, bytes]]:
    return [(name, data) for batch in scan(archive, batch=2) for name, _, data in batch]


@settings(max_examples=150, deadline=None)
@given(_MEMBERS, _FORMATS)
def test_scan_reads_what_tarfile_reads(members: list[tuple[str, bytes]], fmt: int) -> None:
    try:
        archive = _archive(members, fmt)
    except ValueError:  # a name ustar cannot hold: nothing to compare
        return
    expected = _reference(archive)
    assert expected == members
    assert _scanned(archive) == expected


@settings(max_examples=150, deadline=None)
@given(_MEMBERS, st.integers(0, 511), st.integers(1, 255))
def test_a_changed_header_octet_is_unusual(
    members: list[tuple[str, bytes]], where: int, change: int
) -> None:
    """Outside the checksum field, any change to a header changes its octet sum."""
    archive = bytearray(_archive(members, tarfile.GNU_FORMAT))
    if 148 <= where < 156:
        return
    archive[where] ^= change
    with pytest.raises(Unusual):
        _scanned(bytes(archive))


@pytest.mark.parametrize(
    "spelling", ["{:06o}\0 ", "{:07o}\0", " {:06o} ", "{:o}\0\0\0\0", "{:>7o} "]
)
def test_checksum_spellings(spelling: str) -> None:
    """Padding with spaces or NULs reads the same (each spelling once more from the
    cache); one more than the sum is unusual."""
    archive = bytearray(_archive([("a.log", b"x" * 100)], tarfile.USTAR_FORMAT))
    archive[148:156] = b" " * 8
    total = sum(archive[:512])
    for _ in range(2):
        archive[148:156] = spelling.format(total).encode()
        assert _scanned(bytes(archive)) == [("a.log", b"x" * 100)]
        archive[148:156] = spelling.format(total + 1).encode()
        with pytest.raises(Unusual):
            _scanned(bytes(archive))


@settings(max_examples=100, deadline=None)
@given(_MEMBERS, _FORMATS, st.sampled_from([1, 512, 700, 1024, 1536, 4096]), st.integers(0))
def test_windows_read_what_memory_reads(
    members: list[tuple[str, bytes]], fmt: int, window: int, cut: int
) -> None:
    """From a file, read ``window`` octets at a time (members and headers cut at every
    place, members longer than a window), or cut short: what the scan of the same
    octets in memory gives, Unusual where it is Unusual."""
    try:
        archive = _archive(members, fmt)
    except ValueError:
        return
    saved = tarscan.WINDOW
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.tar"
        try:
            tarscan.WINDOW = window
            path.write_bytes(archive)
            with ArchiveFile(path) as file:
                got = [(n, d) for batch in scan(file, batch=2) for n, _, d in batch]
            assert got == _scanned(archive) == _reference(archive)
            content = len(archive.rstrip(b"\0"))  # cut before the end-of-archive blocks
            path.write_bytes(archive[: 1 + cut % (content - 1)])
            with ArchiveFile(path) as file, pytest.raises(Unusual):
                list(scan(file, batch=2))
        finally:
            tarscan.WINDOW = saved
