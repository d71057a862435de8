"""The verifier's one-pass reader (tr03151.fastdecode) agrees with the general decoder.

For every input: either both raise FormatError(E_LOG_FORMAT) with the same message, or
both return the same log. Inputs: valid logs of every kind and time format, version 3
and BER variants, hand-made edge cases, and byte flips, truncations, insertions and
random bytes around them.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tr03151_strategies import messages

from opentse.errors import FormatError
from opentse.tr03151 import der
from opentse.tr03151.codec import assemble, decode_log_message, encode_signed_part
from opentse.tr03151.fastdecode import _fast, decode_log_fields, from_message, to_message
from opentse.tr03151.logmessage import LogMessage

SERIAL = bytes(range(32))
SHA256 = "0.4.0.127.0.7.1.1.4.1.3"


def _same(data: bytes) -> None:
    """Both readers agree on ``data`` (value or error message)."""
    try:
        expected = decode_log_message(data)
    except FormatError as exc:
        with pytest.raises(FormatError) as caught:
            decode_log_fields(data)
        assert caught.value.code == "E_LOG_FORMAT"
        assert caught.value.message == exc.message
        return
    fields = decode_log_fields(data)
    assert to_message(fields) == expected
    assert from_message(expected) == fields


def _signed(msg: LogMessage, signature: bytes) -> bytes:
    return assemble(encode_signed_part(msg), signature)


@settings(max_examples=200, deadline=None)
@given(messages, st.binary(min_size=1, max_size=132))
def test_valid_logs_read_alike(msg: LogMessage, signature: bytes) -> None:
    data = _signed(msg, signature)
    _same(data)
    if msg.log_type.value != "Aud":  # the fast reader takes transaction and system logs
        assert _fast(data) is not None
    v3 = data.replace(der.integer(2), der.integer(3), 1)
    _same(v3)


@settings(max_examples=200, deadline=None)
@given(messages, st.data())
def test_damaged_logs_read_alike(msg: LogMessage, data: st.DataObject) -> None:
    full = _signed(msg, b"\x05" * 64)
    cut = data.draw(st.integers(0, len(full) - 1))
    _same(full[:cut])
    position = data.draw(st.integers(0, len(full) - 1))
    flipped = bytearray(full)
    flipped[position] ^= 1 << data.draw(st.integers(0, 7))
    _same(bytes(flipped))
    value = data.draw(st.integers(0, 255))
    _same(full[:position] + bytes((value,)) + full[position:])
    _same(full[:position] + bytes((value,)) + full[position + 1 :])
    _same(full + bytes((value,)))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_read_alike(data: bytes) -> None:
    _same(data)
    _same(b"\x30" + bytes((len(data) & 0x7F,)) + data)
    _same(b"\x30\x81" + bytes((len(data) & 0xFF,)) + data)


def _tx_log(*middle: bytes, algorithm: bytes | None = None, time: bytes | None = None) -> bytes:
    signed = (
        der.integer(2)
        + der.oid("0.4.0.127.0.7.3.7.1.1")
        + b"".join(middle)
        + der.octet_string(SERIAL)
        + (algorithm if algorithm is not None else der.sequence(der.oid(SHA256)))
        + der.integer(7)
        + (time if time is not None else der.integer(1700000000))
    )
    return assemble(signed, b"\x01" * 64)


OP = der.context(0, b"StartTransaction")
CLIENT = der.context(1, b"c1")
NUMBER = der.integer(4, 0x85)


@pytest.mark.parametrize(
    "data",
    [
        _tx_log(OP, CLIENT, NUMBER),  # fiskaly: no [2], no [3]
        _tx_log(OP, CLIENT, der.context(2, b"x" * 300), NUMBER),  # long-form processData
        _tx_log(OP, CLIENT, b"\xa2\x80\x04\x01x\x00\x00", NUMBER),  # BER processData
        _tx_log(CLIENT, OP, NUMBER),  # out of order
        _tx_log(OP, NUMBER),  # no clientId
        _tx_log(OP, CLIENT, b"\x85\x00"),  # empty transaction number
        _tx_log(OP, CLIENT, der.integer(-3, 0x85)),  # negative transaction number
        _tx_log(OP, CLIENT, NUMBER, der.context(7, b"x")),  # unknown element
        _tx_log(OP, CLIENT, b"\x9f\x05\x01\x04"),  # high tag number
        _tx_log(OP, CLIENT, NUMBER, algorithm=der.sequence(der.oid(SHA256), b"\x05\x00")),
        _tx_log(OP, CLIENT, NUMBER, algorithm=der.sequence(der.oid(SHA256), der.oid(SHA256))),
        _tx_log(OP, CLIENT, NUMBER, algorithm=der.sequence(b"\x06\x81\x01\x00")),
        _tx_log(OP, CLIENT, NUMBER, algorithm=der.sequence()),
        _tx_log(OP, CLIENT, NUMBER, time=der.utc_time(1700000000)),
        _tx_log(OP, CLIENT, NUMBER, time=der.tlv(0x17, b"2311141513Z")),
        _tx_log(OP, CLIENT, NUMBER, time=der.tlv(0x18, b"20231114221320.5+0100")),
        _tx_log(OP, CLIENT, NUMBER, time=der.tlv(0x18, b"20231399221320Z")),
        _tx_log(OP, CLIENT, NUMBER, time=der.integer(-1)),
        _tx_log(OP, CLIENT, NUMBER, time=der.integer(2**64)),
        _tx_log(OP, CLIENT, NUMBER, time=b"\x02\x00"),
        _tx_log(OP, CLIENT, NUMBER, time=der.octet_string(b"x")),
        _tx_log(der.context(0, b"\xff"), CLIENT, NUMBER),  # not UTF-8
        _tx_log(der.context(0, b"finishtransaction"), CLIENT, NUMBER),
    ],
)
def test_edge_cases_read_alike(data: bytes) -> None:
    _same(data)
    _same(data[:-1])
    _same(data + b"\x00")


def test_fast_reader_takes_the_common_layout() -> None:
    data = _tx_log(OP, CLIENT, der.context(2, b"pd"), der.context(3, b"pt"), NUMBER)
    fields = _fast(data)
    assert fields is not None
    assert fields.transaction_number == 4
    assert fields.client_id == "c1"
    assert fields.signed_data == data[3:-66]
    assert decode_log_fields(bytearray(data)) == fields
