"""der.py against asn1crypto (an independent encoder) and hand-written BER."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

import pytest
from asn1crypto import core
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.errors import FormatError
from opentse.tr03151 import der

SETTINGS = settings(max_examples=150, deadline=None)


@SETTINGS
@given(st.integers(min_value=-(2**80), max_value=2**80))
def test_integer_matches_asn1crypto(value: int) -> None:
    assert der.integer(value) == core.Integer(value).dump()
    assert der.decode_integer(der.integer_content(value)) == value


@SETTINGS
@given(st.binary(max_size=70000).filter(lambda b: len(b) < 200 or len(b) > 60000))
def test_octet_string_lengths_match_asn1crypto(value: bytes) -> None:
    encoded = der.octet_string(value)
    assert encoded == core.OctetString(value).dump()
    element = der.read_single(encoded)
    assert element.content == value and element.raw == encoded


@SETTINGS
@given(
    st.tuples(st.integers(0, 2), st.integers(0, 39), st.lists(st.integers(0, 2**70), max_size=8))
)
def test_oid_matches_asn1crypto(parts: tuple[int, int, list[int]]) -> None:
    dotted = ".".join(str(p) for p in (parts[0], parts[1], *parts[2]))
    assert der.oid(dotted) == core.ObjectIdentifier(dotted).dump()
    assert der.decode_oid(der.oid_content(dotted)) == dotted


def test_oid_rejects_nonsense() -> None:
    for bad in ("1", "3.1", "1.40", "a.b", "1.-2"):
        with pytest.raises(ValueError):
            der.oid(bad)
    for content in (b"", b"\x2a\x86", b"\x2a\x80\x01"):
        with pytest.raises(FormatError):
            der.decode_oid(content)


@SETTINGS
@given(st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2049, 12, 31, 23, 59, 59)))
def test_times_match_asn1crypto(moment: datetime) -> None:
    moment = moment.replace(microsecond=0, tzinfo=UTC)
    unix = calendar.timegm(moment.timetuple())
    assert der.utc_time(unix) == core.UTCTime(moment).dump()
    assert der.generalized_time(unix) == core.GeneralizedTime(moment).dump()
    assert der.decode_utc_time(der.utc_time_text(unix).encode()) == unix
    assert der.decode_generalized_time(der.generalized_time_text(unix).encode()) == unix


def test_time_variants_and_errors() -> None:
    base = calendar.timegm((2021, 9, 28, 9, 4, 53))
    assert der.decode_utc_time(b"210928090453Z") == base
    assert der.decode_utc_time(b"2109280904Z") == base - 53
    assert der.decode_utc_time(b"210928110453+0200") == base
    assert der.decode_generalized_time(b"20210928090453.123Z") == base
    assert der.decode_generalized_time(b"20210928090453,5Z") == base
    assert der.decode_generalized_time(b"20210928090453") == base
    assert der.decode_generalized_time(b"20210928040453-0500") == base
    assert der.decode_utc_time(b"491231235959Z") == calendar.timegm((2049, 12, 31, 23, 59, 59))
    assert der.decode_utc_time(b"500101000000Z") == calendar.timegm((1950, 1, 1, 0, 0, 0))
    for bad in (
        b"",
        b"21092809045Z",
        b"211328090453Z",
        b"210230090453Z",
        b"210928250453Z",
        b"21092809045xZ",
    ):
        with pytest.raises(FormatError):
            der.decode_utc_time(bad)
    for bad in (b"2021", b"00000101000000Z", b"20210928090453.Z", b"20210928090453+9900"):
        with pytest.raises(FormatError):
            der.decode_generalized_time(bad)
    with pytest.raises(ValueError):
        der.utc_time_text(calendar.timegm((2050, 1, 1, 0, 0, 0)))


def test_reader_indefinite_and_raw_bytes() -> None:
    ber = bytes.fromhex("a2800403414243248004014400000000") + b"\x85\x01\x07"
    elements = der.read_elements(ber)
    assert [e.tag for e in elements] == [0xA2, 0x85]
    first = elements[0]
    assert first.indefinite and first.constructed and first.is_context(2)
    assert first.raw == ber[:-3]
    assert first.string_value() == b"ABCD"
    assert elements[1].content == b"\x07" and elements[1].start == len(ber) - 3


def test_reader_long_form_and_high_tag() -> None:
    data = b"\x04\x82\x01\x00" + b"x" * 256
    assert der.read_single(data).content == b"x" * 256
    high = bytes.fromhex("9f8101") + b"\x01\x05"
    element = der.read_single(high)
    assert (
        element.tag_class == der.CONTEXT
        and element.tag_number == 129
        and element.content == b"\x05"
    )


@pytest.mark.parametrize(
    "bad",
    [
        b"\x04",
        b"\x04\x05abc",
        b"\x04\x80abc\x00\x00",  # indefinite on a primitive
        b"\x24\x80\x04\x01a",  # no end-of-contents
        b"\x04\xff",
        b"\x04\x85\x00\x00\x00\x00\x01a",
        b"\x04\x82\x01",
        b"\x1f\x81\x81\x81\x81\x01\x00",
        b"\x1f",
        b"\x30\x80" * 200,
    ],
)
def test_reader_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(FormatError) as info:
        der.read_elements(bad)
    assert info.value.code == "E_DER"


def test_read_single_rejects_trailing_bytes_and_nothing() -> None:
    assert der.read_elements(b"") == []
    with pytest.raises(FormatError):
        der.read_single(b"")
    with pytest.raises(FormatError):
        der.read_single(b"\x02\x01\x01\x00")


def test_printable_set() -> None:
    assert der.is_printable("ERS 8cb8e2de-4052 (x)+,./:=?'")
    for bad in ("a_b", "a@b", "Kasse München", "a;b", "a\nb", 'a"b', "a*b", "a&b"):
        assert not der.is_printable(bad)
    assert der.boolean(True) == core.Boolean(True).dump()
    assert der.utf8_string("Grüße") == core.UTF8String("Grüße").dump()
    assert der.decode_boolean(b"\xff") and not der.decode_boolean(b"\x00")
    with pytest.raises(FormatError):
        der.decode_boolean(b"")
    with pytest.raises(FormatError):
        der.decode_integer(b"")
