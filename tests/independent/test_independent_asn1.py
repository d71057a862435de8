"""Our codec against the independent asn1crypto reader (asn1_reader.py): our encoder's
output is read back field by field, and both readers agree on every vendor log."""

from __future__ import annotations

import dataclasses
import tarfile
from datetime import datetime
from pathlib import Path

import asn1_reader
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.tr03151.codec import assemble, decode_log_message, encode_signed_part
from opentse.tr03151.logmessage import (
    TRANSACTION_OPERATIONS,
    AuditLogData,
    LogMessage,
    SystemLogData,
    TransactionLogData,
)
from opentse.tr03151.logtime import LogTime, TimeFormat

EXPORTS = Path(__file__).resolve().parents[2] / "../shared/testdata/tse-exports"
PRINTABLE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?"
TIME_NAMES = {
    TimeFormat.UNIX: "unixTime",
    TimeFormat.UTC: "utcTime",
    TimeFormat.GENERALIZED: "generalizedTime",
}


def _unix(native: int | datetime) -> int:
    return native if isinstance(native, int) else int(native.timestamp() // 1)


def assert_same(ours: LogMessage, theirs: dict[str, object]) -> None:
    """Every field of our decoded/encoded message equals the asn1crypto reading."""
    assert theirs["version"] == ours.version
    assert theirs["certifiedDataType"] == ours.log_type.oid
    assert theirs["serialNumber"] == ours.serial_number
    assert theirs["signatureAlgorithm"] == ours.signature_algorithm
    assert theirs["signatureCounter"] == ours.signature_counter
    time_name, time_value = theirs["logTime"]  # type: ignore[misc]
    assert time_name == TIME_NAMES[ours.log_time.format]
    assert _unix(time_value) == ours.log_time.unix
    assert theirs["signatureValue"] == ours.signature_value
    c = ours.certified
    if isinstance(c, TransactionLogData):
        assert theirs["operationType"] in (
            c.operation_type,
            c.operation_type[0].lower() + c.operation_type[1:],
        )
        assert theirs["clientId"] == c.client_id
        assert (theirs["processData"] or b"") == c.process_data
        assert (theirs["processType"] or "") == c.process_type
        assert theirs["transactionNumber"] == c.transaction_number
        assert theirs["additionalExternalData"] == c.additional_external_data
        assert theirs["additionalInternalData"] == c.additional_internal_data
    elif isinstance(c, SystemLogData):
        assert theirs["operationType"] == c.operation_type
        assert (theirs["systemOperationData"] or b"") == c.system_operation_data
        assert theirs["additionalInternalData"] == c.additional_internal_data
    else:
        assert isinstance(c, AuditLogData)
        assert theirs["seAuditData"] == c.se_audit_data


def _vendor_logs() -> list[tuple[str, bytes]]:
    if not EXPORTS.is_dir():
        return []
    out = []
    for archive in sorted(EXPORTS.glob("*/*.tar")):
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.endswith(".log"):
                    handle = tar.extractfile(member)
                    assert handle is not None
                    out.append((f"{archive.name}:{member.name}", handle.read()))
    return out


def test_vendor_logs_read_identically() -> None:
    logs = _vendor_logs()
    if not logs:
        pytest.skip(f"vendor exports not found at {EXPORTS}")
    assert len(logs) == 350  # sum of the README's per-archive counts
    for name, data in logs:
        ours = decode_log_message(data)
        theirs = asn1_reader.read(data)
        assert theirs["signedData"] == ours.signed_data, name
        assert_same(ours, theirs)


printable = st.text(alphabet=PRINTABLE, min_size=1, max_size=30)
optional = st.one_of(st.none(), st.binary(max_size=30))
certified = st.one_of(
    st.builds(
        TransactionLogData,
        st.sampled_from(TRANSACTION_OPERATIONS),
        printable,
        st.binary(max_size=200),
        st.text(alphabet=PRINTABLE, max_size=100),
        st.integers(1, 2**64),
        optional,
        optional,
    ),
    st.builds(SystemLogData, printable, st.binary(max_size=100), optional),
    st.builds(AuditLogData, st.binary(max_size=100)),
)
times = st.one_of(
    st.builds(LogTime, st.just(TimeFormat.UNIX), st.integers(0, 2**37)),
    st.builds(LogTime, st.just(TimeFormat.UTC), st.integers(0, 2**31 - 1)),
    st.builds(LogTime, st.just(TimeFormat.GENERALIZED), st.integers(0, 2**34)),
)


@settings(max_examples=150, deadline=None)
@given(
    certified,
    st.binary(min_size=32, max_size=32),
    st.sampled_from(
        ["0.4.0.127.0.7.1.1.4.1.3", "0.4.0.127.0.7.1.1.4.1.4", "0.4.0.127.0.7.1.1.4.1.11"]
    ),
    st.integers(1, 2**64),
    times,
    st.binary(min_size=64, max_size=96),
)
def test_our_encoding_read_by_asn1crypto(
    data: TransactionLogData | SystemLogData | AuditLogData,
    serial: bytes,
    algorithm: str,
    counter: int,
    log_time: LogTime,
    signature: bytes,
) -> None:
    msg = LogMessage(data, serial, algorithm, counter, log_time, signature)
    signed = encode_signed_part(msg)
    full = assemble(signed, signature)
    theirs = asn1_reader.read(full)
    assert theirs["signedData"] == signed
    assert_same(msg, theirs)
    # and the DER is canonical: asn1crypto re-serializes it to the same bytes
    assert asn1_reader.load(full).dump(force=True) == full
    assert decode_log_message(full) == dataclasses.replace(msg, signed_data=signed)
