"""A transaction without its Start log after missing signature counters: the
warning says the Start may be among them (a deleted log), not only that it may be
in an earlier export."""

from __future__ import annotations

import tarfile
from pathlib import Path

from verify_data import vendor_export

from opentse.verify.report import verify_exports


def test_the_missing_start_points_at_the_counter_gap_before_it() -> None:
    tar = vendor_export("faulty/ThreeMissingAreasOfSignatureCounter.tar")
    report = verify_exports([tar]).to_json()
    (no_start,) = [f for f in report["findings"] if f["code"] == "W_TX_NO_START"]
    message = no_start["message"]
    assert message.startswith("transaction 1 (client '1a69a823")
    assert "it may have started in an earlier export" in message
    assert "or be among the missing signature counter(s) 43..45: see E_COUNTER_GAP" in message


def test_without_a_gap_before_it_only_the_earlier_export_is_named() -> None:
    tar = vendor_export("faulty/inconsistent_certificates.tar")
    report = verify_exports([tar]).to_json()
    first = next(f for f in report["findings"] if f["code"] == "W_TX_NO_START")
    assert first["message"].startswith("transaction 188 ")
    assert first["message"].endswith("(it may have started in an earlier export)")


def test_an_export_from_counter_1_names_the_gap_where_the_start_was(tmp_path: Path) -> None:
    """An export from signature counter 1 (E_TX_NO_START: no earlier export can hold
    the Start) whose transaction's Start log was taken out: the error points at the
    counter gap where it was (it said only 'no Start log in this export', which
    reads like a second defect of the TSE beside the gap)."""
    source = vendor_export(
        "fiskaly/TSE_Export_685e1812-79a4-4c8c-9a07-9e93a019efa7_202109171015.tar"
    )
    start = "_Sig-20_Log-Tra_No-11_Start_"
    target = tmp_path / "without_start.tar"
    with tarfile.open(source) as tar, tarfile.open(target, "w", format=tar.format) as out:
        for member in tar.getmembers():
            if start not in member.name:
                out.addfile(member, tar.extractfile(member))
    report = verify_exports([target]).to_json()
    (gap,) = [f for f in report["findings"] if f["code"] == "E_COUNTER_GAP"]
    assert "signature counter(s) 20 missing" in gap["message"]
    (no_start,) = [f for f in report["findings"] if f["code"] == "E_TX_NO_START"]
    assert no_start["message"].startswith("transaction 11 (client 'e55730de")
    assert no_start["message"].endswith(
        "has no Start log in this export (it may be among the missing signature"
        " counter(s) 20: see E_COUNTER_GAP)"
    )
    assert "earlier export" not in no_start["message"]
