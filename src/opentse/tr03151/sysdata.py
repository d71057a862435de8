"""systemOperationData builders and parser, plus our seAuditData layout.

systemOperationData (TR-03151 v1.0.1 5.2, digest tr03151.md) is an OCTET STRING whose
content is a run of implicitly context-tagged TLVs with no enclosing SEQUENCE, e.g.
authenticateUser = ``81 userId | 82 role | 83 result``. The builders below return that
content; the engine puts it into ``SystemLogData.system_operation_data``.

Operation names: TSEs in the field (fiskaly, D-Trust) write lowerCamelCase names
(``updateTime``, ``authenticateUser``) and the TAR file names repeat them
(``..._Log-Sys_updateTime.log``), so the OP_* constants use that spelling.

Roles: the spec says ``role ENUMERATED { admin, timeAdmin }``, i.e. admin = 0 and
timeAdmin = 1 (X.680 numbers unnamed enumerations from 0). Both fiskaly and D-Trust
write 1 for their admin user. We follow the specification text (admin 0, timeAdmin 1);
when reading, the number alone is ambiguous, so :func:`role_name` reports 1 as
"timeAdmin" only when the userId does not say admin (see its docstring).

Times inside systemOperationData (updateTime, disableSecureElement, selfTest) use the
TSE's one time format, written as implicitly tagged content: unixTime -> INTEGER
content octets, utcTime/generalizedTime -> the ASCII text (as D-Trust and fiskaly do).

Our additions beyond the standard operations (their fields are documented per builder):
registerClient, deregisterClient, selfTest, exportData, startAudit, configureLogging,
deleteStoredData.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from opentse.errors import FormatError
from opentse.tr03151 import der
from opentse.tr03151.logtime import LogTime, TimeFormat

OP_INITIALIZE = "initialize"
OP_UPDATE_TIME = "updateTime"
OP_AUTHENTICATE_USER = "authenticateUser"
OP_LOG_OUT = "logOut"
OP_UNBLOCK_USER = "unblockUser"
OP_DISABLE_SECURE_ELEMENT = "disableSecureElement"
OP_REGISTER_CLIENT = "registerClient"
OP_DEREGISTER_CLIENT = "deregisterClient"
OP_SELF_TEST = "selfTest"
OP_EXPORT_DATA = "exportData"
OP_START_AUDIT = "startAudit"
OP_CONFIGURE_LOGGING = "configureLogging"
OP_DELETE_STORED_DATA = "deleteStoredData"

ROLE_ADMIN = 0  # ENUMERATED { admin, timeAdmin }
ROLE_TIME_ADMIN = 1
ROLES = {"admin": ROLE_ADMIN, "timeAdmin": ROLE_TIME_ADMIN}
LOGOUT_CAUSES = {"user": 0, "timeout": 1}  # ENUMERATED { user, timeout }
UNBLOCK_RESULTS = {"ok": 0, "failed": 1, "unknownUserId": 2, "error": 3}

MAX_TEXT = 512


class SysField(NamedTuple):
    """One element of systemOperationData: identifier octet (0x81 ...) and content."""

    tag: int
    value: bytes


def _fail(message: str) -> FormatError:
    return FormatError(message, code="E_SYSTEM_DATA_FORMAT")


def _printable(number: int, text: str, what: str, *, allow_empty: bool = False) -> bytes:
    if (not text and not allow_empty) or len(text) > MAX_TEXT or not der.is_printable(text):
        code = (
            "E_USER_ID_FORMAT"
            if what == "userId"
            else "E_CLIENT_ID_FORMAT"
            if what == "clientId"
            else None
        )
        raise FormatError(
            f"{what} must be 1..{MAX_TEXT} PrintableString characters",
            code=code or "E_SYSTEM_DATA_FORMAT",
        )
    return der.context(number, text.encode("ascii"))


def _enum(number: int, value: int | str, table: Mapping[str, int], what: str) -> bytes:
    if isinstance(value, str):
        if value not in table:
            raise _fail(f"{what} must be one of {', '.join(table)}")
        value = table[value]
    if value < 0:
        raise _fail(f"{what} must not be negative")
    return der.integer(value, 0x80 | number)


def time_content(log_time: LogTime) -> bytes:
    """A time in the TSE's format as implicit-tag content (see module docstring)."""
    if log_time.format is TimeFormat.UNIX:
        if log_time.unix < 0:
            raise _fail("unixTime must not be negative")
        return der.integer_content(log_time.unix)
    if log_time.text is not None:
        return log_time.text.encode("ascii")
    try:
        if log_time.format is TimeFormat.UTC:
            return der.utc_time_text(log_time.unix).encode("ascii")
        return der.generalized_time_text(log_time.unix).encode("ascii")
    except (ValueError, OverflowError) as exc:
        raise _fail(f"cannot write time: {exc}") from None


