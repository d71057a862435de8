"""systemOperationData builders: byte-exact against what fiskaly and D-Trust wrote,
parsed back, and our seAuditData layout read by asn1crypto."""

from __future__ import annotations

import pytest
from asn1crypto import core
from hypothesis import given, settings
from hypothesis import strategies as st
from tr03151_strategies import log_times, printable
from tr03151_vendor import load

from opentse.errors import FormatError
from opentse.tr03151 import sysdata
from opentse.tr03151.codec import decode_log_message
from opentse.tr03151.logmessage import SystemLogData
from opentse.tr03151.logtime import LogTime, TimeFormat


def test_builders_by_hand() -> None:
    unix = LogTime(TimeFormat.UNIX, 0x6133F365)
    assert (
        sysdata.update_time(unix, LogTime(TimeFormat.UNIX, 0x6133F368)).hex()
        == "81046133f36582046133f368"
    )
    assert sysdata.update_time(None, unix).hex() == "82046133f365"
    utc = LogTime(TimeFormat.UTC, 1632819893)
    assert sysdata.disable_secure_element(utc) == b"\x81\x0d210928090453Z"
    assert (
        sysdata.authenticate_user("admin", "admin", True)
        == b"\x81\x05admin\x82\x01\x00\x83\x01\xff"
    )
    assert (
        sysdata.authenticate_user("t", "timeAdmin", False) == b"\x81\x01t\x82\x01\x01\x83\x01\x00"
    )
    assert sysdata.log_out("admin", "timeout") == b"\x81\x05admin\x82\x01\x01"
    assert sysdata.unblock_user("u", "unknownUserId") == b"\x81\x01u\x82\x01\x02"
    assert sysdata.initialize("opentse (1)") == b"\x81\x0bopentse (1)"
    assert sysdata.register_client("c-1") == sysdata.deregister_client("c-1") == b"\x81\x03c-1"
    assert sysdata.self_test("se", True, unix) == b"\x81\x02se\x82\x01\xff\x83\x04\x61\x33\xf3\x65"
    assert sysdata.export_data("") == b"\x81\x00"
    assert sysdata.start_audit() == b""
    assert sysdata.configure_logging("x") == b"\x81\x01x"
    assert sysdata.delete_stored_data("admin", 300) == b"\x81\x05admin\x82\x02\x01\x2c"


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda: sysdata.authenticate_user("a_b", "admin", True), "E_USER_ID_FORMAT"),
        (lambda: sysdata.authenticate_user("", "admin", True), "E_USER_ID_FORMAT"),
        (lambda: sysdata.authenticate_user("a", "root", True), "E_SYSTEM_DATA_FORMAT"),
        (lambda: sysdata.log_out("a", "crash"), "E_SYSTEM_DATA_FORMAT"),
        (lambda: sysdata.unblock_user("a", -1), "E_SYSTEM_DATA_FORMAT"),
        (lambda: sysdata.register_client("Kasse München"), "E_CLIENT_ID_FORMAT"),
        (lambda: sysdata.initialize("x" * 513), "E_SYSTEM_DATA_FORMAT"),
        (lambda: sysdata.update_time(None, LogTime(TimeFormat.UNIX, -5)), "E_SYSTEM_DATA_FORMAT"),
        (
            lambda: sysdata.update_time(None, LogTime(TimeFormat.UTC, 2524608000)),
            "E_SYSTEM_DATA_FORMAT",
        ),
        (lambda: sysdata.parse_system_operation_data(b"\x81\x05ab"), "E_SYSTEM_DATA_FORMAT"),
        (lambda: sysdata.parse_audit_data(b"\x30\x00"), "E_AUDIT_DATA_FORMAT"),
        (lambda: sysdata.parse_audit_data(b"\x04\x00"), "E_AUDIT_DATA_FORMAT"),
    ],
)
def test_builder_and_parser_errors(call: object, code: str) -> None:
    with pytest.raises(FormatError) as info:
        call()  # type: ignore[operator]
    assert info.value.code == code


VENDOR_SYSTEM_ARCHIVES = [
    "dtrust/4b5ba740-06fe-4506-9afc-e9f1eabadaa4.tar",
    "fiskaly/TSE_Export_12f97c6a-2c23-4dfe-a04d-2d94342789d2_202109171415.tar",
    "fiskaly/TSE_Export_e7d7835e-41c0-4aa2-a3c7-3c2bd62c9e9a_202109161500.tar",
]


