"""Damage inside a compressed export (``.tar.gz``, ``.tar.bz2``, ``.tar.xz``) is
refused as in a plain one: exit 2, ``E_EXPORT_UNREADABLE``, never "OK" over a part.

Compressed archives went through the stdlib ``tarfile``, which takes a damaged
header for the end of the archive, stops at the first end-of-archive blocks (two
exports joined, ``cat jan.tar.gz feb.tar.gz``) and never looks at gzip's CRC once
it has read the end-of-archive blocks: each verified as "OK: no errors" over the
logs before the damage. Now they are decompressed for the same scan as a plain
archive (``verify.decompress``): every stream checked to its end, data after it
refused, and a decompression bomb stopped at a cap the message names."""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import json
import lzma
import os
import tarfile
import tempfile
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner
from verify_data import vendor_export, with_global_header

from opentse.cli.main import build_app
from opentse.verify import decompress
from opentse.verify.archive import member_batches
from opentse.verify.reading import UnreadableExportError
from opentse.verify.report import verify_exports

FISKALY = "fiskaly/TSE_Export_12f97c6a-2c23-4dfe-a04d-2d94342789d2_202109171415.tar"
GF = "fiskaly/TSSProtokoll_GF_2021-09-28_11_07_59.tar"  # 6 logs
WB = "fiskaly/TSSProtokoll_WB_2021-09-27_12_09_56.tar"  # 10 logs

COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
}
KINDS = sorted(COMPRESS)


def _verify(path: Path) -> dict[str, object]:
    """``opentse verify --json``: must refuse with exit 2; also in words, no traceback."""
    result = CliRunner().invoke(build_app(), ["verify", str(path), "--json"])
    assert result.exit_code == 2, result.stdout
    body = json.loads(result.stdout)
    assert body["ok"] is False
    text = CliRunner().invoke(build_app(), ["verify", str(path)])
    assert text.exit_code == 2
    assert "Traceback" not in text.output and "OK: no errors" not in text.output
    unreadable: dict[str, object] = body["unreadable"]
    assert unreadable["code"] == "E_EXPORT_UNREADABLE"
    return unreadable


def _stdlib_reads(path: Path) -> int:
    """How many members the independent reader finds (it says nothing of the rest)."""
    with tarfile.open(path) as tar:
        return len(tar.getmembers())


