"""TarWriter output read by independent readers (stdlib tarfile, GNU tar); the reader's
safety rules on archives built with tarfile."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.errors import FormatError
from opentse.formats.tar import (
    BLOCK,
    RECORD,
    Sink,
    TarMember,
    TarWriter,
    iter_members,
    log_filename,
)
from opentse.tr03151.logtime import LogTime, TimeFormat
from opentse.tr03151.oids import LogType

MTIME = 1_700_000_000
LONG_CLIENT = "K" * 30 + "-" + "x" * 200  # name far beyond 100 (and 155) characters


def _members() -> list[tuple[str, bytes]]:
    t = LogTime(TimeFormat.GENERALIZED, MTIME)
    return [
        ("info.csv", b'"description:","d","manufacturer:","m","version:","v"\n'),
        ("AB_X509.cer", b"\x30\x03\x02\x01\x01"),
        (log_filename(LogType.SYSTEM, t, 1, operation="initialize"), b"\x30" * 100),
        (
            log_filename(
                LogType.TRANSACTION,
                t,
                2**40,
                operation="StartTransaction",
                transaction_number=2**40,
                client_id=LONG_CLIENT,
            ),
            bytes(range(256)) * 3,
        ),
        (log_filename(LogType.AUDIT, t, 3), b""),
        ("exactly-512", b"z" * BLOCK),
    ]


def _write(out: Sink) -> None:
    with TarWriter(out) as writer:
        for name, data in _members():
            writer.add(name, data, MTIME)


def test_stdlib_tarfile_reads_writer_output() -> None:
    buf = io.BytesIO()
    _write(buf)
    raw = buf.getvalue()
    assert len(raw) % RECORD == 0
    assert raw[257:265] == b"ustar\x0000"  # POSIX ustar magic + version
    assert raw[156:157] == b"0"  # first member: plain regular-file header, no pax
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        infos = tar.getmembers()
        assert [i.name for i in infos] == [name for name, _ in _members()]
        for info, (_, data) in zip(infos, _members(), strict=True):
            assert info.isreg() and info.type == tarfile.REGTYPE
            assert info.mtime == MTIME and info.mode == 0o644
            assert info.uid == 0 and info.gid == 0
            fh = tar.extractfile(info)
            assert fh is not None and fh.read() == data
    assert len(_members()[3][0]) > 255


@pytest.mark.skipif(shutil.which("tar") is None, reason="no tar program installed")
def test_tar_program_lists_writer_output(tmp_path: Path) -> None:
    path = tmp_path / "export.tar"
    with path.open("wb") as fh:
        _write(fh)
    listing = subprocess.run(
        ["tar", "-tf", str(path)], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert listing == [name for name, _ in _members()]
    content = subprocess.run(
        ["tar", "-xOf", str(path), _members()[3][0]], check=True, capture_output=True
    ).stdout
    assert content == _members()[3][1]


class WriteOnly:
    """A sink with nothing but write(): no seek, no tell."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)


def test_writer_needs_only_write() -> None:
    sink = WriteOnly()
    _write(sink)
    raw = b"".join(sink.chunks)
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        assert len(tar.getnames()) == len(_members())


def test_streaming_through_a_pipe_both_ways() -> None:
    read_fd, write_fd = os.pipe()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb") as out:
                _write(out)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=produce)
    thread.start()
    with os.fdopen(read_fd, "rb") as inp:
        with pytest.raises(OSError):
            inp.seek(0)
        members = list(iter_members(inp))
    thread.join(timeout=30)
    assert not errors
    assert [(m.name, m.data) for m in members] == _members()
    assert all(m.mtime == MTIME for m in members)


def test_writer_refuses_unsafe_names_and_use_after_close() -> None:
    writer = TarWriter(io.BytesIO())
    for bad in ["/etc/passwd", "../x", "a/../../x", "", "C:x", "a\\..\\b"]:
        with pytest.raises(FormatError):
            writer.add(bad, b"", 0)
    writer.close()
    with pytest.raises(ValueError):
        writer.add("x", b"", 0)


# ----------------------------------------------------------------------------- reader