def decode_time(content: bytes, time_format: TimeFormat) -> int:
    """Unix seconds of a time field written in ``time_format``."""
    if time_format is TimeFormat.UNIX:
        return der.decode_integer(content)
    if time_format is TimeFormat.UTC:
        return der.decode_utc_time(content)
    return der.decode_generalized_time(content)


# --------------------------------------------------------------------------- standard


def initialize(description: str) -> bytes:
    """initialize: ``81 description``."""
    return _printable(1, description, "description", allow_empty=True)


def update_time(before: LogTime | None, after: LogTime) -> bytes:
    """updateTime: ``81 timeBeforeUpdate`` (omitted when the TSE had no time, e.g.
    after power loss) ``82 timeAfterUpdate``."""
    parts = [] if before is None else [der.context(1, time_content(before))]
    parts.append(der.context(2, time_content(after)))
    return b"".join(parts)


def authenticate_user(user_id: str, role: int | str, result: bool) -> bytes:
    """authenticateUser: ``81 userId, 82 role ENUMERATED, 83 authenticationResult``.

    ``role`` is "admin" (0) or "timeAdmin" (1) as the spec numbers them, or a number.
    """
    return (
        _printable(1, user_id, "userId") + _enum(2, role, ROLES, "role") + der.boolean(result, 0x83)
    )


def log_out(user_id: str, cause: int | str = "user") -> bytes:
    """logOut: ``81 userId, 82 logOutCause ENUMERATED { user, timeout }``."""
    return _printable(1, user_id, "userId") + _enum(2, cause, LOGOUT_CAUSES, "logOutCause")


def unblock_user(user_id: str, result: int | str) -> bytes:
    """unblockUser: ``81 userId, 82 unblockResult ENUMERATED { ok, failed,
    unknownUserId, error }``."""
    return _printable(1, user_id, "userId") + _enum(2, result, UNBLOCK_RESULTS, "unblockResult")


def disable_secure_element(time_of_deactivation: LogTime) -> bytes:
    """disableSecureElement: ``81 timeOfDeactivation``."""
    return der.context(1, time_content(time_of_deactivation))


# --------------------------------------------------------------------------- ours


def register_client(client_id: str) -> bytes:
    """registerClient: ``81 clientId`` (as fiskaly writes it)."""
    return _printable(1, client_id, "clientId")


def deregister_client(client_id: str) -> bytes:
    """deregisterClient: ``81 clientId``."""
    return _printable(1, client_id, "clientId")


def self_test(component: str, passed: bool, time: LogTime | None = None) -> bytes:
    """selfTest (ours): ``81 component, 82 BOOLEAN passed [, 83 time]``."""
    parts = [_printable(1, component, "component"), der.boolean(passed, 0x82)]
    if time is not None:
        parts.append(der.context(3, time_content(time)))
    return b"".join(parts)


def export_data(filter_description: str) -> bytes:
    """exportData (ours): ``81 filter`` describing what was exported, e.g.
    ``transactionNumber=5..9`` (empty for a full export)."""
    return _printable(1, filter_description, "filter", allow_empty=True)


def start_audit() -> bytes:
    """startAudit: no data (fiskaly writes an empty systemOperationData as well)."""
    return b""


