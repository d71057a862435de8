"""Small frozen results the engine and the service hand back to adapters.

They carry what a caller may show or sign a receipt with; never a secret, except
``CreatedTSE`` which carries the PUKs exactly once (fiskaly: ``admin_puk`` is
returned by the create call and never again).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opentse.engine.ports import TSERecord
from opentse.engine.state import TSEState


@dataclass(slots=True, unsafe_hash=True)  # a value: never changed; not frozen (7x cheaper init)
class SignResult:
    """One signed transaction log (Start/Update/Finish): everything a receipt and the
    QR code (DSFinV-K Anhang I) need. ``start_time`` is the log time of the
    transaction's Start log; ``log_time`` that of this log."""

    tse_id: str
    operation: str
    transaction_number: int
    signature_counter: int
    signature: bytes
    log_time: int
    start_time: int
    time_format: str
    serial_number: bytes
    public_key_point: bytes
    algorithm: str
    client_id: str
    process_type: str
    process_data: bytes
    filename: str
    ref: str | None = None
    replayed: bool = False  # True when an idempotent retry returned the stored log


@dataclass(frozen=True, slots=True)
class SystemLogResult:
    """A signed system or audit log (initialize, updateTime, registerClient ...)."""

    tse_id: str
    operation: str
    signature_counter: int
    log_time: int
    filename: str


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Outcome of authenticateUser / unblockUser: the attempt is always logged;
    ``ok=False`` results are raised as errors by the service after the commit."""

    user_id: str
    ok: bool
    remaining_retries: int
    logged_in_until: int | None = None
    log: SystemLogResult | None = None


@dataclass(frozen=True, slots=True)
class CreatedTSE:
    """A new TSE; the PUKs are shown here once and stored only as slow hashes."""

    record: TSERecord
    state: TSEState
    admin_puk: str
    timeadmin_puk: str


@dataclass(frozen=True, slots=True)
class TSEInfo:
    record: TSERecord
    state: TSEState


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export wrote. ``first``/``last_signature_counter`` are None for an
    empty selection; ``export_log`` is the exportData system log written after it."""

    tse_id: str
    records: int
    first_signature_counter: int | None
    last_signature_counter: int | None
    bytes_written: int
    certificate_files: tuple[str, ...] = field(default_factory=tuple)
    export_log: SystemLogResult | None = None
