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
from datetime import UTC, datetime
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


# --------------------------------------------------------------------------- naming

#: Version 3 (TR-03151-1 v1.1, digest tr03151.md) system logs: after ``[0] eventType``
#: (the decoder's operation_type) come these context-tagged elements, which the
#: decoder keeps raw as ``system_operation_data``. The digest defines the names, not
#: eventData's inner layout, so eventData is named and shown as its octets.
V3_ELEMENTS = {0x81: "eventOrigin", 0xA1: "eventOrigin", 0x82: "eventTriggeredByUser",
               0xA2: "eventTriggeredByUser", 0x83: "eventData", 0xA3: "eventData"}  # fmt: skip

# Version 2 operations whose systemOperationData the digest (or, for registerClient
# and deregisterClient, the TSEs in the field) defines: identifier -> (name, kind).
_V2_ELEMENTS: dict[str, dict[int, tuple[str, str]]] = {
    "initialize": {0x81: ("description", "text")},
    "updatetime": {0x81: ("timeBeforeUpdate", "time"), 0x82: ("timeAfterUpdate", "time")},
    "disablesecureelement": {0x81: ("timeOfDeactivation", "time")},
    "authenticateuser": {
        0x81: ("userId", "text"),
        0x82: ("role", "role"),
        0x83: ("authenticationResult", "bool"),
    },
    "logout": {0x81: ("userId", "text"), 0x82: ("logOutCause", "logOutCause")},
    "unblockuser": {0x81: ("userId", "text"), 0x82: ("unblockResult", "unblockResult")},
    "registerclient": {0x81: ("clientId", "text")},
    "deregisterclient": {0x81: ("clientId", "text")},
}
_SHOWN = 64  # octets of an element shown as hex


def _hex(value: bytes) -> str:
    more = "..." if len(value) > _SHOWN else ""
    return f"{len(value)} octets, hex {value[:_SHOWN].hex()}{more}"


def _text(value: bytes) -> str:
    text = value.decode("utf-8", "replace")
    return repr(text) if text.isprintable() else _hex(value)


def _raw(value: bytes) -> str:
    """An element no table names: its text when it reads as printable ASCII of two
    or more characters (a name, a component), else its octets."""
    if len(value) >= 2 and value.isascii() and value.decode("ascii").isprintable():
        return f"{value.decode('ascii')!r} ({len(value)} octets)"
    return _hex(value)


def _value(kind: str, content: bytes, time_format: TimeFormat, user: str | None) -> str:
    """One v2 element's content in words; FormatError when it is not of its kind."""
    if kind == "text":
        return _text(content)
    if kind == "time":
        unix = decode_time(content, time_format)
        try:
            return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")
        except (OverflowError, OSError, ValueError):
            return f"{unix} (unix seconds, out of range)"
    if kind == "bool":
        return "true" if decode_bool(content) else "false"
    number = decode_enum(content)
    if kind == "role":
        return f"{number} ({role_name(number, user)})"
    table = LOGOUT_CAUSES if kind == "logOutCause" else UNBLOCK_RESULTS
    names = {v: k for k, v in table.items()}
    return f"{number} ({names.get(number, 'not in the enumeration')})"


def describe_system_data(
    operation: str, data: bytes, version: int, time_format: TimeFormat
) -> list[tuple[str, str]]:
    """Each element of a system log's data as (name, value in words), in order.

    Version 2: systemOperationData of the operations the digest defines (initialize,
    updateTime, disableSecureElement, authenticateUser, logOut, unblockUser; and
    registerClient/deregisterClient as TSEs write them) by name; an element of
    another operation, or of a tag the operation does not define, as ``[n]`` with
    its octets. Version 3: eventOrigin ``[1]``, eventTriggeredByUser ``[2]`` as text,
    eventData ``[3]`` as its octets. Raises FormatError(E_SYSTEM_DATA_FORMAT) when the
    data are no run of TLVs or an element is not of its kind."""
    fields = parse_system_operation_data(data)
    out: list[tuple[str, str]] = []
    if version >= 3:
        for tag, content in fields:
            name = V3_ELEMENTS.get(tag)
            if name is None:
                out.append((f"[{tag & 0x1F}]", _raw(content)))
            elif name == "eventData" or tag & 0x20:  # constructed: its octets as they are
                out.append((name, _hex(content)))
            else:
                out.append((name, _text(content)))
        return out
    known = _V2_ELEMENTS.get(operation.lower(), {})
    user_raw = field(fields, 0x81) if "userId" in str(known.get(0x81)) else None
    user = None if user_raw is None else user_raw.decode("ascii", "replace")
    for tag, content in fields:
        spec = known.get(tag)
        if spec is None:
            out.append((f"[{tag & 0x1F}]", _raw(content)))
            continue
        name, kind = spec
        try:
            out.append((name, _value(kind, content, time_format, user)))
        except FormatError as exc:
            raise _fail(f"{name}: {exc.message}") from None
    return out
