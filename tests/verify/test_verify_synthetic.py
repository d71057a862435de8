"""Exports of our own making: every curve and time format verifies, and the parallel
signature path (used above PARALLEL_THRESHOLD logs) agrees with the serial one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from opentse.tr03151.logtime import TimeFormat
from opentse.verify.archive import load_exports
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
    loaded = load_exports([export.path])
    victim = loaded.logs[1234]
    assert victim.message is not None
    victim.message = replace(victim.message, signature_value=bytes(64))  # one bad signature
    ticks: list[int] = []
    parallel = verify_loaded(loaded, workers=2, progress=ticks.append).to_json()
    serial = verify_loaded(loaded, workers=1).to_json()
    assert parallel == serial
    assert parallel["invalid_signatures"] == [victim.file]
    assert parallel["valid_signatures"] == 2499
    assert sum(ticks) == 2500
