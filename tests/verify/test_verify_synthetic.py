"""Exports of our own making: every curve and time format verifies, and the parallel
signature path (used above PARALLEL_THRESHOLD logs) agrees with the serial one."""

from __future__ import annotations

import gzip
import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from verify_data import collect_members, read_members

from opentse.formats.tar import iter_members
from opentse.tr03151.logtime import TimeFormat
from opentse.verify.archive import decode_members
from opentse.verify.report import verify_exports, verify_loaded
from opentse.verify.synthetic import build_export


@pytest.mark.parametrize(
    ("curve", "fmt"),
    [
        ("P-256", TimeFormat.UNIX),
        ("P-384", TimeFormat.GENERALIZED),
        ("brainpoolP256r1", TimeFormat.UTC),
        ("brainpoolP384r1", TimeFormat.UNIX),
    ],
)
def test_own_exports_verify(tmp_path: Path, curve: str, fmt: TimeFormat) -> None:
    export = build_export(tmp_path / "e.tar", 40, curve=curve, time_format=fmt)
    report = verify_exports([export.path]).to_json()
    assert report["ok"] is True
    assert report["log_messages"] == report["valid_signatures"] == 40
    assert report["serial_numbers"][export.serial_hex]["missing_ranges"] == []
    assert report["transactions"]["started"] == 13
    assert report["transactions"]["finished"] == 13


def test_parallel_equals_serial(tmp_path: Path) -> None:
    export = build_export(tmp_path / "big.tar", 2500)
    sources, members = collect_members([export.path])
    logs = [i for i, m in enumerate(members) if m[1].endswith(".log")]
    label, name, data = members[logs[1234]]
    members[logs[1234]] = (label, name, data[:-1] + bytes([data[-1] ^ 1]))  # bad signature
    ticks: list[int] = []
    parallel = verify_loaded(decode_members(sources, members, workers=2, progress=ticks.append))
    serial = verify_loaded(decode_members(sources, members, workers=1))
    assert parallel.to_json() == serial.to_json()
    assert parallel.to_json()["invalid_signatures"] == [label]
    assert parallel.to_json()["valid_signatures"] == 2499
    assert sum(ticks) == 2500
    assert [e.message for e in parallel.export.logs] == [e.message for e in serial.export.logs]


def test_fast_scan_agrees_with_tarfile_reader(tmp_path: Path) -> None:
    """The verifier's ustar scan and the project's tarfile-based reader see the same
    members, also with pax long names and ./ prefixes (vendor archives)."""
    export = build_export(tmp_path / "e.tar", 30)
    with tarfile.open(export.path) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    long_name = "Unixt_1_Sig-99_Log-Tra_No-9_Start_Client-" + "x" * 120 + ".log"
    other = tmp_path / "pax.tar"
    with tarfile.open(other, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [*members, (long_name, b"0"), ("./dir/info.csv", b"a")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    for path in (export.path, other):
        fast = read_members(path)
        reference = [(m.name, m.data) for m in iter_members(path)]
        assert fast == reference
    assert read_members(other)[-2][0] == long_name
    gz = tmp_path / "e.tar.gz"
    gz.write_bytes(gzip.compress(export.path.read_bytes()))
    assert read_members(gz) == read_members(export.path)  # falls back to tarfile


def test_logs_outside_certificate_validity(tmp_path: Path) -> None:
    """The synthetic certificate is valid from 2000: logs of 1999 are reported once."""
    export = build_export(
        tmp_path / "old.tar", 12, start=datetime(1999, 12, 31, 23, 59, 55, tzinfo=UTC)
    )
    report = verify_exports([export.path]).to_json()
    (finding,) = [f for f in report["findings"] if f["code"] == "E_CERT_NOT_VALID"]
    assert finding["message"].startswith("4 log(s) lie outside the validity of the certificate")
    assert "Sig-1_" in finding["file"]
    assert report["ok"] is False and report["valid_signatures"] == 12


def test_html_times_of_a_year_before_1000_have_four_digits(tmp_path: Path) -> None:
    """The transaction table wrote strftime's '999-01-01 ...' on glibc."""
    from opentse.verify.html import render_html

    export = build_export(
        tmp_path / "old.tar",
        4,
        time_format=TimeFormat.GENERALIZED,
        start=datetime(999, 1, 1, tzinfo=UTC),
    )
    page = render_html(verify_exports([export.path]))
    assert "<td>0999-01-01 00:00:02</td><td>0999-01-01 00:00:04</td>" in page