@pytest.mark.parametrize("kind", KINDS)
def test_a_damaged_header_inside_a_compressed_export(tmp_path: Path, kind: str) -> None:
    data = bytearray(vendor_export(FISKALY).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
        offset = tar.getmembers()[40].offset
    data[offset + 100] ^= 0x01
    path = tmp_path / f"damaged.tar.{kind}"
    path.write_bytes(COMPRESS[kind](bytes(data)))
    assert _stdlib_reads(path) == 40  # of 105: the rest left out without a word
    message = str(_verify(path)["message"])
    assert f"header at octet {offset} is damaged" in message
    assert "decompressed TAR" in message  # the octet counts in the TAR, not the file
    with pytest.raises(UnreadableExportError, match=f"header at octet {offset} is damaged"):
        for _ in member_batches(path):  # the DSFinV-K cross-check's reader
            pass


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("how", ["streams joined", "joined, then compressed"])
def test_two_exports_joined_inside_a_compressed_file(tmp_path: Path, kind: str, how: str) -> None:
    """``cat jan.tar.gz feb.tar.gz`` is one multi-stream file of two TARs (gzip,
    bzip2 and xz all read it on as one); compressing ``cat jan.tar feb.tar`` the
    same TARs in one stream. Either way the second export's 10 logs went unread."""
    first, second = vendor_export(GF).read_bytes(), vendor_export(WB).read_bytes()
    pack = COMPRESS[kind]
    joined = pack(first) + pack(second) if how == "streams joined" else pack(first + second)
    path = tmp_path / f"all.tar.{kind}"
    path.write_bytes(joined)
    with tarfile.open(fileobj=io.BytesIO(first)) as alone:
        assert _stdlib_reads(path) == len(alone.getmembers())
    message = str(_verify(path)["message"])
    assert f"followed by data at octet {len(first)}" in message
    assert "another archive appended" in message
    with pytest.raises(UnreadableExportError, match="another archive appended"):
        for _ in member_batches(path):
            pass
    # each on its own verifies, all 16 logs
    one, two = tmp_path / f"gf.tar.{kind}", tmp_path / f"wb.tar.{kind}"
    one.write_bytes(pack(first))
    two.write_bytes(pack(second))
    assert verify_exports([one, two], workers=1).to_json()["log_messages"] == 16


@pytest.mark.parametrize("kind", KINDS)
def test_a_compressed_export_cut_short(tmp_path: Path, kind: str) -> None:
    packed = COMPRESS[kind](vendor_export(FISKALY).read_bytes())
    path = tmp_path / f"cut.tar.{kind}"
    for keep in (len(packed) - 1, len(packed) - 9, len(packed) // 2, 40):
        path.write_bytes(packed[:keep])
        message = str(_verify(path)["message"])
        assert "cut short" in message, (keep, message)


def _xz_check_offset(packed: bytes) -> int:
    """Offset of the last octet of the xz stream's (one) block check, just before
    its index: the footer's backward size says where the index starts."""
    backward = (int.from_bytes(packed[-8:-4], "little") + 1) * 4
    return len(packed) - 12 - backward - 1


@pytest.mark.parametrize(
    ("kind", "where", "words"),
    [
        ("gz", lambda c: len(c) - 8, "CRC-32 does not match"),  # the trailer's CRC-32
        ("gz", lambda c: len(c) - 2, "length field does not match"),  # its ISIZE
        ("gz", lambda c: len(c) // 2, "gzip data is damaged"),
        ("bz2", lambda c: 10, "bzip2 data is damaged"),  # the block's CRC
        ("bz2", lambda c: len(c) // 2, "bzip2 data is damaged"),
        ("xz", _xz_check_offset, "xz data is damaged"),  # the block's CRC-64
        ("xz", lambda c: len(c) // 2, "xz data is damaged"),
    ],
)
def test_a_corrupt_compressed_stream(
    tmp_path: Path, kind: str, where: Callable[[bytes], int], words: str
) -> None:
    """A changed CRC (the data itself intact: tarfile read every member and never
    checked it) or a changed octet of the compressed data."""
    packed = bytearray(COMPRESS[kind](vendor_export(FISKALY).read_bytes()))
    packed[where(bytes(packed))] ^= 0x10
    path = tmp_path / f"corrupt.tar.{kind}"
    path.write_bytes(packed)
    message = str(_verify(path)["message"])
    assert words in message, message
    assert "damaged copy?" in message


def test_a_corrupt_crc_after_a_member_tarfile_reads(tmp_path: Path) -> None:
    """An archive the scan leaves to ``tarfile`` (a pax global header first) is
    decompressed to its end all the same: its CRC is checked."""
    packed = bytearray(gzip.compress(with_global_header(vendor_export(FISKALY), 0)))
    path = tmp_path / "global.tar.gz"
    path.write_bytes(packed)
    assert verify_exports([path], workers=1).to_json()["ok"] is True
    packed[-8] ^= 0x10
    path.write_bytes(packed)
    assert "CRC-32 does not match" in str(_verify(path)["message"])


@pytest.mark.parametrize(
    ("after", "words"),
    [
        (b"garbage\n", "what follows is no gzip stream"),
        (b"\x1f\x8b", "what follows is no gzip stream"),
        (b"\x1f\x8b\x08\x00", "cut short"),
    ],
)
def test_data_after_the_compressed_stream(tmp_path: Path, after: bytes, words: str) -> None:
    packed = gzip.compress(vendor_export(GF).read_bytes())
    path = tmp_path / "after.tar.gz"
    path.write_bytes(packed + after)
    assert words in str(_verify(path)["message"])


def test_a_plain_tar_appended_to_a_compressed_one(tmp_path: Path) -> None:
    """``cat jan.tar.gz feb.tar``: the gzip module's readers stop there or fail;
    the verifier names the octet where the gzip stream ends."""
    packed = gzip.compress(vendor_export(GF).read_bytes())
    path = tmp_path / "mixed.tar.gz"
    path.write_bytes(packed + vendor_export(WB).read_bytes())
    message = str(_verify(path)["message"])
    assert f"the gzip stream ends at octet {len(packed)}, and what follows is no" in message


@pytest.mark.parametrize("kind", KINDS)
def test_zero_padding_after_the_streams_is_fine(tmp_path: Path, kind: str) -> None:
    """Zeros after the last stream (gzip's and xz's padding; a copy padded to a
    block) hold nothing: the export verifies."""
    path = tmp_path / f"padded.tar.{kind}"
    path.write_bytes(COMPRESS[kind](vendor_export(GF).read_bytes()) + bytes(4096))
    report = verify_exports([path], workers=1).to_json()
    assert report["ok"] is True and report["log_messages"] == 6


def _bomb(kind: str, zeros: int) -> bytes:
    """A real export followed by ``zeros`` zero octets (padding to a TAR reader),
    compressed: about 1,000 times smaller (gzip) to 10^5 times (bzip2)."""
    head = vendor_export(GF).read_bytes()
    chunk = bytes(1 << 20)
    if kind == "gz":
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        parts = [packer.compress(head)] + [packer.compress(chunk) for _ in range(zeros >> 20)]
        return b"".join([*parts, packer.flush()])
    single = bz2.BZ2Compressor() if kind == "bz2" else lzma.LZMACompressor(preset=1)
    parts = [single.compress(head)] + [single.compress(chunk) for _ in range(zeros >> 20)]
    return b"".join([*parts, single.flush()])


@pytest.mark.parametrize("kind", KINDS)
def test_a_decompression_bomb_stops_at_the_cap(tmp_path: Path, kind: str) -> None:
    zeros = decompress.MIN_CAP + (4 << 20)
    packed = _bomb(kind, zeros)
    assert len(packed) * decompress.MAX_EXPANSION < decompress.MIN_CAP
    path = tmp_path / f"bomb.tar.{kind}"
    path.write_bytes(packed)
    with tarfile.open(path) as tar:  # valid: the stdlib reads it
        assert len(tar.getmembers()) == 8
    message = str(_verify(path)["message"])
    assert "decompresses to more than 64 MiB, the verifier's cap" in message
    assert "MAX_EXPANSION" in message


def test_an_xz_stream_that_asks_for_too_much_memory(tmp_path: Path) -> None:
    """An xz block may claim a dictionary of up to 4 GiB, which the decompressor
    would allocate: refused at MAX_LZMA_MEMORY, named. (Made by changing the block
    header's dictionary size, its CRC-32 made again: the data needs 1 MiB.)"""
    data = vendor_export(GF).read_bytes()
    filters = [{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20}]
    packed = bytearray(lzma.compress(data, format=lzma.FORMAT_XZ, filters=filters))
    size = (packed[12] + 1) * 4  # the block header after the 12-octet stream header
    assert packed[13] == 0 and packed[14:16] == b"\x21\x01"  # one filter, LZMA2
    packed[16] = 40  # its dictionary: 4 GiB - 1
    packed[12 + size - 4 : 12 + size] = zlib.crc32(packed[12 : 12 + size - 4]).to_bytes(4, "little")
    path = tmp_path / "greedy.tar.xz"
    path.write_bytes(packed)
    message = str(_verify(path)["message"])
    assert "MAX_LZMA_MEMORY" in message and "128 MiB" in message


@pytest.mark.parametrize("kind", KINDS)
def test_a_damaged_compressed_export_read_from_a_pipe(tmp_path: Path, kind: str) -> None:
    """A pipe has no size: read whole, then decompressed for the same scan."""
    data = bytearray(vendor_export(FISKALY).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
        offset = tar.getmembers()[40].offset
    data[offset + 100] ^= 0x01
    packed = COMPRESS[kind](bytes(data))
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as out:
            out.write(packed)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        with pytest.raises(UnreadableExportError, match=f"header at octet {offset} is damaged"):
            verify_exports([fifo], workers=1)
    finally:
        writer.join(10)


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(KINDS),
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), max_size=3),
    st.one_of(st.none(), st.floats(0, 1, exclude_max=True)),
    st.binary(max_size=16),
)
def test_any_damage_to_a_compressed_export_is_a_coded_refusal_or_a_report(
    kind: str, flips: list[tuple[float, int]], cut: float | None, after: bytes
) -> None:
    """Octets changed, the file cut or data appended anywhere: the verifier answers
    with a report or an error with its code (exit 2), never another exception."""
    packed = bytearray(_packed(kind))
    for where, change in flips:
        packed[int(where * len(packed))] ^= change
    if cut is not None:
        del packed[int(cut * len(packed)) :]
    packed += after
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"e.tar.{kind}"
        path.write_bytes(packed)
        try:
            report = verify_exports([path], workers=1)
        except UnreadableExportError as exc:
            assert exc.code == "E_EXPORT_UNREADABLE", exc
            return
    if not flips and cut is None and not after.strip(b"\0"):
        assert report.ok  # only zeros appended: the export as it was


@functools.cache
def _packed(kind: str) -> bytes:
    return COMPRESS[kind](vendor_export(GF).read_bytes())
