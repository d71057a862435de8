"""Log messages as frozen dataclasses (TR-03151 v1.0.1 chapter 5; digest tr03151.md).

The encoder and decoder live in ``der_codec``; these classes carry no bytes logic
except the signed-data bytes a decoder found, which verification must use as they
stand (D-Trust writes BER indefinite-length processData, never re-encode).
"""

from __future__ import annotations

from dataclasses import dataclass

from opentse.tr03151.logtime import LogTime
from opentse.tr03151.oids import LogType

START = "StartTransaction"
UPDATE = "UpdateTransaction"
FINISH = "FinishTransaction"
TRANSACTION_OPERATIONS = (START, UPDATE, FINISH)


@dataclass(slots=True, unsafe_hash=True)  # a value: never changed; not frozen (7x cheaper init)
class TransactionLogData:
    """certifiedData of a transaction log: [0] operationType .. [6] additionalInternalData."""

    operation_type: str
    client_id: str
    process_data: bytes
    process_type: str
    transaction_number: int
    additional_external_data: bytes | None = None
    additional_internal_data: bytes | None = None


@dataclass(slots=True, unsafe_hash=True)  # a value: never changed; not frozen (7x cheaper init)
class SystemLogData:
    """certifiedData of a system log: [0] operationType, [1] systemOperationData (a raw
    run of context-tagged TLVs), [2] additionalInternalData. Version 3 logs are mapped
    here too: operation_type = eventType, system_operation_data = the raw rest."""

    operation_type: str
    system_operation_data: bytes = b""
    additional_internal_data: bytes | None = None


@dataclass(slots=True, unsafe_hash=True)  # a value: never changed; not frozen (7x cheaper init)
class AuditLogData:
    """Audit logs have no certifiedData; seAuditData follows signatureAlgorithm."""

    se_audit_data: bytes


CertifiedData = TransactionLogData | SystemLogData | AuditLogData


@dataclass(slots=True, unsafe_hash=True)  # a value: never changed; not frozen (7x cheaper init)
class LogMessage:
    """One log message. ``signature_value`` is empty before signing; ``signed_data`` is set
    by the decoder (exact bytes covered by the signature) and by the signer."""

    certified: CertifiedData
    serial_number: bytes
    signature_algorithm: str  # dotted OID
    signature_counter: int
    log_time: LogTime
    signature_value: bytes = b""
    version: int = 2
    signed_data: bytes | None = None

    @property
    def log_type(self) -> LogType:
        if isinstance(self.certified, TransactionLogData):
            return LogType.TRANSACTION
        if isinstance(self.certified, SystemLogData):
            return LogType.SYSTEM
        return LogType.AUDIT
