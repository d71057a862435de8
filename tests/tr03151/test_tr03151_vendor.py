"""Golden tests: every log message of the real vendor exports decodes with our
decoder, verifies against the certificate whose key hash is its serial number, and
the per-archive facts of shared/testdata/tse-exports/README.md come out exactly."""

from __future__ import annotations

import itertools
import re

import pytest
from tr03151_vendor import FACTS, load, point

from opentse.errors import VerificationError
from opentse.tr03151.codec import decode_log_message, encode_signed_part
from opentse.tr03151.logmessage import FINISH, START, SystemLogData, TransactionLogData
from opentse.tr03151.signature import (
    public_key_from_point,
    verify_signature,
    verify_with_public_key,
)
from opentse.tr03151.sysdata import parse_system_operation_data

NAME = re.compile(
    r"(Unixt|Utc|Gent)_([0-9A-Z]+)_Sig-(\d+)_Log-(Tra|Sys|Aud)(?:_No-(\d+)_(Start|Update|Finish))?",
    re.I,
)


@pytest.mark.parametrize("relative", sorted(FACTS))
def test_archive_facts(relative: str) -> None:
    archive = load(relative)
    n_logs, n_valid, first, last, gaps, started, finished = FACTS[relative]
    keys = archive.keys_by_serial()
    counters: list[int] = []
    valid = 0
    tx_started: set[int] = set()
    tx_finished: set[int] = set()
    for name, data in archive.logs.items():
        msg = decode_log_message(data)
        assert msg.signed_data is not None
        key = keys[msg.serial_number]
        verify_with_public_key(key, msg.signature_algorithm, msg.signed_data, msg.signature_value)
        valid += 1
        counters.append(msg.signature_counter)
        # the file name agrees with the content
        match = NAME.match(name)
        assert match is not None, name
        assert int(match.group(3)) == msg.signature_counter
        assert match.group(2) == msg.log_time.tar_time()
        assert match.group(4).lower() == msg.log_type.value.lower()
        certified = msg.certified
        if isinstance(certified, TransactionLogData):
            assert int(match.group(5)) == certified.transaction_number
            assert certified.operation_type == f"{match.group(6).capitalize()}Transaction"
            if certified.operation_type == START:
                tx_started.add(certified.transaction_number)
            elif certified.operation_type == FINISH:
                tx_finished.add(certified.transaction_number)
        if isinstance(certified, SystemLogData):
            assert (
                name.split("_Log-Sys_")[1].split("_Fc-")[0].removesuffix(".log")
                == certified.operation_type
            )
            parse_system_operation_data(certified.system_operation_data)  # must not raise
        # our encoder reproduces the covered bytes unless the vendor wrote BER or
        # omitted an empty processType (fiskaly), which we always write
        reencoded = encode_signed_part(msg)
        if reencoded != msg.signed_data:
            assert isinstance(certified, TransactionLogData)
            assert b"\xa2\x80\x04" in msg.signed_data or certified.process_type == ""
    counters.sort()
    assert len(archive.logs) == n_logs
    assert valid == n_valid
    assert (counters[0], counters[-1]) == (first, last)
    assert sum(1 for a, b in itertools.pairwise(counters) if b != a + 1) == gaps
    assert (len(tx_started), len(tx_finished)) == (started, finished)


def test_dtrust_indefinite_process_data_is_signed_as_written() -> None:
    archive = load("dtrust/54312d72-d3ed-413c-9d32-7f457576e4c8.tar")
    finish = [d for n, d in archive.logs.items() if "_Finish_" in n]
    assert finish
    for data in finish:
        msg = decode_log_message(data)
        assert msg.signed_data is not None and b"\xa2\x80\x04" in msg.signed_data
        assert isinstance(msg.certified, TransactionLogData)
        assert msg.certified.process_data.startswith(b"Beleg^")
        # the signed bytes are a verbatim slice of the file, never re-encoded
        assert msg.signed_data in data
        key = archive.keys_by_serial()[msg.serial_number]
        verify_with_public_key(key, msg.signature_algorithm, msg.signed_data, msg.signature_value)


def test_inconsistent_certificate_name_still_verifies_with_the_right_key() -> None:
    archive = load("faulty/inconsistent_certificates.tar")
    keys = archive.keys_by_serial()
    mismatched = [
        name for name in archive.certificates if bytes.fromhex(name.split("_")[0]) not in keys
    ]
    assert any(name.upper().startswith("BDB64") for name in mismatched)
    for data in archive.logs.values():
        msg = decode_log_message(data)
        assert msg.signed_data is not None
        verify_signature(
            point(keys[msg.serial_number]),
            msg.signature_algorithm,
            msg.signed_data,
            msg.signature_value,
        )


def test_point_alone_identifies_the_vendor_curves() -> None:
    """fiskaly P-256 and brainpoolP384r1 CA keys, D-Trust P-384: inferred from the point."""
    seen = set()
    for relative in (
        "fiskaly/TSE_Export_12f97c6a-2c23-4dfe-a04d-2d94342789d2_202109171415.tar",
        "dtrust/4b5ba740-06fe-4506-9afc-e9f1eabadaa4.tar",
    ):
        for key in load(relative).keys_by_serial().values():
            inferred = public_key_from_point(point(key))
            assert inferred.curve.name == key.curve.name
            seen.add(key.curve.name)
    assert {"secp256r1", "secp384r1", "brainpoolP384r1"} <= seen


def test_tampered_vendor_log_fails() -> None:
    archive = load("fiskaly/TSSProtokoll_GF_2021-09-28_11_07_59.tar")
    keys = archive.keys_by_serial()
    for data in archive.logs.values():
        msg = decode_log_message(data)
        assert msg.signed_data is not None
        tampered = msg.signed_data[:-1] + bytes([msg.signed_data[-1] ^ 1])
        with pytest.raises(VerificationError) as info:
            verify_with_public_key(
                keys[msg.serial_number], msg.signature_algorithm, tampered, msg.signature_value
            )
        assert info.value.code == "E_SIGNATURE_INVALID"