def configure_logging(description: str) -> bytes:
    """configureLogging (ours): ``81 description`` of the new configuration."""
    return _printable(1, description, "description", allow_empty=True)


def delete_stored_data(user_id: str, up_to_counter: int | None = None) -> bytes:
    """deleteStoredData: ``81 userId`` (as D-Trust writes it) and, ours, ``82 INTEGER``
    the highest signature counter deleted."""
    out = _printable(1, user_id, "userId")
    if up_to_counter is not None:
        if up_to_counter < 0:
            raise _fail("up_to_counter must not be negative")
        out += der.integer(up_to_counter, 0x82)
    return out


# --------------------------------------------------------------------------- audit data


def audit_data(event: str, changes: Mapping[str, str]) -> bytes:
    """seAuditData of our audit logs (TR-03151 leaves its content to the TSE):

    ``SEQUENCE { event UTF8String, SEQUENCE OF SEQUENCE { key UTF8String, value UTF8String } }``
    (DER; the pairs are sorted by key so equal changes give equal bytes).
    """
    pairs = b"".join(
        der.sequence(der.utf8_string(key), der.utf8_string(value))
        for key, value in sorted(changes.items())
    )
    return der.sequence(der.utf8_string(event), der.sequence(pairs))


def parse_audit_data(data: bytes) -> tuple[str, dict[str, str]]:
    """Inverse of :func:`audit_data`; FormatError(code="E_AUDIT_DATA_FORMAT") otherwise."""
    try:
        outer = der.read_single(data)
        items = outer.children() if outer.tag == der.TAG_SEQUENCE else []
        if (
            len(items) != 2
            or items[0].tag != der.TAG_UTF8_STRING
            or items[1].tag != der.TAG_SEQUENCE
        ):
            raise ValueError("not SEQUENCE { UTF8String, SEQUENCE }")
        changes: dict[str, str] = {}
        for pair in items[1].children():
            kv = pair.children() if pair.tag == der.TAG_SEQUENCE else []
            if len(kv) != 2 or any(e.tag != der.TAG_UTF8_STRING for e in kv):
                raise ValueError("pair is not SEQUENCE { UTF8String, UTF8String }")
            changes[kv[0].content.decode("utf-8")] = kv[1].content.decode("utf-8")
        return items[0].content.decode("utf-8"), changes
    except (FormatError, ValueError) as exc:
        raise FormatError(f"not opentse audit data: {exc}", code="E_AUDIT_DATA_FORMAT") from None


# --------------------------------------------------------------------------- reading


def parse_system_operation_data(data: bytes) -> list[SysField]:
    """The elements of systemOperationData in order, unknown tags included.

    Constructed (BER) string elements keep their raw content; use
    ``der.read_element`` on them when needed. Raises FormatError(E_SYSTEM_DATA_FORMAT).
    """
    try:
        return [SysField(e.tag, e.content) for e in der.read_elements(data)]
    except FormatError as exc:
        raise _fail(f"malformed systemOperationData: {exc.message}") from None


def field(fields: list[SysField], tag: int) -> bytes | None:
    """Content of the first element with identifier ``tag`` (e.g. 0x81), or None."""
    for f in fields:
        if f.tag == tag:
            return f.value
    return None


def decode_enum(value: bytes) -> int:
    return der.decode_integer(value)


def decode_bool(value: bytes) -> bool:
    return der.decode_boolean(value)


def role_name(value: int, user_id: str | None = None) -> str:
    """Name of an authenticateUser role as read from any TSE.

    0 is admin (spec). 1 is timeAdmin per the spec, but fiskaly and D-Trust write 1 for
    their admin user, so 1 with a userId containing "admin" (case-insensitive) but not
    "time" reads as admin. Other numbers read as ``role-<n>``.
    """
    if value == ROLE_ADMIN:
        return "admin"
    if value == ROLE_TIME_ADMIN:
        uid = (user_id or "").lower()
        return "admin" if "admin" in uid and "time" not in uid else "timeAdmin"
    return f"role-{value}"
