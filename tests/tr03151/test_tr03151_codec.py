"""Codec: layout by hand, validation codes, version 3 and BER reading, hypothesis
round trips, real signatures, and fuzzing of the decoder (only FormatError may leave)."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st
from tr03151_strategies import messages, transactions

from opentse.errors import FormatError
from opentse.tr03151 import der
from opentse.tr03151.codec import (
    MAX_PROCESS_DATA,
    assemble,
    decode_log_message,
    encode_log_message,
    encode_signed_part,
)
from opentse.tr03151.logmessage import (
    FINISH,
    START,
    AuditLogData,
    LogMessage,
    SystemLogData,
    TransactionLogData,
)
from opentse.tr03151.logtime import LogTime, TimeFormat
from opentse.tr03151.oids import algorithm_oid

SERIAL = bytes(range(32))
SHA256 = algorithm_oid("ecdsa-plain-SHA256")
TX_OID = "060904007f000703070101"


def _tx(**changes: object) -> LogMessage:
    msg = LogMessage(
        certified=TransactionLogData(FINISH, "ERS 1", b"Beleg^1.00", "Kassenbeleg-V1", 5),
        serial_number=SERIAL,
        signature_algorithm=SHA256,
        signature_counter=31,
        log_time=LogTime(TimeFormat.UNIX, 1629729393),
    )
    return dataclasses.replace(msg, **changes)  # type: ignore[arg-type]


def test_transaction_layout_by_hand() -> None:
    expected = (
        "020102"
        + TX_OID
        + "8011"
        + b"FinishTransaction".hex()
        + "8105"
        + b"ERS 1".hex()
        + "820a"
        + b"Beleg^1.00".hex()
        + "830e"
        + b"Kassenbeleg-V1".hex()
        + "850105"
        + "0420"
        + SERIAL.hex()
        + "300c060a04007f00070101040103"
        + "02011f"
        + "02046123b271"  # 1629729393
    )
    assert encode_signed_part(_tx()).hex() == expected


def test_system_and_audit_layout_by_hand() -> None:
    system = _tx(certified=SystemLogData("updateTime", bytes.fromhex("820401020304")))
    assert (
        encode_signed_part(system)
        .hex()
        .startswith(
            "020102060904007f000703070102800a" + b"updateTime".hex() + "8106820401020304" + "0420"
        )
    )
    audit = _tx(certified=AuditLogData(b"\x30\x00"), log_time=LogTime(TimeFormat.UTC, 1632819893))
    assert encode_signed_part(audit).hex() == (
        "020102060904007f000703070103"
        + "0420"
        + SERIAL.hex()
        + "300c060a04007f00070101040103"
        + "04023000"
        + "02011f"
        + "170d"
        + b"210928090453Z".hex()
    )
    gen = _tx(log_time=LogTime(TimeFormat.GENERALIZED, 1541752956))
    assert encode_signed_part(gen).endswith(b"\x18\x0f20181109084236Z")


def test_optional_fields_and_full_message() -> None:
    msg = _tx(
        certified=TransactionLogData(START, "c", b"", "", 1, b"ext", b"int"),
        signature_value=b"\x01" * 64,
    )
    signed = encode_signed_part(msg)
    assert b"\x84\x03ext\x85\x01\x01\x86\x03int" in signed
    full = encode_log_message(msg)
    assert full == der.sequence(signed, der.octet_string(b"\x01" * 64))
    assert full == assemble(signed, b"\x01" * 64)
    decoded = decode_log_message(full)
    assert decoded == dataclasses.replace(msg, signed_data=signed)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"certified": TransactionLogData(FINISH, "a_b", b"", "", 1)}, "E_CLIENT_ID_FORMAT"),
        (
            {"certified": TransactionLogData(FINISH, "Kasse München", b"", "", 1)},
            "E_CLIENT_ID_FORMAT",
        ),
        ({"certified": TransactionLogData(FINISH, "", b"", "", 1)}, "E_CLIENT_ID_FORMAT"),
        (
            {"certified": TransactionLogData(FINISH, "a", b"", "x" * 101, 1)},
            "E_PROCESS_TYPE_FORMAT",
        ),
        ({"certified": TransactionLogData(FINISH, "a", b"", "a;b", 1)}, "E_PROCESS_TYPE_FORMAT"),
        (
            {"certified": TransactionLogData(FINISH, "a", b"x" * (MAX_PROCESS_DATA + 1), "", 1)},
            "E_PROCESS_DATA_TOO_LARGE",
        ),
        ({"certified": TransactionLogData(FINISH, "a", b"", "", 0)}, "E_TRANSACTION_NUMBER_RANGE"),
        ({"certified": TransactionLogData("Finish", "a", b"", "", 1)}, "E_OPERATION_TYPE"),
        ({"certified": SystemLogData("update_time")}, "E_OPERATION_TYPE"),
        ({"certified": SystemLogData("")}, "E_OPERATION_TYPE"),
        ({"signature_counter": 0}, "E_SIGNATURE_COUNTER_RANGE"),
        ({"signature_counter": 0, "certified": AuditLogData(b"")}, "E_SIGNATURE_COUNTER_RANGE"),
        ({"version": 3}, "E_VERSION_UNSUPPORTED"),
        ({"signature_algorithm": "ecdsa-plain-SHA256"}, "E_ALGORITHM_FORMAT"),
        ({"log_time": LogTime(TimeFormat.UTC, 2524608000)}, "E_LOG_TIME_FORMAT"),
        ({"log_time": LogTime(TimeFormat.UNIX, -1)}, "E_LOG_TIME_FORMAT"),
        ({"log_time": LogTime(TimeFormat.UNIX, 253402300800)}, "E_LOG_TIME_FORMAT"),
        ({"log_time": LogTime(TimeFormat.UTC, 0, "700101000001Z")}, "E_LOG_TIME_FORMAT"),
    ],
)
def test_encoder_validation_codes(changes: dict[str, object], code: str) -> None:
    with pytest.raises(FormatError) as info:
        encode_signed_part(_tx(**changes))
    assert info.value.code == code


def test_process_data_limit_is_inclusive() -> None:
    msg = _tx(certified=TransactionLogData(FINISH, "a", b"x" * MAX_PROCESS_DATA, "", 1))
    assert len(encode_signed_part(msg)) > MAX_PROCESS_DATA


def test_unsigned_message_cannot_be_encoded_whole() -> None:
    with pytest.raises(FormatError) as info:
        encode_log_message(_tx())
    assert info.value.code == "E_LOG_UNSIGNED"


def _message(*parts: bytes, signature: bytes = b"\x05" * 64) -> bytes:
    return der.sequence(*parts, der.octet_string(signature))


TAIL = (
    der.octet_string(SERIAL)
    + der.sequence(der.oid(SHA256))
    + der.integer(7)
    + der.integer(1700000000)
)


def test_reads_version_3_transaction_with_lower_case_names() -> None:
    data = _message(
        der.integer(3),
        der.oid("0.4.0.127.0.7.3.7.1.1"),
        der.context(0, b"finishTransaction"),
        der.context(1, b"c1"),
        der.context(2, b"pd"),
        der.context(3, b"pt"),
        der.integer(9, 0x85),
        TAIL,
    )
    msg = decode_log_message(data)
    assert msg.version == 3
    assert msg.certified == TransactionLogData(FINISH, "c1", b"pd", "pt", 9)
    assert data[1] == 0x81  # long-form header of 3 bytes, signature TLV of 66
    assert msg.signed_data == data[3:-66]


def test_reads_version_3_system_log_layout() -> None:
    rest = (
        der.context(1, b"tse")
        + der.boolean(True, 0x82)
        + der.context(3, b"\x01\x02", constructed=True)
    )
    data = _message(
        der.integer(3),
        der.oid("0.4.0.127.0.7.3.7.1.2"),
        der.context(0, b"updateTime"),
        rest,
        TAIL,
    )
    msg = decode_log_message(data)
    assert msg.certified == SystemLogData("updateTime", rest, None)


def test_reads_ber_constructed_fields_and_algorithm_parameters() -> None:
    ber_pd = (
        bytes.fromhex("a280") + der.octet_string(b"Be") + der.octet_string(b"leg") + b"\x00\x00"
    )
    signed = (
        der.integer(2)
        + der.oid("0.4.0.127.0.7.3.7.1.1")
        + der.context(0, b"StartTransaction")
        + der.context(1, b"c")
        + ber_pd
        + der.context(3, b"t")
        + der.integer(1, 0x85)
        + der.octet_string(SERIAL)
        + der.sequence(der.oid(SHA256), b"\x05\x00")
        + der.integer(1)
        + der.tlv(0x18, b"20240229235959.25Z")
    )
    msg = decode_log_message(assemble(signed, b"\x01" * 64))
    assert isinstance(msg.certified, TransactionLogData)
    assert msg.certified.process_data == b"Beleg"
    assert msg.signed_data == signed
    assert msg.log_time.text == "20240229235959.25Z"
    assert msg.log_time.tar_time() == "20240229235959.25Z"
    assert encode_signed_part(msg).endswith(der.tlv(0x18, b"20240229235959.25Z"))


def test_fiskaly_style_missing_process_type_reads_as_empty() -> None:
    data = _message(
        der.integer(2),
        der.oid("0.4.0.127.0.7.3.7.1.1"),
        der.context(0, b"StartTransaction"),
        der.context(1, b"c"),
        der.context(2, b""),
        der.integer(1, 0x85),
        TAIL,
    )
    certified = decode_log_message(data).certified
    assert isinstance(certified, TransactionLogData) and certified.process_type == ""


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x02\x01\x02",
        der.sequence(),
        der.sequence(der.integer(2)),
        _message(der.integer(4), der.oid("0.4.0.127.0.7.3.7.1.1"), TAIL),
        _message(der.integer(2), der.oid("1.2.3"), TAIL),
        _message(der.integer(2), der.oid("0.4.0.127.0.7.3.7.1.3"), TAIL),  # audit lacks data
        _message(der.integer(2), der.oid("0.4.0.127.0.7.3.7.1.1"), der.context(0, b"x"), TAIL),
        _message(
            der.integer(2),
            der.oid("0.4.0.127.0.7.3.7.1.2"),
            der.context(0, b"x"),
            der.context(5, b"x"),
            TAIL,
        ),
        _message(der.integer(2), der.oid("0.4.0.127.0.7.3.7.1.2"), der.context(0, b"x"), TAIL)
        + b"\x00",
        der.sequence(
            der.integer(2), der.oid("0.4.0.127.0.7.3.7.1.2"), der.context(0, b"x"), TAIL
        ),  # no signature
        _message(
            der.integer(2),
            der.oid("0.4.0.127.0.7.3.7.1.2"),
            der.context(0, b"x"),
            TAIL.replace(der.integer(1700000000), der.utf8_string("now")),
        ),
        _message(
            der.integer(2),
            der.oid("0.4.0.127.0.7.3.7.1.2"),
            der.context(0, b"\xff\xfe"),
            TAIL,
        ),
        b"\x30\x80" * 300,
        _message(
            der.integer(2),
            der.oid("0.4.0.127.0.7.3.7.1.2"),
            der.context(0, b"x"),
            TAIL.replace(der.integer(1700000000), der.integer(2**64)),
        ),
        _message(
            der.integer(2),
            der.oid("0.4.0.127.0.7.3.7.1.2"),
            der.context(0, b"x"),
            TAIL.replace(der.integer(1700000000), der.integer(-1)),
        ),
        _message(
            der.integer(2),
            der.oid("0.4.0.127.0.7.3.7.1.2"),
            der.context(0, b"x"),
            TAIL.replace(der.integer(1700000000), der.tlv(0x18, b"99991231235959-0100")),
        ),
    ],
)
def test_decoder_rejects_with_log_format(data: bytes) -> None:
    with pytest.raises(FormatError) as info:
        decode_log_message(data)
    assert info.value.code == "E_LOG_FORMAT"


# ------------------------------------------------------------------- properties

PROPERTY = settings(max_examples=150, deadline=None)


@PROPERTY
@given(messages, st.binary(min_size=1, max_size=132))
def test_round_trip(msg: LogMessage, signature: bytes) -> None:
    signed = encode_signed_part(msg)
    full = assemble(signed, signature)
    decoded = decode_log_message(full)
    assert decoded.signed_data == signed
    assert decoded == dataclasses.replace(msg, signature_value=signature, signed_data=signed)
    assert encode_signed_part(decoded) == signed


_KEYS = {
    "P-256": ec.generate_private_key(ec.SECP256R1()),
    "brainpoolP256r1": ec.generate_private_key(ec.BrainpoolP256R1()),
}


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(_KEYS)), messages)
def test_sign_and_verify_real_keys(curve: str, msg: LogMessage) -> None:
    from opentse.tr03151.signature import verify_signature

    key = _KEYS[curve]
    point = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    msg = dataclasses.replace(
        msg, serial_number=hashlib.sha256(point).digest(), signature_algorithm=SHA256
    )
    signed = encode_signed_part(msg)
    r, s = decode_dss_signature(key.sign(signed, ec.ECDSA(hashes.SHA256())))
    plain = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    decoded = decode_log_message(assemble(signed, plain))
    assert decoded.serial_number == hashlib.sha256(point).digest()
    assert decoded.signed_data is not None
    verify_signature(
        point, decoded.signature_algorithm, decoded.signed_data, decoded.signature_value
    )


def _only_format_errors(data: bytes) -> None:
    try:
        msg = decode_log_message(data)
    except FormatError as exc:
        assert exc.code == "E_LOG_FORMAT"
        return
    # whatever decodes is usable: times convert, the covered bytes lie inside the input
    msg.log_time.as_datetime()
    msg.log_time.tar_time()
    assert msg.signed_data is not None and msg.signed_data in data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    _only_format_errors(data)
    _only_format_errors(b"\x30" + bytes([len(data) & 0x7F]) + data)


@settings(max_examples=100, deadline=None)
@given(transactions, st.data())
def test_fuzz_truncations_and_bit_flips(certified: TransactionLogData, data: st.DataObject) -> None:
    full = assemble(encode_signed_part(_tx(certified=certified)), b"\x07" * 64)
    cut = data.draw(st.integers(0, len(full) - 1))
    with pytest.raises(FormatError):
        decode_log_message(full[:cut])
    position = data.draw(st.integers(0, len(full) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(full)
    flipped[position] ^= 1 << bit
    _only_format_errors(bytes(flipped))


def _ber_chunks(value: bytes, sizes: list[int]) -> bytes:
    """processData as D-Trust writes it: [2] constructed, indefinite, OCTET STRING parts."""
    parts, rest = [], value
    for size in sizes:
        parts.append(der.octet_string(rest[:size]))
        rest = rest[size:]
    parts.append(der.octet_string(rest))
    return b"\xa2\x80" + b"".join(parts) + b"\x00\x00"


@settings(max_examples=100, deadline=None)
@given(transactions, st.lists(st.integers(0, 50), max_size=4), st.binary(min_size=1, max_size=64))
def test_ber_process_data_kept_verbatim(
    certified: TransactionLogData, sizes: list[int], signature: bytes
) -> None:
    """Replacing the DER processData by a BER indefinite form: the decoder joins the
    value but keeps the covered bytes exactly as written (no re-encoding)."""
    der_signed = encode_signed_part(_tx(certified=certified))
    der_pd = der.context(2, certified.process_data)
    assert der_signed.count(der_pd) >= 1
    ber_signed = der_signed.replace(der_pd, _ber_chunks(certified.process_data, sizes), 1)
    decoded = decode_log_message(bytearray(assemble(ber_signed, signature)))
    assert decoded.signed_data == ber_signed
    assert decoded.certified == certified
    assert encode_signed_part(decoded) == der_signed
