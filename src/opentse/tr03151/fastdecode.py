"""A one-pass reader of the common log layout, for the verifier's hot loop.

An export holds 10^5..10^7 logs and the verifier reads every one next to a signature
check of ~80 us, so the decoder must cost a few microseconds. This reader handles the
layout every TSE we know writes (one-octet tags, definite lengths, primitive elements,
no algorithm parameters) with index arithmetic on the bytes, and returns a flat
:class:`LogFields` tuple instead of three frozen dataclasses (building those costs
more than the parsing; :func:`to_message` builds them when someone asks).

Anything else (BER indefinite or constructed strings, audit logs, high tag numbers,
every malformed input) goes to ``codec.decode_log_message``, the authority: the fast
path accepts a subset of what it accepts and returns the same values for it
(tests/tr03151/test_tr03151_fastpath.py compares the two on valid, mutated and random
input). So :func:`decode_log_fields` raises only FormatError(code="E_LOG_FORMAT"),
with the general reader's message.
"""

from __future__ import annotations

from typing import NamedTuple

from opentse.errors import FormatError
from opentse.tr03151 import der
from opentse.tr03151.codec import _MAX_UNIX, _OIDS, _TX_NAMES, _log_time, decode_log_message
from opentse.tr03151.logmessage import (
    AuditLogData,
    LogMessage,
    SystemLogData,
    TransactionLogData,
)
from opentse.tr03151.logtime import LogTime, TimeFormat

TRANSACTION = "transaction"
SYSTEM = "system"
AUDIT = "audit"


class LogFields(NamedTuple):
    """A decoded log, flat. ``kind`` is transaction/system/audit; for system logs
    ``client_id`` is "", ``process_data`` the systemOperationData, ``transaction_number``
    0; for audit logs ``process_data`` is seAuditData."""

    kind: str
    version: int
    serial_number: bytes
    signature_algorithm: str
    signature_counter: int
    time_format: TimeFormat
    unix: int
    time_text: str | None
    signature_value: bytes
    signed_data: bytes
    operation_type: str
    client_id: str
    process_data: bytes
    process_type: str
    transaction_number: int
    additional_external_data: bytes | None
    additional_internal_data: bytes | None


# version TLV + certifiedDataType TLV -> (version, kind), for the two kinds read here
_HEADS = {
    der.integer(version) + der.oid(oid): (version, kind)
    for oid, kind in _OIDS.items()
    if kind != AUDIT
    for version in (2, 3)
}
assert all(len(head) == 14 for head in _HEADS)
_OPERATIONS: dict[bytes, str] = {}  # raw transaction operationType -> v2 spelling
_ALGORITHMS: dict[bytes, str] = {}  # algorithm SEQUENCE content -> dotted OID
_UNIX = TimeFormat.UNIX
_new = tuple.__new__


def _long(data: bytes, pos: int) -> tuple[int, int]:
    """(content start, content end) of a TLV at ``pos`` with a long-form length."""
    count = data[pos + 1] & 0x7F
    if count == 0 or count > 4:  # 0x80: indefinite length, for the general reader
        raise ValueError("not a definite long-form length")
    start = pos + 2 + count
    if start > len(data):
        raise ValueError("truncated")
    return start, start + int.from_bytes(data[pos + 2 : start], "big")


def _operation(raw: bytes) -> str:
    """Transaction operation names of either version in the v2 spelling (as the
    general reader does); cached, a TSE writes three of them."""
    text = raw.decode("utf-8")
    operation = _TX_NAMES.get(text.lower(), text)
    if len(_OPERATIONS) < 64:
        _OPERATIONS[raw] = operation
    return operation


def _algorithm(content: bytes) -> str | None:
    """``SEQUENCE { OID }`` content -> dotted OID; None when parameters follow."""
    if len(content) < 2 or content[0] != der.TAG_OID or content[1] >= 0x80:
        return None
    if 2 + content[1] != len(content):
        return None
    dotted = der.decode_oid(content[2:])
    if len(_ALGORITHMS) < 64:
        _ALGORITHMS[content] = dotted
    return dotted


