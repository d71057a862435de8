"""Deferred signatures (engine/deferred.py): the stand-in has the plain-signature
length for every curve, the finished message is byte for byte what signing at once
would give (checked with asn1crypto and cryptography), and one log is signed by
exactly one thread."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from asn1crypto import parser as asn1_parser
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.crypto import keys
from opentse.engine.deferred import DeferredSigner, PendingLogs
from opentse.engine.ports import StoredLog
from opentse.engine.results import SignResult
from opentse.tr03151 import codec
from opentse.tr03151.logmessage import LogMessage, TransactionLogData
from opentse.tr03151.logtime import LogTime, TimeFormat
from opentse.tr03151.oids import LogType
from opentse.tr03151.signature import verify_signature


def _log(signer: DeferredSigner, counter: int = 7) -> tuple[StoredLog, bytes]:
    msg = LogMessage(
        certified=TransactionLogData("StartTransaction", "C1", b"data", "Kassenbeleg-V1", 3),
        serial_number=b"\x11" * 32,
        signature_algorithm=signer.algorithm_oid,
        signature_counter=counter,
        log_time=LogTime(TimeFormat.UNIX, 1_700_000_000),
    )
    signed_part = codec.encode_signed_part(msg)
    message = codec.assemble(signed_part, signer.sign(signed_part))
    log = StoredLog("t", counter, LogType.TRANSACTION, "StartTransaction", 0, "f", message)
    return log, signed_part


@pytest.mark.parametrize("curve", keys.CURVES)
def test_finished_message_is_the_signed_one(curve: str) -> None:
    real = keys.PlainSigner(keys.generate_private_key(curve), keys.default_algorithm(curve))
    deferred = DeferredSigner(real)
    log, signed_part = _log(deferred)
    pending = PendingLogs(real, [log], deferred.data)
    (signature,) = pending.resolve()
    assert len(signature) == len(real.public_key_point) - 1  # the stand-in's length
    final = pending.final_logs()[0]
    assert final.message == codec.assemble(signed_part, signature)
    contents = asn1_parser.parse(final.message)[4]  # independent split
    parts = []
    while contents:
        size = asn1_parser.peek(contents)
        parts.append(contents[:size])
        contents = contents[size:]
    assert b"".join(parts[:-1]) == signed_part
    assert asn1_parser.parse(parts[-1])[4] == signature
    verify_signature(real.public_key_point, real.algorithm_oid, signed_part, signature)


def test_one_log_is_signed_by_one_thread_only() -> None:
    calls: list[bytes] = []
    real = keys.PlainSigner(keys.generate_private_key("P-256"), "ecdsa-plain-SHA256")

    class Counting:
        algorithm_oid = real.algorithm_oid
        public_key_point = real.public_key_point

        def sign(self, data: bytes) -> bytes:
            calls.append(data)
            return real.sign(data)

    deferred = DeferredSigner(real)
    log, _ = _log(deferred)
    pending = PendingLogs(Counting(), [log], deferred.data)
    threads = [threading.Thread(target=pending.try_resolve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert pending.signatures is not None and pending.error is None


def test_a_failed_signature_is_kept_not_raised() -> None:
    real = keys.PlainSigner(keys.generate_private_key("P-256"), "ecdsa-plain-SHA256")

    class Broken:
        algorithm_oid = real.algorithm_oid
        public_key_point = real.public_key_point

        def sign(self, data: bytes) -> bytes:
            raise OSError("device gone")

    deferred = DeferredSigner(real)
    log, _ = _log(deferred)
    pending = PendingLogs(Broken(), [log], deferred.data)
    pending.try_resolve()
    assert pending.signatures is None
    assert isinstance(pending.error, OSError)


def test_more_signatures_than_logs_is_refused() -> None:
    real = keys.PlainSigner(keys.generate_private_key("P-256"), "ecdsa-plain-SHA256")
    deferred = DeferredSigner(real)
    log, _ = _log(deferred)
    deferred.sign(b"something else")
    with pytest.raises(Exception) as exc_info:
        PendingLogs(real, [log], deferred.data)
    assert getattr(exc_info.value, "code", None) == "E_DEFERRED_SIGNING"


@settings(max_examples=50, deadline=None)
@given(
    st.builds(
        SignResult,
        st.text(),
        st.text(),
        st.integers(),
        st.integers(),
        st.binary(),
        st.integers(),
        st.integers(),
        st.text(),
        st.binary(),
        st.binary(),
        st.text(),
        st.text(),
        st.text(),
        st.binary(),
        st.text(),
        st.none() | st.text(),
        st.booleans(),
    ),
    st.binary(min_size=1),
)
def test_with_signature_changes_the_signature_only(result: SignResult, signature: bytes) -> None:
    assert result.with_signature(signature) == dataclasses.replace(result, signature=signature)
