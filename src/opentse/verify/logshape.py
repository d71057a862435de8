"""Decode a log by the layout of an earlier one: the verifier's fastest path.

Transaction logs of one TSE differ from one another only in a few places: the
processData, the transaction number, the signature counter, the time and the
signature. Every other octet (tags, lengths, version, log type, operation, client,
process type, serial number, algorithm) repeats from log to log of the same length.
So once ``tr03151.fastdecode`` has read a log, its layout is kept as a *shape*: the
constant runs of octets and where the variable fields sit. A later log of the same
length whose constant runs are identical has the same structure, so its fields are
cut out with one ``struct`` call instead of walking the TLVs in Python.

Why this equals the authority: ``fastdecode._fast`` decides only by the octets of the
constant runs (every tag and length, and the contents it interprets: version, log
type OID, operation, client, process type, algorithm) and by the values of the
variable fields, which are checked here exactly as there (unixTime within
0..9999-12-31, integers as signed DER). A log that differs anywhere else, or whose
time is out of range, goes to ``fastdecode.decode_log_fields``, which stays the
authority (tests/verify/test_verify_logshape.py compares the two on mutated logs).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NamedTuple

from opentse.errors import FormatError
from opentse.tr03151.codec import _MAX_UNIX
from opentse.tr03151.fastdecode import TRANSACTION, LogFields, _fast, decode_log_fields
from opentse.tr03151.logtime import TimeFormat

_UNIX = TimeFormat.UNIX
_new = tuple.__new__
_int = int.from_bytes
_INTEGERS = {1: "b", 2: "h", 4: "i", 8: "q"}  # struct codes of signed big-endian
MAX_SHAPES = 2048  # learning stops here (an export whose logs never repeat a layout)
PER_LENGTH = 8


class Layout(NamedTuple):
    """Where the constant runs and the variable fields of a log of one length lie:
    ``runs`` cuts out the constant runs, ``fields`` the variable ones (processData,
    transaction number, counter, time, signature); ``shapes`` maps the constant runs
    seen so far to what they mean."""

    runs: Callable[[bytes], tuple[bytes, ...]]
    fields: Callable[[bytes], tuple[Any, ...]]  # bytes, and int for integers
    first: int  # start of the signed data (the SEQUENCE content)
    time_end: int  # end of the signed data
    shapes: dict[tuple[bytes, ...], Shape]
    format: str  # of ``runs``: the layout's identity


class Shape(NamedTuple):
    """What a layout's constant runs say: kind, version, serial, algorithm, then
    operation, client id, process type."""

    kind: str
    version: int
    serial: bytes
    algorithm: str
    operation: str
    client: str
    process_type: str


_LAYOUTS: dict[int, list[Layout]] = {}
_count = 0


def _elements(data: bytes, pos: int, end: int) -> list[tuple[int, int, int]]:
    """(tag, content start, content end) of each TLV from ``pos`` to ``end``; only
    called on logs ``_fast`` has read (one-octet tags, definite lengths)."""
    out = []
    while pos < end:
        tag, size = data[pos], data[pos + 1]
        if size < 0x80:
            start = pos + 2
        else:
            count = size & 0x7F
            start = pos + 2 + count
            size = _int(data[pos + 2 : start])
        out.append((tag, start, start + size))
        pos = start + size
    return out


def learn(data: bytes, fields: LogFields) -> None:
    """Keep the layout of ``data`` (decoded to ``fields`` by the fast reader) when it
    is a transaction log of the usual form: unixTime, no [4] or [6] elements."""
    global _count
    if (
        _count >= MAX_SHAPES
        or fields.kind != TRANSACTION
        or fields.time_format is not _UNIX
        or fields.additional_external_data is not None
        or fields.additional_internal_data is not None
    ):
        return
    size = data[1]
    first = 2 if size < 0x80 else 2 + (size & 0x7F)
    items = _elements(data, first, len(data))
    tags = [tag for tag, _, _ in items]
    # version, type, [0], [1], ([2]), ([3]), [5], serial, algorithm, counter, time, sig
    if tags[:4] != [0x02, 0x06, 0x80, 0x81] or tags[-6:] != [0x85, 0x04, 0x30, 0x02, 0x02, 0x04]:
        return
    by_tag = {tag: (start, end) for tag, start, end in items[:-4]}
    counter, time, signature = items[-3], items[-2], items[-1]
    # processData may be absent: a zero-length field where it would begin
    client_end = by_tag[0x81][1]
    process = by_tag.get(0x82, (client_end, client_end))
    # (span, whether an INTEGER): transaction number, counter and unixTime are read
    # as signed big-endian numbers by struct itself when of 1, 2, 4 or 8 octets
    spans = [
        (process, False),
        (by_tag[0x85], True),
        (counter[1:], True),
        (time[1:], True),
        (signature[1:], False),
    ]
    runs_format = fields_format = ">"
    pos = 0
    for (start, end), integer in spans:
        size = end - start
        runs_format += f"{start - pos}s{size}x"
        code = _INTEGERS.get(size) if integer else None
        fields_format += f"{start - pos}x{code or f'{size}s'}"
        pos = end
    layouts = _LAYOUTS.setdefault(len(data), [])
    for layout in layouts:
        if layout.format == runs_format:
            break
    else:
        if len(layouts) >= PER_LENGTH:
            return
        layout = Layout(
            struct.Struct(runs_format).unpack,
            struct.Struct(fields_format).unpack,
            first,
            time[2],
            {},
            runs_format,
        )
        layouts.append(layout)
    key = layout.runs(data)
    layout.shapes[key] = Shape(
        TRANSACTION,
        fields.version,
        fields.serial_number,
        fields.signature_algorithm,
        fields.operation_type,
        fields.client_id,
        fields.process_type,
    )
    if decode(data, learning=False) != fields:  # never keep a shape that does not give its own log
        del layout.shapes[key]
        return
    _count += 1


def by_shape(data: bytes) -> LogFields | None:
    """The fields of ``data`` by a learned shape, or None (no shape fits, or the time
    is out of range: the readers decide)."""
    fields = decode(data, learning=False)
    return fields if fields is not _MISSING else None


_MISSING: LogFields = LogFields(*(None,) * len(LogFields._fields))  # type: ignore[arg-type]


def decode(data: bytes, learning: bool = True) -> LogFields:
    """The fields ``fastdecode.decode_log_fields`` returns for ``data`` (or its
    FormatError), by a learned shape when one fits (else learning from it when
    ``learning``, else returning ``_MISSING``). Runs once per log: kept in one
    function."""
    if type(data) is not bytes:
        data = bytes(data)
    layouts = _LAYOUTS.get(len(data))
    if layouts:
        for cut_runs, cut_fields, first, time_end, shapes, _ in layouts:
            shape = shapes.get(cut_runs(data))
            if shape is None:
                continue
            # the integers come as int from struct, as octets when of another length
            process, transaction, counter, unix, signature = cut_fields(data)
            if type(unix) is bytes:
                if unix[0] & 0x80:
                    break  # negative: the readers decide
                unix = _int(unix)
            if unix < 0 or unix > _MAX_UNIX:
                break  # the readers decide
            if type(counter) is bytes:
                octets = counter
                counter = _int(octets)
                if octets[0] & 0x80:
                    counter -= 1 << 8 * len(octets)
            if type(transaction) is bytes:
                octets = transaction
                transaction = _int(octets)
                if octets[0] & 0x80:
                    transaction -= 1 << 8 * len(octets)
            kind, version, serial, algorithm, operation, client, process_type = shape
            return _new(
                LogFields,
                (
                    kind,
                    version,
                    serial,
                    algorithm,
                    counter,
                    _UNIX,
                    unix,
                    None,
                    signature,
                    data[first:time_end],
                    operation,
                    client,
                    process,
                    process_type,
                    transaction,
                    None,
                    None,
                ),
            )
    if not learning:
        return _MISSING
    try:
        fast = _fast(data)
    except (FormatError, ValueError, IndexError, KeyError, OverflowError, TypeError):
        fast = None
    if fast is None:
        return decode_log_fields(data)  # the general reader: nothing to learn from
    learn(data, fast)
    return fast