def _text(raw: bytes) -> str:
    """UTF-8 text of a clientId or processType; cached (a TSE writes few of them), so
    equal texts are one object and compare by identity later."""
    text = raw.decode("utf-8")
    if len(_TEXTS) < 4096:
        _TEXTS[raw] = text
    return text


_TEXTS: dict[bytes, str] = {}


def _fast(data: bytes) -> LogFields | None:
    """The common layout; None (or any exception) means: ask the general reader.

    Elements are read with short-form lengths inline, unrolled in the order the
    schema gives them; a length running past the end makes a later index fail or
    leaves ``pos`` != ``end``, both of which fall back. Any context-specific element
    left over (out of order, repeated, constructed, high tag number) falls back too.
    """
    end = len(data)
    if data[0] != 0x30:
        return None
    size = data[1]
    if size < 0x80:
        first = 2
        if size + 2 != end:
            return None
    else:
        first, stop = _long(data, 0)
        if stop != end:
            return None
    # version INTEGER 2|3 and certifiedDataType OID, 14 octets for the two log types
    head = _HEADS.get(data[first : first + 14])
    if head is None:
        return None
    version, kind = head
    pos = first + 14
    # certifiedData: primitive context-specific elements [0]..[6] in ascending order
    op = client = process_data = process_type = external = number_bytes = internal = None
    tag = data[pos]
    if tag == 0x80:
        size = data[pos + 1]
        if size < 0x80:
            start = pos + 2
            pos = start + size
        else:
            start, pos = _long(data, pos)
        op = data[start:pos]
        tag = data[pos]
    if tag == 0x81:
        size = data[pos + 1]
        if size < 0x80:
            start = pos + 2
            pos = start + size
        else:
            start, pos = _long(data, pos)
        client = data[start:pos]
        tag = data[pos]
    if tag == 0x82:
        size = data[pos + 1]
        if size < 0x80:
            start = pos + 2
            pos = start + size
        else:
            start, pos = _long(data, pos)
        process_data = data[start:pos]
        tag = data[pos]
    if tag == 0x83:
        size = data[pos + 1]
        if size < 0x80:
            start = pos + 2
            pos = start + size
        else:
            start, pos = _long(data, pos)
        process_type = data[start:pos]
        tag = data[pos]
    if tag == 0x84:
        size = data[pos + 1]
        if size < 0x80:
            start = pos + 2
            pos = start + size
        else:
            start, pos = _long(data, pos)
        external = data[start:pos]
        tag = data[pos]
    if tag == 0x85:
        size = data[pos + 1]
        if size < 0x80:
            start = pos + 2
            pos = start + size
        else:
            start, pos = _long(data, pos)
        number_bytes = data[start:pos]
        tag = data[pos]
    if tag == 0x86:
        size = data[pos + 1]
        if size < 0x80:
            start = pos + 2
            pos = start + size
        else:
            start, pos = _long(data, pos)
        internal = data[start:pos]
        tag = data[pos]
    # serialNumber OCTET STRING (the next universal element: anything context-specific
    # left over is for the general reader)
    if tag != 0x04:
        return None
    size = data[pos + 1]
    if size < 0x80:
        start = pos + 2
        pos = start + size
    else:
        start, pos = _long(data, pos)
    serial = data[start:pos]
    # signatureAlgorithm SEQUENCE { OID }
    if data[pos] != 0x30 or data[pos + 1] >= 0x80:
        return None
    start = pos + 2
    pos = start + data[pos + 1]
    content = data[start:pos]
    algorithm = _ALGORITHMS.get(content) or _algorithm(content)
    if algorithm is None:
        return None
    # signatureCounter INTEGER
    size = data[pos + 1]
    if data[pos] != 0x02 or not 0 < size < 0x80:
        return None
    start = pos + 2
    pos = start + size
    counter = int.from_bytes(data[start:pos], "big", signed=True)
    # logTime: unixTime INTEGER, UTCTime or GeneralizedTime
    tag = data[pos]
    size = data[pos + 1]
    if size >= 0x80:
        return None
    start = pos + 2
    time_end = start + size
    if time_end > end:
        return None
    time_text: str | None = None
    if tag == 0x02:
        if size == 0:
            return None
        unix = int.from_bytes(data[start:time_end], "big", signed=True)
        if not 0 <= unix <= _MAX_UNIX:
            return None
        time_format = _UNIX
    else:
        log_time = _log_time(tag, data[start:time_end])
        time_format, unix, time_text = log_time.format, log_time.unix, log_time.text
    # signatureValue OCTET STRING, the last element
    if data[time_end] != 0x04:
        return None
    size = data[time_end + 1]
    if size < 0x80:
        start = time_end + 2
        pos = start + size
    else:
        start, pos = _long(data, time_end)
    if pos != end or op is None:
        return None
    if kind == TRANSACTION:
        if client is None or not number_bytes:
            return None
        return _new(
            LogFields,
            (
                TRANSACTION,
                version,
                serial,
                algorithm,
                counter,
                time_format,
                unix,
                time_text,
                data[start:pos],
                data[first:time_end],
                _OPERATIONS.get(op) or _operation(op),
                _TEXTS.get(client) or _text(client),
                b"" if process_data is None else process_data,
                "" if process_type is None else _TEXTS.get(process_type) or _text(process_type),
                int.from_bytes(number_bytes, "big", signed=True),
                external,
                internal,
            ),
        )
    # system log: [0] operationType, then v2: [1] systemOperationData,
    # [2] additionalInternalData; v3: the event elements after eventType, raw
    if version != 2:
        return None  # v3 event elements may be constructed: the general reader
    if process_type is not None or external is not None or number_bytes is not None:
        return None
    if internal is not None:
        return None
    return _new(
        LogFields,
        (
            SYSTEM,
            version,
            serial,
            algorithm,
            counter,
            time_format,
            unix,
            time_text,
            data[start:pos],
            data[first:time_end],
            op.decode("utf-8"),
            "",
            client or b"",
            "",
            0,
            None,
            process_data,
        ),
    )


