"""System logs of version 3 (TR-03151-1 v1.1: eventType [0], eventOrigin [1],
eventTriggeredByUser [2], eventData [3]) are treated as version 2 system logs are:
the same operation type (TSEs in the field already spell v2 operations
``updateTime``, ``authenticateUser``, ... as v3 names its event types), an
updateTime that sets the clock back is no E_TIME_BACKWARDS, a file name that names
another operation is E_NAME_MISMATCH, an unknown event type is accepted. The logs
are written with asn1crypto (not our encoder) and signed with the TSE's key; the
decoder's view is checked field by field."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import ClassVar

import pytest
from asn1crypto import core

from opentse.formats.tar import log_filename
from opentse.tr03151.codec import decode_log_message
from opentse.tr03151.logmessage import SystemLogData
from opentse.tr03151.logtime import LogTime, TimeFormat
from opentse.tr03151.oids import LogType
from opentse.verify.report import verify_exports
from opentse.verify.synthetic import SyntheticTSE

T0 = 1_700_000_000
SYSTEM_OID = "0.4.0.127.0.7.3.7.1.2"
TX_OID = "0.4.0.127.0.7.3.7.1.1"


class _Algorithm(core.Sequence):
    _fields: ClassVar[list[tuple[str, type[core.Asn1Value]]]] = [
        ("algorithm", core.ObjectIdentifier)
    ]


def _text(value: str, tag: int) -> bytes:
    return core.PrintableString(value, implicit=tag).dump()


def _signed(tse: SyntheticTSE, version: int, oid: str, certified: bytes, counter: int,
            unix: int) -> bytes:  # fmt: skip
    signed = (
        core.Integer(version).dump()
        + core.ObjectIdentifier(oid).dump()
        + certified
        + core.OctetString(tse.serial).dump()
        + _Algorithm({"algorithm": tse.signer.algorithm_oid}).dump()
        + core.Integer(counter).dump()
        + core.Integer(unix).dump()
    )
    signature = core.OctetString(tse.signer.sign(signed)).dump()
    body = signed + signature
    return core.Sequence.load(b"\x30" + _length(len(body)) + body).dump()


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _system_v2(operation: str, data: bytes) -> bytes:
    return _text(operation, 0) + core.OctetString(data, implicit=1).dump()


def _system_v3(event: str, origin: str, user: str | None, data: bytes) -> bytes:
    out = _text(event, 0) + core.UTF8String(origin, implicit=1).dump()
    if user is not None:
        out += core.UTF8String(user, implicit=2).dump()
    return out + core.OctetString(data, implicit=3).dump()


def _transaction(operation: str, number: int) -> bytes:
    return (
        _text(operation, 0)
        + _text("K1", 1)
        + core.OctetString(b"Beleg^1.00_0.00_0.00_0.00_0.00^1.00:Bar", implicit=2).dump()
        + _text("Kassenbeleg-V1", 3)
        + core.Integer(number, implicit=5).dump()
    )


def _update_time(version: int, before: int) -> bytes:
    """updateTime from ``before`` to the log's own time (set back)."""
    if version == 2:
        return _system_v2("updateTime", core.Integer(before, implicit=1).dump())
    data = core.Sequence.load(b"\x30" + _length(6) + core.Integer(before).dump()).dump()
    return _system_v3("updateTime", "integration-interface", "timeadmin", data)


