"""TAR member names and info.csv: round trips (hypothesis) and the TR's own example."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.errors import FormatError
from opentse.formats.tar import (
    info_csv,
    log_filename,
    parse_certificate_filename,
    parse_info_csv,
    parse_log_filename,
)
from opentse.tr03151.logtime import LogTime, TimeFormat
from opentse.tr03151.oids import LogType

PRINTABLE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?"
MAX_UTCTIME = 2524607999  # 2049-12-31T23:59:59Z, last second UTCTime can express

log_times = st.builds(
    LogTime,
    format=st.sampled_from(list(TimeFormat)),
    unix=st.integers(min_value=0, max_value=MAX_UTCTIME),
)
counters = st.integers(min_value=0, max_value=2**64)
fcs = st.none() | st.integers(min_value=0, max_value=10_000)
tx_ops = st.sampled_from(
    ["StartTransaction", "UpdateTransaction", "FinishTransaction", "Start", "finish"]
)
FULL_OP = {
    "start": "StartTransaction",
    "update": "UpdateTransaction",
    "finish": "FinishTransaction",
}


def _check_time(parsed_unix: int | None, log_time: LogTime, text: str) -> None:
    assert text == log_time.tar_time()
    assert parsed_unix == log_time.unix


@settings(max_examples=200, deadline=None)
@given(
    log_times,
    counters,
    counters,
    tx_ops,
    st.text(alphabet=PRINTABLE, min_size=1, max_size=80),
    fcs,
)
def test_transaction_name_round_trip(
    log_time: LogTime, sig: int, txn: int, op: str, client: str, fc: int | None
) -> None:
    name = log_filename(
        LogType.TRANSACTION,
        log_time,
        sig,
        operation=op,
        transaction_number=txn,
        client_id=client,
        fc=fc,
    )
    assert "/" not in name and name.isascii()
    if "/" not in client:  # exactly the digest's format, client id verbatim
        part = FULL_OP[op.lower().removesuffix("transaction")].removesuffix("Transaction")
        expected = (
            f"{log_time.format.tar_prefix}_{log_time.tar_time()}_Sig-{sig}_Log-Tra_No-{txn}"
            f"_{part}_Client-{client}" + (f"_Fc-{fc}" if fc is not None else "") + ".log"
        )
        assert name == expected
    for variant in (name, name.upper(), name.lower(), "dir/" + name):
        parsed = parse_log_filename(variant)
        assert parsed is not None
        assert parsed.log_type is LogType.TRANSACTION
        assert parsed.time_format is log_time.format
        assert parsed.signature_counter == sig
        assert parsed.transaction_number == txn
        assert parsed.operation == FULL_OP[op.lower().removesuffix("transaction")]
        assert parsed.fc == fc
    parsed = parse_log_filename(name)
    assert parsed is not None
    assert parsed.client_id == client
    assert parsed.time_prefix == log_time.format.tar_prefix
    _check_time(parsed.unix_time(), log_time, parsed.time_text)


@settings(max_examples=100, deadline=None)
@given(log_times, counters, st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_any_text_survives_escaping(log_time: LogTime, sig: int, client: str, op: str) -> None:
    tx = log_filename(
        LogType.TRANSACTION,
        log_time,
        sig,
        operation="Update",
        transaction_number=1,
        client_id=client,
    )
    sys = log_filename(LogType.SYSTEM, log_time, sig, operation=op)
    for name in (tx, sys):
        assert "/" not in name and "\\" not in name and "\x00" not in name
    parsed_tx, parsed_sys = parse_log_filename(tx), parse_log_filename(sys)
    assert parsed_tx is not None and parsed_tx.client_id == client
    assert parsed_sys is not None and parsed_sys.operation == op


@settings(max_examples=100, deadline=None)
@given(log_times, counters, st.sampled_from(["updateTime", "initialize", "authenticateUser"]), fcs)
def test_system_and_audit_round_trip(log_time: LogTime, sig: int, op: str, fc: int | None) -> None:
    suffix = (f"_Fc-{fc}" if fc is not None else "") + ".log"
    head = f"{log_time.format.tar_prefix}_{log_time.tar_time()}_Sig-{sig}_Log-"
    sys_name = log_filename(LogType.SYSTEM, log_time, sig, operation=op, fc=fc)
    aud_name = log_filename(LogType.AUDIT, log_time, sig, fc=fc)
    assert sys_name == f"{head}Sys_{op}{suffix}"
    assert aud_name == f"{head}Aud{suffix}"
    sys_parsed = parse_log_filename(sys_name.lower())
    aud_parsed = parse_log_filename(aud_name)
    assert sys_parsed is not None and aud_parsed is not None
    assert sys_parsed.log_type is LogType.SYSTEM and sys_parsed.operation == op.lower()
    assert aud_parsed.log_type is LogType.AUDIT and aud_parsed.operation == ""
    for parsed in (sys_parsed, aud_parsed):
        assert parsed.signature_counter == sig and parsed.fc == fc
        assert parsed.transaction_number is None and parsed.client_id is None
        _check_time(parsed.unix_time(), log_time, parsed.time_text.upper())


def test_example_of_the_technical_guideline() -> None:
    log_time = LogTime(TimeFormat.UTC, 1541777445, text="181109153045Z")
    name = log_filename(
        LogType.TRANSACTION,
        log_time,
        1572,
        operation="StartTransaction",
        transaction_number=713,
        client_id="03",
    )
    assert name == "Utc_181109153045Z_Sig-1572_Log-Tra_No-713_Start_Client-03.log"
    parsed = parse_log_filename(name)
    assert parsed is not None and parsed.unix_time() == 1541777445
    gent = LogTime(TimeFormat.GENERALIZED, 1541752956)
    assert log_filename(LogType.AUDIT, gent, 7) == "Gent_20181109084236Z_Sig-7_Log-Aud.log"


def test_client_id_with_slash_is_escaped_not_a_path() -> None:
    name = log_filename(
        LogType.TRANSACTION,
        LogTime(TimeFormat.UNIX, 1),
        2,
        operation="Finish",
        transaction_number=3,
        client_id="../../etc/x_y%",
    )
    assert name == "Unixt_1_Sig-2_Log-Tra_No-3_Finish_Client-..%2F..%2Fetc%2Fx%5Fy%25.log"
    parsed = parse_log_filename(name)
    assert parsed is not None and parsed.client_id == "../../etc/x_y%"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"log_type": LogType.TRANSACTION, "operation": "Start", "transaction_number": 1},
        {"log_type": LogType.TRANSACTION, "operation": "Start", "client_id": "c"},
        {
            "log_type": LogType.TRANSACTION,
            "operation": "Cancel",
            "transaction_number": 1,
            "client_id": "c",
        },
        {"log_type": LogType.SYSTEM},
    ],
)
def test_missing_fields_refused(kwargs: dict[str, object]) -> None:
    log_type = kwargs.pop("log_type")
    with pytest.raises(ValueError):
        log_filename(log_type, LogTime(TimeFormat.UNIX, 1), 1, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    [
        "info.csv",
        "Unixt_1_Sig-1_Log-Tra_No-1_Begin_Client-x.log",
        "Unixt_1_Sig-x_Log-Aud.log",
        "Foo_1_Sig-1_Log-Aud.log",
        "Unixt_1_Sig-1_Log-Aud.der",
        "Unixt_1_Sig-1_Log-Tra_No-1_Start.log",
    ],
)
def test_not_log_names(name: str) -> None:
    assert parse_log_filename(name) is None


def test_certificate_names() -> None:
    assert parse_certificate_filename("./ABCDEF01_X509.CER") == "abcdef01"
    assert parse_certificate_filename("abc_X509.pem") == "abc"
    assert parse_certificate_filename("abc_X509.txt") is None
    assert parse_certificate_filename("info.csv") is None


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60), st.text(max_size=60))
def test_info_csv_round_trip(description: str, manufacturer: str, version: str) -> None:
    data = info_csv(description, manufacturer, version)
    # independent reader: the csv module sees six quoted cells
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0] == [
        "description:",
        description,
        "manufacturer:",
        manufacturer,
        "version:",
        version,
    ]
    parsed = parse_info_csv(data)
    assert parsed == {
        "description": description.strip(),
        "manufacturer": manufacturer.strip(),
        "version": version.strip(),
    }


def test_info_csv_dialects() -> None:
    quoted = info_csv("Kasse 1", "opentse", "0.1.0")
    assert quoted == b'"description:","Kasse 1","manufacturer:","opentse","version:","0.1.0"\n'
    unquoted = b'"description:", Kasse 1, "manufacturer:", opentse, "version:", 0.1.0\n'
    assert (
        parse_info_csv(quoted)
        == parse_info_csv(unquoted)
        == {
            "description": "Kasse 1",
            "manufacturer": "opentse",
            "version": "0.1.0",
        }
    )
    with pytest.raises(FormatError) as info:
        parse_info_csv(b"")
    assert info.value.code == "E_INFO_CSV"
    with pytest.raises(FormatError):
        parse_info_csv(b"a,b,c,d\n")