def from_message(msg: LogMessage) -> LogFields:
    """The flat view of a message the general reader decoded."""
    data = msg.certified
    log_time = msg.log_time
    head = (
        msg.version,
        msg.serial_number,
        msg.signature_algorithm,
        msg.signature_counter,
        log_time.format,
        log_time.unix,
        log_time.text,
        msg.signature_value,
        msg.signed_data or b"",
    )
    if isinstance(data, TransactionLogData):
        return LogFields(
            TRANSACTION,
            *head,
            data.operation_type,
            data.client_id,
            data.process_data,
            data.process_type,
            data.transaction_number,
            data.additional_external_data,
            data.additional_internal_data,
        )
    if isinstance(data, SystemLogData):
        return LogFields(
            SYSTEM,
            *head,
            data.operation_type,
            "",
            data.system_operation_data,
            "",
            0,
            None,
            data.additional_internal_data,
        )
    return LogFields(AUDIT, *head, "", "", data.se_audit_data, "", 0, None, None)


def to_message(fields: LogFields) -> LogMessage:
    """The LogMessage ``codec.decode_log_message`` returns for the same bytes."""
    certified: TransactionLogData | SystemLogData | AuditLogData
    if fields.kind == TRANSACTION:
        certified = TransactionLogData(
            fields.operation_type,
            fields.client_id,
            fields.process_data,
            fields.process_type,
            fields.transaction_number,
            fields.additional_external_data,
            fields.additional_internal_data,
        )
    elif fields.kind == SYSTEM:
        certified = SystemLogData(
            fields.operation_type, fields.process_data, fields.additional_internal_data
        )
    else:
        certified = AuditLogData(fields.process_data)
    return LogMessage(
        certified=certified,
        serial_number=fields.serial_number,
        signature_algorithm=fields.signature_algorithm,
        signature_counter=fields.signature_counter,
        log_time=LogTime(fields.time_format, fields.unix, fields.time_text),
        signature_value=fields.signature_value,
        version=fields.version,
        signed_data=fields.signed_data,
    )


def decode_log_fields(data: bytes) -> LogFields:
    """Decode one log message to its flat fields; FormatError(code="E_LOG_FORMAT")
    exactly when ``codec.decode_log_message`` raises it."""
    if type(data) is not bytes:
        data = bytes(data)
    try:
        fast = _fast(data)
    except (FormatError, ValueError, IndexError, KeyError, OverflowError, TypeError):
        fast = None
    if fast is not None:
        return fast
    return from_message(decode_log_message(data))