def _export(tse: SyntheticTSE, path: Path, version: int, *, wrong_name: bool = False) -> Path:
    """Start at T0+10, an updateTime at T0+5 (the clock set back 6 s), the Finish at
    T0+6, and an event type no table knows; certificate and info.csv from the
    synthetic TSE's own export."""
    tse.write(path, [])
    other = (
        _system_v2("getDeviceHealth", b"")
        if version == 2
        else _system_v3("getDeviceHealth", "SMA", None, b"\x30\x00")
    )
    logs = [
        (LogType.TRANSACTION, "startTransaction", 1, T0 + 10, _transaction("startTransaction", 1)),
        (LogType.SYSTEM, "updateTime", 2, T0 + 5, _update_time(version, T0 + 11)),
        (LogType.TRANSACTION, "finishTransaction", 3, T0 + 6, _transaction("finishTransaction", 1)),
        (LogType.SYSTEM, "getDeviceHealth", 4, T0 + 7, other),
    ]
    with tarfile.open(path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    for kind, operation, counter, unix, certified in logs:
        oid = SYSTEM_OID if kind is LogType.SYSTEM else TX_OID
        named = "initialize" if wrong_name and counter == 2 else operation
        name = log_filename(
            kind,
            LogTime(TimeFormat.UNIX, unix),
            counter,
            operation=named,
            transaction_number=1 if kind is LogType.TRANSACTION else None,
            client_id="K1" if kind is LogType.TRANSACTION else None,
        )
        members[name] = _signed(tse, version, oid, certified, counter, unix)
    out = path.with_name(f"v{version}-{wrong_name}.tar")
    with tarfile.open(out, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


@pytest.fixture(scope="module")
def tse() -> SyntheticTSE:
    return SyntheticTSE()


def test_the_decoder_reads_the_same_operation_type(tse: SyntheticTSE) -> None:
    v2 = decode_log_message(
        _signed(tse, 2, SYSTEM_OID, _update_time(2, T0 + 11), 2, T0 + 5)
    ).certified
    v3 = decode_log_message(
        _signed(tse, 3, SYSTEM_OID, _update_time(3, T0 + 11), 2, T0 + 5)
    ).certified
    assert isinstance(v2, SystemLogData) and isinstance(v3, SystemLogData)
    assert v2.operation_type == v3.operation_type == "updateTime"
    # v3 keeps origin, user and eventData as they stand (raw TLVs after eventType)
    assert v3.system_operation_data.startswith(core.UTF8String("integration-interface",
                                                               implicit=1).dump())  # fmt: skip


@pytest.mark.parametrize("version", [2, 3])
def test_the_verifier_treats_both_versions_alike(
    tse: SyntheticTSE, tmp_path: Path, version: int
) -> None:
    report = verify_exports([_export(tse, tmp_path / "x.tar", version)]).to_json()
    assert report["ok"] is True, report["findings"]
    assert report["findings"] == []  # no E_TIME_BACKWARDS: the updateTime set the clock
    assert report["valid_signatures"] == 4
    assert report["transactions"] == {"started": 1, "finished": 1, "open": []}


@pytest.mark.parametrize("version", [2, 3])
def test_a_file_named_after_another_operation_is_named_in_both(
    tse: SyntheticTSE, tmp_path: Path, version: int
) -> None:
    path = _export(tse, tmp_path / "x.tar", version, wrong_name=True)
    report = verify_exports([path]).to_json()
    codes = [f["code"] for f in report["findings"]]
    assert codes == ["E_NAME_MISMATCH"], report["findings"]
    (finding,) = report["findings"]
    assert "initialize in the name, updateTime in the log" in finding["message"]


# --- the data of system logs named (v3 eventOrigin/eventTriggeredByUser/eventData) ---


class _V3SystemLog(core.Sequence):
    """A version 3 system log as TR-03151-1 v1.1 lays it out (digest tr03151.md),
    read by asn1crypto: the independent reader the describer is checked against."""

    _fields: ClassVar[list[tuple[str, type[core.Asn1Value], dict[str, object]]]] = [  # type: ignore[assignment]
        ("version", core.Integer, {}),
        ("certifiedDataType", core.ObjectIdentifier, {}),
        ("eventType", core.PrintableString, {"implicit": 0}),
        ("eventOrigin", core.UTF8String, {"implicit": 1}),
        ("eventTriggeredByUser", core.UTF8String, {"implicit": 2, "optional": True}),
        ("eventData", core.OctetString, {"implicit": 3}),
        ("serialNumber", core.OctetString, {}),
        ("signatureAlgorithm", _Algorithm, {}),
        ("signatureCounter", core.Integer, {}),
        ("logTime", core.Integer, {}),
        ("signatureValue", core.OctetString, {}),
    ]


def test_v3_event_elements_are_named_as_asn1crypto_reads_them(tse: SyntheticTSE) -> None:
    from opentse.tr03151.sysdata import describe_system_data

    for user in ("timeadmin", None):
        data = _signed(tse, 3, SYSTEM_OID, _update_time(3, T0 + 11) if user else
                       _system_v3("updateTime", "CSP", None, b"\x30\x03\x02\x01\x07"),
                       2, T0 + 5)  # fmt: skip
        theirs = _V3SystemLog.load(data)
        msg = decode_log_message(data)
        assert isinstance(msg.certified, SystemLogData)
        named = describe_system_data(
            msg.certified.operation_type, msg.certified.system_operation_data, 3, TimeFormat.UNIX
        )
        event_data = theirs["eventData"].native
        expected = [("eventOrigin", repr(theirs["eventOrigin"].native))]
        if user is not None:
            expected.append(("eventTriggeredByUser", repr(theirs["eventTriggeredByUser"].native)))
        expected.append(("eventData", f"{len(event_data)} octets, hex {event_data.hex()}"))
        assert named == expected
        assert theirs["eventType"].native == msg.certified.operation_type == "updateTime"


def test_the_verifier_names_the_system_logs_data(tse: SyntheticTSE, tmp_path: Path) -> None:
    """verify --json lists each system log with its data named, v3 and v2 alike; the
    text report shows them too (nothing named them before)."""
    from typer.testing import CliRunner

    from opentse.cli.main import build_app

    for version in (2, 3):
        path = _export(tse, tmp_path / "x.tar", version)
        report = verify_exports([path]).to_json()
        logs = report["system_logs"]
        assert logs["count"] == 2
        update, other = logs["logs"]
        assert (update["operation"], update["counter"], update["version"]) == ("updateTime", 2,
                                                                             version)  # fmt: skip
        names = [f["name"] for f in update["fields"]]
        if version == 3:
            assert names == ["eventOrigin", "eventTriggeredByUser", "eventData"]
            assert update["fields"][0]["value"] == "'integration-interface'"
            origin, data = other["fields"]
            assert origin == {"name": "eventOrigin", "value": "'SMA'"}
            assert data == {"name": "eventData", "value": "2 octets, hex 3000"}
        else:
            assert names == ["timeBeforeUpdate"]
            assert update["fields"][0]["value"] == "2023-11-14T22:13:31Z"
            assert other["fields"] == []
        result = CliRunner().invoke(build_app(), ["verify", str(path)], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        assert "System logs" in result.stdout
        if version == 3:
            assert "eventOrigin 'integration-interface'" in result.stdout
            from opentse.verify.html import render_html

            page = render_html(verify_exports([path]))
            assert "<td>2</td><td>2023-11-14 22:13:25</td><td><code>updateTime</code> (v3)" in page
            assert "eventOrigin <code>&#39;integration-interface&#39;</code>" in page


def test_unreadable_system_data_is_a_warning(tse: SyntheticTSE, tmp_path: Path) -> None:
    """A v2 authenticateUser whose result is no BOOLEAN: named, not dropped."""
    bad = _system_v2("authenticateUser", _text("admin", 1) + b"\x83\x02\x01\x01")
    tse.write(tmp_path / "base.tar", [])
    with tarfile.open(tmp_path / "base.tar") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    name = log_filename(
        LogType.SYSTEM, LogTime(TimeFormat.UNIX, T0), 1, operation="authenticateUser"
    )
    members[name] = _signed(tse, 2, SYSTEM_OID, bad, 1, T0)
    out = tmp_path / "bad.tar"
    with tarfile.open(out, "w") as tar:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    report = verify_exports([out]).to_json()
    (finding,) = [f for f in report["findings"] if f["code"] == "W_SYSTEM_DATA_UNREADABLE"]
    assert "systemOperationData of the system log authenticateUser" in finding["message"]
    assert "authenticationResult" in finding["message"] and finding["file"] == name


def _big_integer(tag: int) -> bytes:
    """A context-tagged INTEGER of 2,000 octets: a number of ~4,800 digits, which
    Python refuses to turn into text."""
    return bytes([0x80 | tag, 0x82, 0x07, 0xD0]) + b"\x7f" + b"\xff" * 1999


@pytest.mark.parametrize(
    "operation, certified",
    [
        ("authenticateUser", _system_v2("authenticateUser", _text("admin", 1) + _big_integer(2))),
        ("updateTime", _system_v2("updateTime", _big_integer(1))),
    ],
)
def test_a_huge_integer_in_system_data_is_a_finding_not_a_crash(
    tse: SyntheticTSE, tmp_path: Path, operation: str, certified: bytes
) -> None:
    """A crafted export: the verifier (CLI, --json, --html) made a traceback of it
    (ValueError: integer string conversion), the dashboard's upload a 500."""
    from typer.testing import CliRunner

    from opentse.cli.main import build_app

    tse.write(tmp_path / "base.tar", [])
    with tarfile.open(tmp_path / "base.tar") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    name = log_filename(LogType.SYSTEM, LogTime(TimeFormat.UNIX, T0), 1, operation=operation)
    members[name] = _signed(tse, 2, SYSTEM_OID, certified, 1, T0)
    out = tmp_path / "big.tar"
    with tarfile.open(out, "w") as tar:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    report = verify_exports([out]).to_json()
    (finding,) = [f for f in report["findings"] if f["code"] == "W_SYSTEM_DATA_UNREADABLE"]
    assert "INTEGER of 2000 octets" in finding["message"] and finding["file"] == name
    for extra in ([], ["--json"], ["--html", str(tmp_path / "r.html")]):
        result = CliRunner().invoke(build_app(), ["verify", str(out), *extra])
        assert result.exception is None or isinstance(result.exception, SystemExit), extra
        assert "W_SYSTEM_DATA_UNREADABLE" in result.stdout + (
            (tmp_path / "r.html").read_text() if extra[:1] == ["--html"] else ""
        ), extra
