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


def test_version_3_logs_and_ber_process_data(tse: SyntheticTSE, tmp_path: Path) -> None:
    """TR-03151-1 v1.1 logs (lower-case operation names, the new system-log layout)
    and BER indefinite processData, signed over the bytes as they stand."""
    from opentse.formats.tar import log_filename
    from opentse.tr03151 import der
    from opentse.tr03151.logtime import LogTime
    from opentse.tr03151.oids import LogType

    def signed_log(version: int, oid: str, certified: bytes, counter: int) -> bytes:
        signed = (
            der.integer(version)
            + der.oid(oid)
            + certified
            + der.octet_string(tse.serial)
            + der.sequence(der.oid(tse.signer.algorithm_oid))
            + der.integer(counter)
            + der.integer(T0 + counter)
        )
        return der.sequence(signed, der.octet_string(tse.signer.sign(signed)))

    ber_pd = bytes.fromhex("a280") + der.octet_string(b"Beleg^1.00") + b"\x00\x00"
    logs = {
        1: signed_log(
            3,
            "0.4.0.127.0.7.3.7.1.2",
            der.context(0, b"updateTime") + der.context(1, b"tse") + der.boolean(True, 0x82),
            1,
        ),
        2: signed_log(
            3,
            "0.4.0.127.0.7.3.7.1.1",
            der.context(0, b"startTransaction")
            + der.context(1, b"K1")
            + der.context(2, b"")
            + der.context(3, b"Kassenbeleg-V1")
            + der.integer(1, 0x85),
            2,
        ),
        3: signed_log(
            2,
            "0.4.0.127.0.7.3.7.1.1",
            der.context(0, b"FinishTransaction")
            + der.context(1, b"K1")
            + ber_pd
            + der.context(3, b"Kassenbeleg-V1")
            + der.integer(1, 0x85),
            3,
        ),
    }
    path = tmp_path / "v3.tar"
    tse.write(path, [])
    extra: dict[str, bytes] = {}
    for counter, data in logs.items():
        op = {1: "updateTime", 2: "StartTransaction", 3: "FinishTransaction"}[counter]
        kind = LogType.SYSTEM if counter == 1 else LogType.TRANSACTION
        name = log_filename(
            kind,
            LogTime(TimeFormat.UNIX, T0 + counter),
            counter,
            operation=op,
            transaction_number=None if counter == 1 else 1,
            client_id=None if counter == 1 else "K1",
        )
        extra[name] = data
    report = verify_exports([_rewrite(path, extra)]).to_json()
    assert report["ok"] is True, report["findings"]
    assert report["findings"] == []
    assert report["valid_signatures"] == 3
    assert report["transactions"] == {"started": 1, "finished": 1, "open": []}
