"""Turning certified data into a signed, stored log message (pure; the key is a port).

TR-03151 1.0.1 5.1: every log message gets the next signature counter ("+1 for every
signature of any log type; the first log has 1") and the TSE time; the signature
covers the concatenated TLVs before signatureValue (``codec.encode_signed_part``).
Log times never go backwards within a TSE except through updateTime, so a clock
that steps back is clamped to the last log time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from opentse.engine.ports import StoredLog, TSERecord
from opentse.engine.results import SystemLogResult
from opentse.engine.state import TSEState
from opentse.errors import OpenTSEError, StateError
from opentse.formats import tar
from opentse.tr03151 import codec
from opentse.tr03151.logmessage import (
    AuditLogData,
    CertifiedData,
    LogMessage,
    SystemLogData,
    TransactionLogData,
)
from opentse.tr03151.logtime import LogTime, TimeFormat
from opentse.tr03151.oids import LogType, algorithm_oid
from opentse.tr03151.signer import Signer

R = TypeVar("R")
S = TypeVar("S")


def evolve(obj: S, **changes: Any) -> S:
    """A shallow copy of a (non-slotted) dataclass instance with ``changes`` applied:
    ``dataclasses.replace`` without re-running ``__init__`` (it dominated the hot path)."""
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    new.__dict__.update(changes)
    return new


@dataclass(slots=True, eq=False)  # not frozen: built for every log, and frozen init costs ~7x
class TSEContext:
    """What the engine needs besides the state: the immutable record and a signer.

    ``certificate_not_after`` (unix seconds) is parsed once by the service from the
    TSE certificate, so the hot path does not parse X.509."""

    record: TSERecord
    signer: Signer
    time_format: TimeFormat
    algorithm_oid: str
    certificate_not_after: int | None = None

    @classmethod
    def build(
        cls, record: TSERecord, signer: Signer, certificate_not_after: int | None = None
    ) -> TSEContext:
        oid = algorithm_oid(record.signature_algorithm)
        if signer.algorithm_oid != oid or signer.public_key_point != record.public_key_point:
            raise StateError(
                f"the signer does not match TSE {record.tse_id}", code="E_TSS_KEY_MISMATCH"
            )
        return cls(record, signer, TimeFormat(record.time_format), oid, certificate_not_after)


@dataclass(slots=True, eq=False)  # not frozen: built for every log, and frozen init costs ~7x
class Outcome(Generic[R]):
    """An engine step: the new state, the logs to append with it, the caller's result.

    ``error`` is raised by the service *after* the commit: TR-03151 wants some failures
    logged (a wrong PIN is an AuthenticateUser log) or stored (ErrorCertificateExpired
    comes "after the log is stored")."""

    state: TSEState
    logs: tuple[StoredLog, ...]
    result: R
    error: OpenTSEError | None = None
    delete_up_to: int = 0  # deleteStoredData: drop stored logs up to this counter first


@dataclass(slots=True, eq=False)  # not frozen: built for every log, and frozen init costs ~7x
class Signed:
    counter: int
    log_time: int
    signature: bytes
    log: StoredLog


def next_log_time(now: int, last_log_time: int) -> int:
    return now if now >= last_log_time else last_log_time


def sign_log(
    ctx: TSEContext,
    counter: int,
    log_time: int,
    certified: CertifiedData,
    *,
    ref: str | None = None,
    extra: dict[str, object] | None = None,
) -> Signed:
    """Build, sign and name one log message with the given counter and time."""
    msg = LogMessage(
        certified=certified,
        serial_number=ctx.record.serial_number,
        signature_algorithm=ctx.algorithm_oid,
        signature_counter=counter,
        log_time=LogTime(ctx.time_format, log_time),
    )
    signed_part = codec.encode_signed_part(msg)
    signature = ctx.signer.sign(signed_part)
    message = codec.assemble(signed_part, signature)
    tx_number: int | None = None
    client_id: str | None = None
    if isinstance(certified, TransactionLogData):
        log_type = LogType.TRANSACTION
        operation = certified.operation_type
        tx_number = certified.transaction_number
        client_id = certified.client_id
    elif isinstance(certified, SystemLogData):
        log_type = LogType.SYSTEM
        operation = certified.operation_type
    else:
        log_type = LogType.AUDIT
        operation = ""
    filename = tar.log_filename(
        log_type,
        msg.log_time,
        counter,
        operation=operation,
        transaction_number=tx_number,
        client_id=client_id,
    )
    stored = StoredLog(
        tse_id=ctx.record.tse_id,
        signature_counter=counter,
        log_type=log_type,
        operation=operation,
        log_time=log_time,
        filename=filename,
        message=message,
        transaction_number=tx_number,
        client_id=client_id,
        ref=ref,
        extra=extra,
    )
    return Signed(counter, log_time, signature, stored)


def expiry_error(ctx: TSEContext, log_time: int) -> OpenTSEError | None:
    """TR-03151: ErrorCertificateExpired is returned after the log has been stored."""
    if ctx.certificate_not_after is not None and log_time > ctx.certificate_not_after:
        return StateError(
            "the TSE certificate has expired; the log was stored but the TSE must be replaced",
            code="E_CERTIFICATE_EXPIRED",
            se_error="ErrorCertificateExpired",
        )
    return None


def sign_system(
    ctx: TSEContext,
    state: TSEState,
    now: int,
    certified: SystemLogData | AuditLogData,
    *,
    log_time: int | None = None,
) -> tuple[TSEState, SystemLogResult, tuple[StoredLog, ...]]:
    """Sign one system or audit log; returns the state with counter and time advanced.
    ``log_time`` overrides the clamped time (only updateTime may go backwards)."""
    counter = state.signature_counter + 1
    t = next_log_time(now, state.last_log_time) if log_time is None else log_time
    signed = sign_log(ctx, counter, t, certified)
    new_state = evolve(state, signature_counter=counter, last_log_time=t)
    operation = certified.operation_type if isinstance(certified, SystemLogData) else ""
    result = SystemLogResult(ctx.record.tse_id, operation, counter, t, signed.log.filename)
    return new_state, result, (signed.log,)