def _rebuild(op: str, fields: list[sysdata.SysField]) -> bytes | None:
    """Our builder fed with the values read from a vendor log (None: not comparable)."""
    f = {x.tag: x.value for x in fields}
    unix = TimeFormat.UNIX
    if op == "updateTime":
        before = LogTime(unix, sysdata.decode_time(f[0x81], unix)) if 0x81 in f else None
        return sysdata.update_time(before, LogTime(unix, sysdata.decode_time(f[0x82], unix)))
    if op == "authenticateUser":
        return sysdata.authenticate_user(
            f[0x81].decode(), sysdata.decode_enum(f[0x82]), sysdata.decode_bool(f[0x83])
        )
    if op == "logOut":
        return sysdata.log_out(f[0x81].decode(), sysdata.decode_enum(f[0x82]))
    if op == "unblockUser":
        return sysdata.unblock_user(f[0x81].decode(), sysdata.decode_enum(f[0x82]))
    if op in ("registerClient", "deregisterClient"):
        return sysdata.register_client(f[0x81].decode())
    if op == "deleteStoredData":
        return sysdata.delete_stored_data(f[0x81].decode())
    if op == "startAudit":
        return sysdata.start_audit()
    return None


@pytest.mark.parametrize("relative", VENDOR_SYSTEM_ARCHIVES)
def test_builders_reproduce_vendor_system_data(relative: str) -> None:
    compared: set[str] = set()
    for data in load(relative).logs.values():
        msg = decode_log_message(data)
        if not isinstance(msg.certified, SystemLogData):
            continue
        raw = msg.certified.system_operation_data
        rebuilt = _rebuild(msg.certified.operation_type, sysdata.parse_system_operation_data(raw))
        if rebuilt is not None:
            assert rebuilt == raw, msg.certified.operation_type
            compared.add(msg.certified.operation_type)
    assert {"updateTime", "logOut", "authenticateUser"} <= compared or {
        "registerClient",
        "startAudit",
    } <= compared


def test_vendor_admin_role_reads_as_admin() -> None:
    archive = load("dtrust/4b5ba740-06fe-4506-9afc-e9f1eabadaa4.tar")
    roles = []
    for data in archive.logs.values():
        msg = decode_log_message(data)
        if (
            isinstance(msg.certified, SystemLogData)
            and msg.certified.operation_type == "authenticateUser"
        ):
            fields = sysdata.parse_system_operation_data(msg.certified.system_operation_data)
            user = sysdata.field(fields, 0x81)
            role = sysdata.field(fields, 0x82)
            assert user is not None and role is not None
            roles.append(sysdata.role_name(sysdata.decode_enum(role), user.decode()))
    assert roles and set(roles) == {"admin"}
    assert sysdata.role_name(0) == "admin"
    assert sysdata.role_name(1) == "timeAdmin"
    assert sysdata.role_name(1, "TimeAdmin") == "timeAdmin"
    assert sysdata.role_name(7) == "role-7"


@settings(max_examples=100, deadline=None)
@given(printable, st.sampled_from(["admin", "timeAdmin"]), st.booleans(), log_times, log_times)
def test_parse_recovers_builder_values(
    user: str, role: str, result: bool, before: LogTime, after: LogTime
) -> None:
    fields = sysdata.parse_system_operation_data(sysdata.authenticate_user(user, role, result))
    assert [f.tag for f in fields] == [0x81, 0x82, 0x83]
    assert fields[0].value.decode() == user
    assert sysdata.decode_enum(fields[1].value) == sysdata.ROLES[role]
    assert sysdata.decode_bool(fields[2].value) is result
    after = LogTime(before.format, after.unix if after.format is before.format else before.unix)
    times = sysdata.parse_system_operation_data(sysdata.update_time(before, after))
    assert [sysdata.decode_time(f.value, before.format) for f in times] == [before.unix, after.unix]


class _Pair(core.Sequence):
    _fields = [("key", core.UTF8String), ("value", core.UTF8String)]  # noqa: RUF012 (asn1crypto API)


class _Pairs(core.SequenceOf):
    _child_spec = _Pair


class _AuditData(core.Sequence):
    _fields = [("event", core.UTF8String), ("changes", _Pairs)]  # noqa: RUF012 (asn1crypto API)


@settings(max_examples=100, deadline=None)
@given(
    st.text(max_size=30), st.dictionaries(st.text(max_size=20), st.text(max_size=200), max_size=8)
)
def test_audit_data_read_by_asn1crypto(event: str, changes: dict[str, str]) -> None:
    data = sysdata.audit_data(event, changes)
    parsed = _AuditData.load(data)
    assert parsed["event"].native == event
    assert {p["key"].native: p["value"].native for p in parsed["changes"]} == changes
    assert [p["key"].native for p in parsed["changes"]] == sorted(changes)
    assert parsed.dump(force=True) == data  # already DER
    assert sysdata.parse_audit_data(data) == (event, changes)