def _build(
    entries: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.PAX_FORMAT
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _info(name: str, type_: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = linkname
    info.mtime = MTIME
    return info


def test_reader_tolerates_dot_slash_directories_and_order() -> None:
    raw = _build(
        [
            (_info("./", tarfile.DIRTYPE), None),
            (_info("./z.log"), b"z"),
            (_info("./sub", tarfile.DIRTYPE), None),
            (_info("./sub/a.log"), b"a"),
            (_info("info.csv"), b"i"),
        ]
    )
    members = list(iter_members(io.BytesIO(raw)))
    assert members == [
        TarMember("z.log", b"z", MTIME),
        TarMember("sub/a.log", b"a", MTIME),
        TarMember("info.csv", b"i", MTIME),
    ]


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_reader_handles_long_names_of_gnu_and_pax(fmt: int, tmp_path: Path) -> None:
    name = "Unixt_1_Sig-1_Log-Tra_No-1_Start_Client-" + "c" * 200 + ".log"
    raw = _build([(_info(name), b"data")], fmt)
    path = tmp_path / "a.tar"
    path.write_bytes(raw)
    assert [(m.name, m.data) for m in iter_members(path)] == [(name, b"data")]
    assert [m.name for m in iter_members(str(path))] == [name]
    gz = tmp_path / "a.tar.gz"
    gz.write_bytes(gzip.compress(raw))
    assert [m.name for m in iter_members(gz)] == [name]


@pytest.mark.parametrize(
    "entry",
    [
        _info("link.log", tarfile.SYMTYPE, "/etc/passwd"),
        _info("hard.log", tarfile.LNKTYPE, "info.csv"),
        _info("dev", tarfile.CHRTYPE),
        _info("blk", tarfile.BLKTYPE),
        _info("fifo", tarfile.FIFOTYPE),
    ],
    ids=["symlink", "hardlink", "chardev", "blockdev", "fifo"],
)
def test_reader_refuses_non_regular_members(entry: tarfile.TarInfo) -> None:
    raw = _build([(_info("info.csv"), b"ok"), (entry, None)])
    got: list[str] = []
    with pytest.raises(FormatError) as info:
        for member in iter_members(io.BytesIO(raw)):
            got.append(member.name)
    assert info.value.code == "E_TAR_UNSAFE_MEMBER"
    assert got == ["info.csv"]


@pytest.mark.parametrize("name", ["../x.log", "/abs.log", "a/../../x.log", "./../x", "..\\x"])
def test_reader_refuses_unsafe_names(name: str) -> None:
    raw = _build([(_info(name), b"evil")])
    with pytest.raises(FormatError) as info:
        list(iter_members(io.BytesIO(raw)))
    assert info.value.code == "E_TAR_UNSAFE_MEMBER"


def test_reader_size_cap_and_damaged_input() -> None:
    raw = _build([(_info("big.log"), b"x" * 11)])
    assert [m.data for m in iter_members(io.BytesIO(raw), max_member_size=11)] == [b"x" * 11]
    with pytest.raises(FormatError) as info:
        list(iter_members(io.BytesIO(raw), max_member_size=10))
    assert info.value.code == "E_TAR_MEMBER_TOO_LARGE"
    for bad in [b"", b"not a tar archive at all" * 40, raw[: BLOCK + 5]]:
        with pytest.raises(FormatError) as info:
            list(iter_members(io.BytesIO(bad)))
        assert info.value.code == "E_TAR_FORMAT"


class Discard:
    def write(self, data: bytes) -> int:
        return len(data)


def test_memory_does_not_grow_with_member_count(tmp_path: Path) -> None:
    import tracemalloc

    n = 3000
    t = LogTime(TimeFormat.UNIX, MTIME)
    names = [log_filename(LogType.AUDIT, t, i) for i in range(n)]
    path = tmp_path / "many.tar"
    with path.open("wb") as fh, TarWriter(fh) as file_writer:
        for name in names:
            file_writer.add(name, b"m" * 300, MTIME)
    tracemalloc.start()
    try:
        writer = TarWriter(Discard())
        for name in names:
            writer.add(name, b"m" * 300, MTIME)
        writer.close()
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        count = 0
        for member in iter_members(path):
            count += len(member.data) == 300
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    # tarfile alone keeps every TarInfo: about 1.5 MB for 3000 members
    assert write_peak < 1_000_000
    assert read_peak < 1_000_000


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=300).filter(lambda s: "\x00" not in s),
            st.binary(max_size=2000),
            st.integers(min_value=0, max_value=2**33 - 1),
        ),
        max_size=8,
    )
)
def test_any_members_round_trip_through_stdlib_tarfile(
    entries: list[tuple[str, bytes, int]],
) -> None:
    """Client ids become names through log_filename; whatever they hold, stdlib tarfile
    reads back exactly what was written, and so does our reader."""
    t = LogTime(TimeFormat.UNIX, MTIME)
    members = [
        (
            log_filename(
                LogType.TRANSACTION,
                t,
                i,
                operation="Finish",
                transaction_number=i,
                client_id=client,
            ),
            data,
            mtime,
        )
        for i, (client, data, mtime) in enumerate(entries)
    ]
    buf = io.BytesIO()
    with TarWriter(buf) as writer:
        for name, data, mtime in members:
            writer.add(name, data, mtime)
    raw = buf.getvalue()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        got = []
        for info in tar.getmembers():
            fh = tar.extractfile(info)
            assert fh is not None and info.isreg()
            got.append((info.name, fh.read(), info.mtime))
    assert got == members
    assert [(m.name, m.data, m.mtime) for m in iter_members(io.BytesIO(raw))] == members


def _three_members() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for i in range(3):
            info = tarfile.TarInfo(f"f{i}.log")
            info.size = 700
            tar.addfile(info, io.BytesIO(b"x" * 700))
    return buf.getvalue()  # each member: a header and two data blocks (1,536 octets)


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("cut", [1536 * 2, 1536 * 2 + 100, 1536 * 3], ids=str)
def test_reader_refuses_an_archive_cut_where_tarfile_sees_an_end(
    compressed: bool, cut: int
) -> None:
    """Cut at a header, inside one or after the last member: stdlib tarfile lists
    what is left as if complete (a copy stopped at a block boundary looks whole);
    the reader says it is cut short. (Cut in a member's padding, tarfile's stream
    mode notices by itself.)"""
    raw = _three_members()[:cut]
    blob = gzip.compress(raw) if compressed else raw
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r|*") as tar:
        assert len([m for m in tar]) >= 2  # tarfile alone notices nothing
    with pytest.raises(FormatError) as caught:
        list(iter_members(io.BytesIO(blob)))
    assert caught.value.code == "E_TAR_FORMAT" and "end-of-archive" in str(caught.value)


@pytest.mark.parametrize("compressed", [False, True])
def test_reader_takes_one_or_two_end_blocks(compressed: bool) -> None:
    raw = _three_members()
    for end in (1536 * 3 + 512, len(raw)):
        blob = gzip.compress(raw[:end]) if compressed else raw[:end]
        assert [m.name for m in iter_members(io.BytesIO(blob))] == ["f0.log", "f1.log", "f2.log"]
