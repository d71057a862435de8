"""Each export check on small signed exports crafted for it: the finding, its code,
its severity and the file it names."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from opentse.tr03151.logmessage import FINISH, START, UPDATE, SystemLogData, TransactionLogData
from opentse.tr03151.logtime import TimeFormat
from opentse.verify.report import verify_exports
from opentse.verify.synthetic import LogSpec, SyntheticTSE

T0 = 1_700_000_000


@pytest.fixture(scope="module")
def tse() -> SyntheticTSE:
    return SyntheticTSE()


def tx(op: str, txn: int, counter: int, *, client: str = "K1", at: int | None = None) -> LogSpec:
    data = TransactionLogData(
        op, client, b"Beleg^1.00_0.00_0.00_0.00_0.00^1.00:Bar", "Kassenbeleg-V1", txn
    )
    return LogSpec(data, counter, T0 + counter if at is None else at)


def sys_log(op: str, counter: int, at: int, fmt: TimeFormat = TimeFormat.UNIX) -> LogSpec:
    return LogSpec(SystemLogData(op, b""), counter, at, fmt)


def run(tse: SyntheticTSE, tmp_path: Path, specs: list[LogSpec], **kw: bool) -> dict[str, Any]:
    path = tmp_path / "x.tar"
    tse.write(path, specs, **kw)
    return verify_exports([path]).to_json()


def codes(report: dict[str, Any], code: str) -> list[dict[str, str]]:
    return [f for f in report["findings"] if f["code"] == code]


def test_clean_export_has_no_findings(tse: SyntheticTSE, tmp_path: Path) -> None:
    report = run(
        tse,
        tmp_path,
        [sys_log("UpdateTime", 1, T0), tx(START, 1, 2), tx(UPDATE, 1, 3), tx(FINISH, 1, 4)],
    )
    assert report["ok"] is True and report["findings"] == []


def test_time_backwards_and_update_time(tse: SyntheticTSE, tmp_path: Path) -> None:
    specs = [
        tx(START, 1, 1, at=T0 + 100),
        tx(FINISH, 1, 2, at=T0 + 50),  # backwards, no updateTime: error
        sys_log("UpdateTime", 3, T0 + 10),  # the clock is set back: allowed
        tx(START, 2, 4, at=T0 + 11),
        tx(FINISH, 2, 5, at=T0 + 12),
    ]
    report = run(tse, tmp_path, specs)
    (back,) = codes(report, "E_TIME_BACKWARDS")
    assert "Sig-2_" in back["file"] and "50 s before" in back["message"]


def test_mixed_time_formats(tse: SyntheticTSE, tmp_path: Path) -> None:
    specs = [sys_log("UpdateTime", 1, T0), sys_log("SelfTest", 2, T0 + 1, TimeFormat.GENERALIZED)]
    (mixed,) = codes(run(tse, tmp_path, specs), "E_TIME_FORMAT_MIXED")
    assert "unixTime" in mixed["message"] and "generalizedTime" in mixed["message"]


def test_duplicate_counter_and_transaction(tse: SyntheticTSE, tmp_path: Path) -> None:
    specs = [tx(START, 1, 1), tx(START, 1, 2), tx(FINISH, 1, 3), tx(FINISH, 1, 3, at=T0 + 9)]
    report = run(tse, tmp_path, specs)
    (serial,) = report["serial_numbers"].values()
    assert serial["duplicates"] == [3]
    assert len(codes(report, "E_COUNTER_DUPLICATE")) == 1
    dup = codes(report, "E_TX_DUPLICATE")
    assert [("Sig-2_" in f["file"]) for f in dup] == [True, False]
    assert "started twice" in dup[0]["message"] and "finished twice" in dup[1]["message"]


def test_transaction_sequence_findings(tse: SyntheticTSE, tmp_path: Path) -> None:
    specs = [
        tx(START, 1, 1),
        tx(FINISH, 1, 2, client="K2"),  # another client finishes
        tx(UPDATE, 2, 3),  # no start (export begins at counter 1: an error)
        tx(START, 5, 4),  # numbers 3, 4 skipped; 5 stays open
        tx(FINISH, 1, 5),  # finished again
    ]
    report = run(tse, tmp_path, specs)
    assert report["transactions"] == {"started": 2, "finished": 1, "open": [5]}
    assert "'K2' here but 'K1'" in codes(report, "W_TX_CLIENT_MISMATCH")[0]["message"]
    (no_start,) = codes(report, "E_TX_NO_START")
    assert "No-2_Update" in no_start["file"]
    assert "3..4" in codes(report, "W_TX_GAP")[0]["message"]
    assert "No-5_Start" in codes(report, "W_TX_OPEN")[0]["file"]
    assert codes(report, "E_TX_DUPLICATE")


def test_info_csv_missing_and_unknown_members(tse: SyntheticTSE, tmp_path: Path) -> None:
    report = run(tse, tmp_path, [sys_log("UpdateTime", 1, T0)], info=False)
    assert codes(report, "E_INFO_MISSING") and report["ok"] is False


def _rewrite(path: Path, extra: dict[str, bytes]) -> Path:
    with tarfile.open(path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    members.update(extra)
    out = path.with_name("rewritten.tar")
    with tarfile.open(out, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def test_unreadable_members_are_parse_errors(tse: SyntheticTSE, tmp_path: Path) -> None:
    path = tmp_path / "x.tar"
    tse.write(path, [sys_log("UpdateTime", 1, T0)])
    bad_log = "Unixt_1700000002_Sig-2_Log-Sys_SelfTest.log"
    out = _rewrite(
        path,
        {
            bad_log: b"\x30\x03\x02\x01\x07",
            "FFFF_X509.pem": b"-----BEGIN CERTIFICATE-----\nnope\n",
            "notes.txt": b"hello",
            "info.csv": b"garbage without pairs",
        },
    )
    report = verify_exports([out]).to_json()
    assert report["parse_errors"] == sorted([bad_log, "FFFF_X509.pem", "info.csv"])
    assert codes(report, "E_LOG_FORMAT")[0]["file"] == bad_log
    assert codes(report, "E_CERT_FORMAT")[0]["file"] == "FFFF_X509.pem"
    assert codes(report, "W_UNKNOWN_MEMBER")[0]["file"] == "notes.txt"
    assert codes(report, "E_INFO_FORMAT")
    assert report["log_messages"] == 2 and report["valid_signatures"] == 1


def test_info_csv_checked_per_archive(tse: SyntheticTSE, tmp_path: Path) -> None:
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    tse.write(first, [sys_log("UpdateTime", 1, T0)])
    tse.write(second, [sys_log("SelfTest", 2, T0 + 1)], info=False)
    report = verify_exports([first, second]).to_json()
    (missing,) = codes(report, "E_INFO_MISSING")
    assert missing["file"] == "b.tar"
    assert report["valid_signatures"] == 2
