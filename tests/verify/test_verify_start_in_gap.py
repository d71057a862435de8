"""A transaction without its Start log after missing signature counters: the
warning says the Start may be among them (a deleted log), not only that it may be
in an earlier export."""

from __future__ import annotations

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
