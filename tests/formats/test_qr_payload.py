"""Receipt QR payload: parsing, building, validation naming the field."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.formats.qr import (
    FIELD_NAMES,
    QRFormatError,
    QRPayload,
    build_qr_payload,
    format_qr_time,
    line_end,
    parse_qr_payload,
)
from opentse.tr03151.logtime import TimeFormat
from opentse.tr03151.oids import SIGNATURE_ALGORITHMS

VECTOR = (
    "V0;955002-00;Kassenbeleg-V1;Beleg^0.00_2.55_0.00_0.00_0.00^2.55:Bar;18;112;"
    "2019-07-10T18:41:04.000Z;2019-07-10T18:41:04.000Z;ecdsa-plain-SHA256;unixTime;"
    "MEQCIAy4P9k+7x9saDO0uRZ4El8QwN+qTgYiv1DIaJIMWRiuAiAt+saFDGjK2Yi5Cxgy7PprXQ5O0seRgx4ltdpW9REvwA==;"
    "BHhWOeisRpPBTGQ1W4VUH95TXx2GARf8e2NYZXJoInjtGqnxJ8sZ3CQpYgjI+LYEmW5A37sLWHsyU7nSJUBemyU="
)
POINT = b"\x04" + bytes(range(1, 65))


def test_parse_vector_fields() -> None:
    p = parse_qr_payload(VECTOR)
    assert p.version == "V0"
    assert p.client_id == "955002-00"
    assert p.process_type == "Kassenbeleg-V1"
    assert p.process_data == "Beleg^0.00_2.55_0.00_0.00_0.00^2.55:Bar"
    assert (p.transaction_number, p.signature_counter) == (18, 112)
    assert p.start_time == datetime(2019, 7, 10, 18, 41, 4, tzinfo=UTC)
    assert p.log_time == p.start_time
    assert p.signature_algorithm == "ecdsa-plain-SHA256"
    assert p.time_format is TimeFormat.UNIX
    assert p.signature[:2] == b"\x30\x44" and len(p.public_key) == 65
    assert p.to_text() == VECTOR


def test_process_data_may_hold_semicolons() -> None:
    """Bestellung-V1 lines use ';': the fields are counted from both ends."""
    order = '1;"Kaffee";2.50\r\n2;"Wasser ""still""";1.80'
    text = build_qr_payload(
        client_id="K1",
        process_type="Bestellung-V1",
        process_data=order,
        transaction_number=5,
        signature_counter=9,
        start_time=datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC),
        log_time=datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC),
        signature_algorithm="ecdsa-plain-SHA384",
        time_format="generalizedTime",
        signature=b"\x01" * 96,
        public_key=b"\x04" + b"\x02" * 96,
    )
    p = parse_qr_payload(text)
    assert p.process_data == order
    assert p.start_time.microsecond == 123000
    assert ";2024-05-01T12:00:00.123Z;2024-05-01T12:00:01.000Z;" in text


BAD_FIELDS = [
    (0, "V1", "version"),
    (1, "Kasse_1", "clientId"),  # "_" is not a PrintableString character
    (1, "", "clientId"),
    (2, "x" * 101, "processType"),
    (4, "0", "transactionNumber"),
    (4, "-3", "transactionNumber"),
    (4, "012", "transactionNumber"),
    (5, "1e3", "signatureCounter"),
    (6, "2019-07-10 18:41:04", "startTime"),
    (6, "2019-07-10T18:41:05.000Z", "startTime"),  # after logTime
    (7, "2019-13-10T18:41:04.000Z", "logTime"),
    (8, "ecdsa-SHA256", "signatureAlgorithm"),
    (9, "unixtime", "logTimeFormat"),
    (10, "not base64!", "signature"),
    (11, base64.b64encode(b"\x02" + bytes(32)).decode(), "publicKey"),
]


@pytest.mark.parametrize(("index", "value", "field"), BAD_FIELDS)
def test_invalid_field_is_named(index: int, value: str, field: str) -> None:
    parts = VECTOR.split(";")
    parts[index] = value
    with pytest.raises(QRFormatError) as caught:
        parse_qr_payload(";".join(parts))
    assert caught.value.field == field
    assert caught.value.code == "E_QR_FORMAT"
    assert field in str(caught.value)
    assert field in FIELD_NAMES


def test_too_few_fields() -> None:
    with pytest.raises(QRFormatError) as caught:
        parse_qr_payload("V0;a;b;c")
    assert caught.value.field == "payload"


def test_naive_time_refused() -> None:
    with pytest.raises(ValueError):
        format_qr_time(datetime(2024, 1, 1))


_printable = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?",
    min_size=1,
    max_size=40,
)
_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


@settings(max_examples=100, deadline=None)
@given(
    client=_printable,
    ptype=_printable,
    pdata=st.text(max_size=80).filter(lambda s: "\r" not in s and "\n" not in s),
    txn=st.integers(1, 2**40),
    ctr=st.integers(1, 2**40),
    times=st.tuples(_times, _times).map(sorted),
    alg=st.sampled_from(sorted(SIGNATURE_ALGORITHMS)),
    fmt=st.sampled_from(list(TimeFormat)),
    sig=st.binary(min_size=1, max_size=132),
)
def test_build_parse_round_trip(
    client: str,
    ptype: str,
    pdata: str,
    txn: int,
    ctr: int,
    times: list[datetime],
    alg: str,
    fmt: TimeFormat,
    sig: bytes,
) -> None:
    payload = QRPayload(client, ptype, pdata, txn, ctr, times[0], times[1], alg, fmt, sig, POINT)
    assert parse_qr_payload(payload.to_text()) == payload


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_parser_never_fails_unexpectedly(text: str) -> None:
    try:
        parse_qr_payload(text)
    except QRFormatError as exc:
        assert exc.field in (*FIELD_NAMES, "payload")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (" " + VECTOR, "starts with a space before 'V0;'"),  # said "version ' V0'" before
        ("\t " + VECTOR, "starts with 2 white-space characters ('\\t ') before 'V0;'"),
        ("\n" + VECTOR, "starts with a line end before 'V0;'"),  # dropped silently before
        ("\r\n" + VECTOR, "starts with 2 white-space characters ('\\r\\n')"),
        ("\ufeff" + VECTOR, "starts with a byte order mark before 'V0;'"),
        (VECTOR + " ", "ends with a space after the public key"),  # "not valid base64" before
        (VECTOR + "\n\n", "ends with 2 white-space characters ('\\n\\n') after the public key"),
        (VECTOR + " \n", "ends with 2 white-space characters (' \\n')"),
        (VECTOR + "\r", "ends with a carriage return after the public key"),
    ],
)
def test_white_space_around_the_text_is_named(text: str, words: str) -> None:
    """A QR text begins with V0 and ends with base64 (DSFinV-K Anhang I): white space
    before or after it is an error that says what and where, never dropped."""
    with pytest.raises(QRFormatError) as info:
        parse_qr_payload(text)
    assert info.value.field == "payload"
    assert words in info.value.message, info.value.message
    assert "version" not in info.value.message


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_one_line_end_after_the_text_ends_the_line(end: str) -> None:
    """echo and a scanner typing into a terminal end the text with a line end: it is
    not part of the payload, which reads as without it (the caller says so)."""
    assert line_end(VECTOR + end) == end
    assert line_end(VECTOR) == "" and line_end(VECTOR + " \n") == ""
    payload = parse_qr_payload(VECTOR + end)
    assert payload == parse_qr_payload(VECTOR) and payload.to_text() == VECTOR
