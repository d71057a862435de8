"""The learned-shape reader (verify.logshape) gives what tr03151.fastdecode gives.

Shapes are learned from valid logs; then every single-octet change (each bit flip
and a few replacement values at every position), truncation and extension of those
logs, and other valid logs of the same length, must read alike: the same fields or
the same FormatError message.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.errors import FormatError
from opentse.tr03151.codec import assemble, encode_signed_part
from opentse.tr03151.fastdecode import LogFields, decode_log_fields
from opentse.tr03151.logmessage import FINISH, START, UPDATE, LogMessage, TransactionLogData
from opentse.tr03151.logtime import LogTime, TimeFormat
from opentse.verify import logshape

SERIAL = bytes(range(32))
SHA256 = "0.4.0.127.0.7.1.1.4.1.3"
PRINTABLE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?"


def _log(
    operation: str = UPDATE,
    client: str = "till-1",
    process_data: bytes = b"Beleg^1.00",
    process_type: str = "Kassenbeleg-V1",
    number: int = 7,
    counter: int = 12,
    unix: int = 1_700_000_000,
    signature: bytes = b"\x11" * 64,
) -> bytes:
    certified = TransactionLogData(operation, client, process_data, process_type, number)
    msg = LogMessage(certified, SERIAL, SHA256, counter, LogTime(TimeFormat.UNIX, unix))
    return assemble(encode_signed_part(msg), signature)


def _read(decode: object, data: bytes) -> LogFields | str:
    assert callable(decode)
    try:
        fields = decode(data)
    except FormatError as exc:
        assert exc.code == "E_LOG_FORMAT"
        return exc.message
    assert isinstance(fields, LogFields)
    return fields


def _same(data: bytes) -> None:
    assert _read(logshape.decode, data) == _read(decode_log_fields, data)


BASES = [
    _log(),
    _log(START, process_data=b"", number=1, counter=1),
    _log(FINISH, process_data=b"x" * 200, number=300, counter=70_000),  # long form
    _log(process_type="", client="Z", number=2**31),
]


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """No shapes learned yet (other tests' mutated logs fill the per-length limit)."""
    monkeypatch.setattr(logshape, "_LAYOUTS", {})
    monkeypatch.setattr(logshape, "_count", 0)


@pytest.mark.parametrize("base", BASES, ids=["update", "start", "long", "empty"])
def test_every_changed_octet_reads_alike(fresh: None, base: bytes) -> None:
    assert logshape.by_shape(base) is None
    _same(base)
    assert logshape.by_shape(base) == decode_log_fields(base)  # the shape was learned
    for position in range(len(base)):
        for value in {*(base[position] ^ (1 << bit) for bit in range(8)), 0x00, 0x80, 0xFF}:
            _same(base[:position] + bytes((value,)) + base[position + 1 :])
    for cut in range(len(base)):
        _same(base[:cut])
    _same(base + b"\x00")


def test_values_of_the_variable_fields(fresh: None) -> None:
    """Same layout, other values: negative numbers, times out of range, other text."""
    _same(_log())
    for data in (
        _log(number=0x80),  # two octets: another length, another layout
        _log()[:-72] + b"\x02\x04\xff\xff\xff\xff" + _log()[-66:],  # negative time
        _log(counter=0x80),  # two octets: another length, another layout
        # integers of 3, 4 and 8 octets (struct reads 1, 2, 4 and 8 itself)
        _log(number=0x8000, counter=0x800000),
        _log(number=2**62 + 3, counter=2**31 - 1),
        _log(number=2**62 + 3, counter=2**31 - 1).replace(b"\x02\x04\x7f", b"\x02\x04\xff"),
        _log(unix=0),
        _log(unix=2**31 + 5),  # five octets
        _log(unix=253402300799),  # 9999-12-31T23:59:59Z
        # one second later: refused by both readers
        _log(unix=253402300799).replace(b"\x3a\xff\xf4\x41\x7f", b"\x3a\xff\xf4\x41\x80"),
        _log(signature=b"\x00" * 64),
        _log(client="till-2"),
        _log(FINISH),
        _log(process_data=b"Beleg^2.00"),
    ):
        _same(data)
    fields = logshape.decode(_log(client="till-2", number=9, process_data=b"Beleg^3.00"))
    assert (fields.client_id, fields.transaction_number, fields.process_data) == (
        "till-2",
        9,
        b"Beleg^3.00",
    )


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([START, UPDATE, FINISH]),
    st.text(PRINTABLE, min_size=1, max_size=30),
    st.binary(max_size=140),
    st.sampled_from(["", "Kassenbeleg-V1", "Bestellung-V1"]),
    st.integers(1, 2**40),
    st.integers(1, 2**40),
    st.integers(0, 253402300799),
    st.binary(min_size=1, max_size=70),
    st.integers(0, 300),
    st.integers(0, 255),
)
def test_random_logs_read_alike(
    operation: str,
    client: str,
    process_data: bytes,
    process_type: str,
    number: int,
    counter: int,
    unix: int,
    signature: bytes,
    position: int,
    value: int,
) -> None:
    data = _log(operation, client, process_data, process_type, number, counter, unix, signature)
    _same(data)
    _same(data)  # now possibly by its own shape
    position %= len(data)
    _same(data[:position] + bytes((value,)) + data[position + 1 :])
