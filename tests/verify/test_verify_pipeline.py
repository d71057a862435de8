"""The one-pass path of ``load_exports`` (memory-mapped scan, decode, signatures on
worker threads) gives the same report as the member-list path the CLI takes, also
when certificates come after the logs, and falls back to the full reader cleanly."""

from __future__ import annotations

import gzip
import io
import sys
import tarfile
from pathlib import Path

import pytest
from verify_data import collect_members

from opentse.verify.archive import (
    UnreadableExportError,
    decode_members,
    load_exports,
)
from opentse.verify.logcheck import CHUNK
from opentse.verify.report import verify_exports, verify_loaded
from opentse.verify.synthetic import build_export

LOGS = 2700  # several chunks: the worker threads take part


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bytes]]:
    assert LOGS > 4 * CHUNK
    path = tmp_path_factory.mktemp("pipeline") / "e.tar"
    build_export(path, LOGS)
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]


def _write(path: Path, items: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _tampered(members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Bad signature, undecodable log, swapped names, a missing and a repeated log,
    and the certificate moved behind every log."""
    items = list(members)
    name, data = items[100]
    items[100] = (name, data[:-1] + bytes((data[-1] ^ 1,)))
    name, data = items[2100]
    items[2100] = (name, data[:10] + b"\xff" + data[11:])
    (first, one), (second, other) = items[300], items[301]
    items[300], items[301] = (first, other), (second, one)
    del items[400]
    items.insert(500, items[499])
    certificate = items.pop(1)
    assert certificate[0].endswith(".der") or "X509" in certificate[0].upper()
    items.append(certificate)
    return items


def _reference(paths: list[Path]) -> dict[str, object]:
    sources, listed = collect_members(paths)
    return verify_loaded(decode_members(sources, listed, workers=1)).to_json()


@pytest.mark.parametrize("workers", [1, 2])
def test_stream_equals_member_list(
    tmp_path: Path, members: list[tuple[str, bytes]], workers: int
) -> None:
    path = _write(tmp_path / "t.tar", _tampered(members))
    expected = _reference([path])
    codes = {f["code"] for f in expected["findings"]}  # type: ignore[attr-defined]
    assert {"E_SIGNATURE_INVALID", "E_LOG_FORMAT", "E_NAME_MISMATCH", "E_COUNTER_GAP"} <= codes
    # minus the bad, the undecodable and the missing log, plus the repeated one
    assert expected["valid_signatures"] == LOGS - 2
    assert verify_exports([path], workers=workers).to_json() == expected
    settled = load_exports([path], workers=workers)
    assert settled.pending is None
    assert verify_loaded(settled).to_json() == expected


def test_unsettled_export_settles_in_verify_loaded(
    tmp_path: Path, members: list[tuple[str, bytes]]
) -> None:
    path = _write(tmp_path / "e.tar", members)
    export = load_exports([path], workers=2, settle=False)
    report = verify_loaded(export)
    assert export.pending is None
    assert all(entry.signature_ok for entry in export.logs)
    assert report.ok and len(report.signatures.valid) == LOGS


def test_several_archives_stream(tmp_path: Path, members: list[tuple[str, bytes]]) -> None:
    info, certificate, *logs = members
    one = _write(tmp_path / "one.tar", [info, certificate, *logs[:1500]])
    two = _write(tmp_path / "two.tar", [info, *logs[1500:], certificate])
    expected = _reference([one, two])
    assert expected["valid_signatures"] == LOGS
    assert verify_exports([one, two], workers=2).to_json() == expected


def test_unusual_archive_falls_back_after_batches(
    tmp_path: Path, members: list[tuple[str, bytes]]
) -> None:
    """A link after the first batch: the scan has handed out logs already; the full
    reader then refuses the archive, the thread pool is gone, the interval is back."""
    interval = sys.getswitchinterval()
    path = tmp_path / "link.tar"
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("evil.log")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(UnreadableExportError):
        load_exports([path], workers=2)
    assert sys.getswitchinterval() == interval
    gz = tmp_path / "e.tar.gz"
    gz.write_bytes(gzip.compress(_write(tmp_path / "plain.tar", members).read_bytes()))
    assert verify_exports([gz], workers=2).to_json() == _reference([tmp_path / "plain.tar"])
    assert sys.getswitchinterval() == interval


def test_empty_and_missing_files_are_unreadable(tmp_path: Path) -> None:
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    for path in (empty, tmp_path / "absent.tar"):
        with pytest.raises(UnreadableExportError):
            load_exports([path])
