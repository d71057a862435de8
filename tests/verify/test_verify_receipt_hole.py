"""A receipt whose transaction lies in a hole of the TAR (its logs taken out, or in
an export between two given): E_RECEIPT_NOT_IN_TSE_EXPORT names the numbers the
TAR lacks around it. It said the TAR 'holds transactions 1..73', which reads as if
the receipt's number were there, and named only a receipt the TSE did not sign or a
TAR of another period, not logs missing from it."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from receipt_support import finish_receipts, run
from verify_data import vendor_export

EXPORT = "fiskaly/TSE_Export_685e1812-79a4-4c8c-9a07-9e93a019efa7_202109171015.tar"


def _without(source: Path, target: Path, numbers: tuple[int, ...]) -> None:
    """``source`` without the logs of transactions ``numbers`` (stdlib tarfile)."""
    marks = tuple(f"_No-{n}_" for n in numbers)
    with tarfile.open(source) as tar, tarfile.open(target, "w", format=tar.format) as out:
        for member in tar.getmembers():
            if not any(mark in member.name for mark in marks):
                out.addfile(member, tar.extractfile(member))


def _message(receipt: str, tar: Path) -> str:
    code, out = run("verify-receipt", receipt, "--json", "--tse-export", str(tar))
    assert code == 1, out
    (finding,) = [
        f for f in json.loads(out)["findings"] if f["code"] == "E_RECEIPT_NOT_IN_TSE_EXPORT"
    ]
    return str(finding["message"])


def test_the_numbers_missing_around_the_receipts_are_named(tmp_path: Path) -> None:
    source = vendor_export(EXPORT)
    by_number = {
        r.message.certified.transaction_number: r.text  # type: ignore[union-attr]
        for r in finish_receipts(source)
    }
    one, several = tmp_path / "one.tar", tmp_path / "several.tar"
    _without(source, one, (11,))
    _without(source, several, (11, 12, 13))
    message = _message(by_number[11], one)
    assert "(it holds transactions 1..73 of that TSE but not 11)" in message
    assert "a TAR with logs missing (opentse verify shows counter gaps)" in message
    message = _message(by_number[12], several)
    assert "(it holds transactions 1..73 of that TSE but none of 11..13)" in message
