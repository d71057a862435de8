"""The ports through which engines reach the world (storage, clock).

Storage adapters (``storage/sqlite.py``, later ``storage/postgres.py``) implement
``TSEStore``; ``opentse.testing`` ships a store conformance suite both must pass.

Durability rule (brief, "Nothing lost"): ``run_locked`` returns only after the logs
appended and the state saved inside ``fn`` are durably committed, together. A store
may batch several callers' ``fn`` into one database transaction (group commit) as
long as each caller's effects are all-or-nothing and results are released only
after the commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from opentse.engine.state import TSEState
from opentse.tr03151.oids import LogType

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TSERecord:
    """What never changes after a TSE is created (keys, certificates, formats)."""

    tse_id: str
    serial_number: bytes  # SHA-256 of the uncompressed public key point
    curve: str  # "P-256" | "P-384" | "brainpoolP256r1" | "brainpoolP384r1"
    signature_algorithm: str  # name, e.g. "ecdsa-plain-SHA256"
    time_format: str  # TimeFormat value, e.g. "unixTime"
    public_key_point: bytes
    encrypted_private_key: bytes  # see crypto.keys: never stored in clear
    certificate_chain: tuple[bytes, ...]  # DER: TSE certificate first, then CAs
    created_at: int
    owner: str = ""  # organization id in the service; "" for the embedded default
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, unsafe_hash=True)  # a value: never changed; not frozen (7x cheaper init)
class StoredLog:
    """A signed log message as stored: the DER bytes plus what the export and the
    service need to find it without decoding."""

    tse_id: str
    signature_counter: int
    log_type: LogType
    operation: str  # operationType; "" for audit logs
    log_time: int  # unix seconds
    filename: str  # TAR member name (TR-03151 naming)
    message: bytes  # the complete DER log message
    transaction_number: int | None = None
    client_id: str | None = None
    ref: str | None = None  # caller's idempotency key, unique per TSE (e.g. "tx:<uuid>:<rev>")
    extra: dict[str, Any] | None = None  # JSON-safe data for adapters (schema, metadata)


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Export / read filter; TR-03151 exportData semantics are applied by the engine."""

    client_id: str | None = None
    start_transaction_number: int | None = None
    end_transaction_number: int | None = None
    start_time: int | None = None  # inclusive, unix seconds
    end_time: int | None = None  # inclusive
    start_signature_counter: int | None = None
    end_signature_counter: int | None = None
    log_types: tuple[LogType, ...] | None = None


class LockedTSE(Protocol):
    """The view ``fn`` gets inside ``TSEStore.run_locked``: one TSE, exclusively."""

    def load(self) -> TSEState: ...

    def save(self, state: TSEState, *, frozen: bool = False) -> None:
        """``frozen=True`` promises that nobody changes ``state`` (or what it holds)
        after this call, so a store may keep the object and serialise it later."""
        ...

    def append(self, logs: Sequence[StoredLog]) -> None: ...

    def find_ref(self, ref: str) -> StoredLog | None: ...

    def delete_logs(self, up_to: int) -> None:
        """Drop the stored logs with a signature counter up to ``up_to`` (with this
        request; the counters go on where they were)."""
        ...


class TSEStore(Protocol):
    def create_tse(self, record: TSERecord, state: TSEState) -> None:
        """Raises ConflictError if the id exists."""
        ...

    def get_record(self, tse_id: str) -> TSERecord:
        """Raises NotFoundError."""
        ...

    def get_state(self, tse_id: str) -> TSEState:
        """A committed snapshot, without locking."""
        ...

    def list_tses(self, owner: str | None = None) -> list[TSERecord]: ...

    def run_locked(self, tse_id: str, fn: Callable[[LockedTSE], T], *, ref: str | None = None) -> T:
        """Run ``fn`` with the TSE exclusively locked (across threads and processes);
        commit durably, then return fn's result. If fn raises, nothing is kept.
        ``ref``: the idempotency key ``fn`` will look up, a hint a store may use to
        look up several requests' refs at once (it changes no result)."""
        ...

    def iter_logs(self, tse_id: str, flt: LogFilter | None = None) -> Iterator[StoredLog]:
        """Logs in signature-counter order, streamed (bounded memory)."""
        ...

    def count_logs(self, tse_id: str, flt: LogFilter | None = None) -> int: ...

    def get_log(self, tse_id: str, signature_counter: int) -> StoredLog | None: ...

    def find_ref(self, tse_id: str, ref: str) -> StoredLog | None: ...

    def close(self) -> None: ...


@runtime_checkable
class AsyncLockedStore(Protocol):
    """A store whose writer can answer an asyncio caller directly (SQLite's group
    commit): the event loop awaits the commit instead of parking a thread on it."""

    def run_locked_async(
        self, tse_id: str, fn: Callable[[LockedTSE], T], *, ref: str | None = None
    ) -> Awaitable[T]:
        """``run_locked`` from the running event loop; the same guarantees."""
        ...


class Clock(Protocol):
    def now(self) -> int:
        """Current UTC time in whole unix seconds."""
        ...
