"""Archives the fast scan refuses (compressed, links, odd members) are read by
``tarfile`` as a stream: the same report as the plain archive, the same refusals,
and memory bounded by the decoded logs and one batch, never the archive (before:
the whole file read into memory and every member listed)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from verify_data import with_global_header

from opentse.verify.archive import UnreadableExportError, load_exports
from opentse.verify.logcheck import CHUNK
from opentse.verify.report import verify_exports, verify_loaded
from opentse.verify.synthetic import build_export
from opentse.verify.tarscan import WINDOW

LOGS = 3000

_COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gz": gzip.compress,
    "xz": lzma.compress,
    "bz2": bz2.compress,
}


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fallback") / "e.tar"
    build_export(path, LOGS)
    return path


def _working_memory(path: Path) -> tuple[int, dict[str, object]]:
    """Peak memory while loading, beyond what the loaded export keeps (its decoded
    logs: about as many octets as the uncompressed archive), and the report."""
    tracemalloc.start()
    try:
        export = load_exports([path], workers=1)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert export.pending is None
    assert len(export.logs) == LOGS
    return peak - kept, verify_loaded(export).to_json()


@pytest.mark.parametrize("kind", sorted(_COMPRESS))
def test_a_compressed_export_streams(plain: Path, tmp_path: Path, kind: str) -> None:
    """The plain archive's report, with one worker and with two. Memory, measured
    for gzip: xz and bzip2 add their decompressors' own state at the default levels
    (~8 and ~3 MB here, tracemalloc sees it), which does not grow with the archive."""
    packed = tmp_path / f"e.tar.{kind}"
    packed.write_bytes(_COMPRESS[kind](plain.read_bytes()))
    size = plain.stat().st_size
    assert packed.stat().st_size < size / 4
    expected = verify_exports([plain], workers=1).to_json()
    assert expected["ok"] is True and expected["valid_signatures"] == LOGS
    working, report = _working_memory(packed)
    assert report == expected
    if kind == "gz":
        # measured ~170 KB for 3 MB of archive (a 64 KiB read buffer, tarfile's,
        # one batch of members), the same for 20,000 logs (20 MB)
        assert working < size / 10, (working, size)
    assert verify_exports([packed], workers=2).to_json() == expected


def test_a_link_first_is_refused_before_the_rest_is_read(plain: Path, tmp_path: Path) -> None:
    """The full reader's code for a link (E_TAR_UNSAFE_MEMBER, as exit status 2)
    after the scan's first window and one member, not the whole archive read into
    memory first."""
    path = tmp_path / "link.tar"
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        link = tarfile.TarInfo("evil.log")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
        with tarfile.open(plain) as source:
            for member in source:
                tar.addfile(member, source.extractfile(member))
    size = path.stat().st_size
    tracemalloc.start()
    try:
        with pytest.raises(UnreadableExportError) as caught:
            load_exports([path], workers=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.code == "E_EXPORT_UNREADABLE"
    assert "not a readable TAR archive (E_TAR_UNSAFE_MEMBER:" in caught.value.message
    assert peak < WINDOW + size / 10, (peak, size)


@pytest.mark.parametrize("at", [0, 3 * CHUNK])
def test_an_odd_member_the_full_reader_takes(plain: Path, tmp_path: Path, at: int) -> None:
    """A pax global header (type ``g``) first, and after the scan has handed out
    batches (the run starts over, that archive read by tarfile): the plain report."""
    path = tmp_path / "global.tar"
    path.write_bytes(with_global_header(plain, at))
    with tarfile.open(path) as check, tarfile.open(plain) as source:
        assert len(check.getmembers()) == len(source.getmembers())
    expected = verify_exports([plain], workers=1).to_json()
    for workers in (1, 2):
        assert verify_exports([path], workers=workers).to_json() == expected


def test_a_plain_and_a_compressed_archive_together(plain: Path, tmp_path: Path) -> None:
    """The second archive falls back alone, into the same run (labels by archive)."""
    with tarfile.open(plain) as source:
        members = [(m, source.extractfile(m).read()) for m in source]  # type: ignore[union-attr]
    one, two = tmp_path / "one.tar", tmp_path / "two.tar"
    for path, part in ((one, members[: LOGS // 2]), (two, [members[0], *members[LOGS // 2 :]])):
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            for member, data in part:
                tar.addfile(member, io.BytesIO(data))
    packed = tmp_path / "two.tar.gz"
    packed.write_bytes(gzip.compress(two.read_bytes()))
    expected = verify_exports([one, two], workers=1).to_json()
    assert expected["log_messages"] == LOGS
    got = verify_exports([one, packed], workers=2).to_json()
    assert got == {
        **expected,
        "findings": [
            {**f, "file": f["file"].replace("two.tar:", "two.tar.gz:")}  # type: ignore[index]
            for f in expected["findings"]  # type: ignore[attr-defined]
        ],
        "info": [
            {**i, "file": i["file"].replace("two.tar:", "two.tar.gz:")}  # type: ignore[index]
            for i in expected["info"]  # type: ignore[attr-defined]
        ],
    }
