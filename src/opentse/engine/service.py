"""TSEService: the I/O driver around the pure engine (store, keys, clock).

Each SE API call is one ``store.run_locked`` whose function loads the state, runs
one engine step, appends the signed logs and saves the state, all committed
together (engine/ports.py durability rule). Errors an engine step wants raised
*after* its logs are committed (wrong PIN, expired certificate) come back in
``Outcome.error`` and are raised here after the commit.

Time (TR-03151: "nothing may be signed until updateTime after power loss"): a
software TSE's power loss is a process start, so whether the time is set is kept in
this object's memory, never trusted from the store. With ``auto_time`` the service
sets the time from its clock (an UpdateTime log) when the first operation after
start needs it: the pure step raises E_TIME_NOT_SET, the service signs UpdateTime
and runs the step again, all in one commit. Without ``auto_time`` callers call
``update_time`` once after start.

Slow secret hashing (scrypt) happens between locked steps, never inside one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any, Literal, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from opentse.crypto import secrets as secret_hash
from opentse.crypto.ca import LocalCA
from opentse.engine import export as export_mod
from opentse.engine import provision, rules, tse, users
from opentse.engine.keyring import Keyring
from opentse.engine.ports import (
    AsyncLockedStore,
    Clock,
    LockedTSE,
    LogFilter,
    StoredLog,
    TSERecord,
    TSEStore,
)
from opentse.engine.results import (
    AuthResult,
    CreatedTSE,
    ExportSummary,
    SignResult,
    SystemLogResult,
    TSEInfo,
)
from opentse.engine.signing import Outcome, TSEContext, evolve
from opentse.engine.state import Lifecycle, TSEState
from opentse.errors import NotFoundError, OpenTSEError, ProtocolError, StateError
from opentse.tr03151 import codec
from opentse.tr03151.logmessage import TransactionLogData
from opentse.tr03151.oids import LogType

R = TypeVar("R")
Step = Callable[[TSEContext, TSEState, int], Outcome[R]]

CERTIFICATE_DAYS = 365 * 5
generate_puk = provision.generate_puk  # kept importable from here


@dataclasses.dataclass(frozen=True, slots=True)
class _Replay:
    log: StoredLog


class TSEService:
    """The SE API of every TSE in one store. Thread-safe; one per process."""

    def __init__(
        self,
        store: TSEStore,
        keyring: Keyring,
        clock: Clock,
        *,
        auto_time: bool = True,
        ca: LocalCA | None = None,
        certificate_days: int = CERTIFICATE_DAYS,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.clock = clock
        self.auto_time = auto_time
        self.ca = ca
        self.certificate_days = certificate_days
        self._contexts: dict[str, TSEContext] = {}
        self._time_set: set[str] = set()
        self._lock = threading.Lock()
        self._attempt_locks: dict[tuple[str, str, str], threading.Lock] = {}
        # checked once: a runtime Protocol check costs ~10 us, more than a request's
        # own bookkeeping
        self._async_store = store if isinstance(store, AsyncLockedStore) else None

    # -- plumbing ----------------------------------------------------------------

    def context(self, tse_id: str) -> TSEContext:
        """Record + signer + certificate expiry, built once per TSE and process."""
        ctx = self._contexts.get(tse_id)  # one dict read is atomic; writes take the lock
        if ctx is not None:
            return ctx
        record = self.store.get_record(tse_id)
        not_after: int | None = None
        if record.certificate_chain:
            cert = x509.load_der_x509_certificate(record.certificate_chain[0])
            not_after = int(cert.not_valid_after_utc.timestamp())
        ctx = TSEContext.build(record, self.keyring.signer(record), not_after)
        with self._lock:
            return self._contexts.setdefault(tse_id, ctx)

    def _prepare(self, tse_id: str, state: TSEState) -> TSEState:
        time_set = tse_id in self._time_set
        if state.time_set != time_set:
            state = evolve(state, time_set=time_set)
        return state

    def _run(self, tse_id: str, step: Step[R], *, signs: bool = True, ref: str | None = None) -> R:
        """One locked engine step (plus the automatic UpdateTime before it)."""
        out = self.store.run_locked(tse_id, self._locked(tse_id, step, signs, ref), ref=ref)
        if isinstance(out, _Replay):
            return self._replay(tse_id, out.log)  # type: ignore[return-value]
        return self._concluded(tse_id, out)

    async def _run_async(
        self, tse_id: str, step: Step[R], *, signs: bool = True, ref: str | None = None
    ) -> R:
        """``_run`` for a caller on the event loop: with a store that answers the
        loop itself (SQLite) no thread waits for the commit; any other store runs
        ``_run`` on a worker thread."""
        store = self._async_store
        if store is None:
            return await asyncio.to_thread(self._run, tse_id, step, signs=signs, ref=ref)
        if tse_id not in self._contexts:  # the first call reads the store and the key
            await asyncio.to_thread(self.context, tse_id)
        fn = self._locked(tse_id, step, signs, ref)
        out = await store.run_locked_async(tse_id, fn, ref=ref)
        if isinstance(out, _Replay):  # reads the logs: not on the loop
            return await asyncio.to_thread(self._replay, tse_id, out.log)  # type: ignore[arg-type]
        return self._concluded(tse_id, out)

    def _locked(
        self, tse_id: str, step: Step[R], signs: bool, ref: str | None
    ) -> Callable[[LockedTSE], Outcome[R] | _Replay]:
        """The function ``run_locked`` runs for one step: replay check, load, step
        (with UpdateTime first when the time is not set), append, save."""
        ctx = self.context(tse_id)

        def fn(locked: LockedTSE) -> Outcome[R] | _Replay:
            if ref is not None:
                found = locked.find_ref(ref)
                if found is not None:
                    return _Replay(found)
            loaded = locked.load()
            state = self._prepare(tse_id, loaded)
            now = self.clock.now()
            logs: list[StoredLog] = []
            try:
                out = step(ctx, state, now)
            except StateError as exc:
                # Set the time only when a step needs it (so a refused call after
                # start-up signs nothing either), then run the pure step again.
                if exc.code != "E_TIME_NOT_SET" or not (signs and self.auto_time):
                    raise
                timed = tse.update_time(ctx, state, now)
                state = timed.state
                logs.extend(timed.logs)
                out = step(ctx, state, now)
            logs.extend(out.logs)
            if out.delete_up_to:
                locked.delete_logs(out.delete_up_to)
            if logs:
                locked.append(logs)
            if out.state is not loaded:
                locked.save(out.state, frozen=True)  # engine steps never change a state
            return out

        return fn

    def _concluded(self, tse_id: str, out: Outcome[R]) -> R:
        """After the commit: remember the time is set, raise the step's deferred
        error, else its result."""
        if out.state.time_set and tse_id not in self._time_set:
            with self._lock:
                self._time_set.add(tse_id)
        if out.error is not None:
            raise out.error
        return out.result

    def _replay(self, tse_id: str, log: StoredLog) -> SignResult:
        """An idempotent retry: rebuild the result from the stored log, sign nothing."""
        msg = codec.decode_log_message(log.message)
        data = msg.certified
        if not isinstance(data, TransactionLogData):
            raise ProtocolError("ref names a non-transaction log", code="E_REF_CONFLICT")
        start_time = log.log_time
        if data.operation_type != "StartTransaction":
            n = data.transaction_number
            flt = LogFilter(
                start_transaction_number=n,
                end_transaction_number=n,
                log_types=(LogType.TRANSACTION,),
            )
            for first in self.store.iter_logs(tse_id, flt):
                start_time = first.log_time
                break
        rec = self.context(tse_id).record
        return SignResult(
            tse_id=tse_id,
            operation=data.operation_type,
            transaction_number=data.transaction_number,
            signature_counter=log.signature_counter,
            signature=msg.signature_value,
            log_time=log.log_time,
            start_time=start_time,
            time_format=rec.time_format,
            serial_number=rec.serial_number,
            public_key_point=rec.public_key_point,
            algorithm=rec.signature_algorithm,
            client_id=data.client_id,
            process_type=data.process_type,
            process_data=data.process_data,
            filename=log.filename,
            ref=log.ref,
            replayed=True,
        )

    def is_time_set(self, tse_id: str) -> bool:
        return tse_id in self._time_set

    # -- TSE management ---------------------------------------------------------

    def create_tse(
        self,
        tse_id: str,
        *,
        curve: str = "P-256",
        time_format: str = "unixTime",
        description: str = "",
        owner: str = "",
        admin_puk: str | None = None,
        timeadmin_puk: str | None = None,
        algorithm: str | None = None,
        private_key: ec.EllipticCurvePrivateKey | None = None,
        extra: dict[str, Any] | None = None,
    ) -> CreatedTSE:
        """A new TSE in state CREATED: key pair (encrypted at rest), certificate from
        the local CA (if any), PUKs for admin and timeadmin returned once."""
        created, signer = provision.new_tse(
            tse_id,
            curve=curve,
            time_format=time_format,
            description=description,
            owner=owner,
            admin_puk=admin_puk,
            timeadmin_puk=timeadmin_puk,
            algorithm=algorithm,
            private_key=private_key,
            extra=extra,
            now=self.clock.now(),
            ca=self.ca,
            certificate_days=self.certificate_days,
            encrypt=self.keyring.encrypt,
        )
        self.store.create_tse(created.record, created.state)
        self.keyring.add(tse_id, signer)
        return created

    def get(self, tse_id: str) -> TSEInfo:
        record = self.store.get_record(tse_id)
        return TSEInfo(record, self._prepare(tse_id, self.store.get_state(tse_id)))

    def list(self, owner: str | None = None) -> list[TSEInfo]:
        return [
            TSEInfo(r, self._prepare(r.tse_id, self.store.get_state(r.tse_id)))
            for r in self.store.list_tses(owner)
        ]

    def set_state(self, tse_id: str, target: Lifecycle | str) -> TSEInfo:
        """fiskaly PATCH /tss {state}: the lifecycle table decides (rules.py)."""
        try:
            target = Lifecycle(target)
        except ValueError:
            raise ProtocolError(
                f"unknown TSS state {target!r}", code="E_ILLEGAL_TSS_STATE_CHANGE"
            ) from None
        signs = target in (Lifecycle.INITIALIZED, Lifecycle.DISABLED)
        self._run(tse_id, lambda c, s, n: tse.set_lifecycle(c, s, n, target), signs=signs)
        return self.get(tse_id)

    def initialize(self, tse_id: str, description: str | None = None) -> SystemLogResult:
        return self._run(tse_id, lambda c, s, n: tse.initialize(c, s, n, description))

    def disable(self, tse_id: str) -> SystemLogResult:
        return self._run(tse_id, lambda c, s, n: tse.disable(c, s, n))

    def delete_stored_data(self, tse_id: str) -> SystemLogResult:
        """deleteStoredData as the logged-in admin (see ``tse.delete_stored_data``)."""
        return self._run(tse_id, lambda c, s, n: tse.delete_stored_data(c, s, n))

    def configure(
        self,
        tse_id: str,
        *,
        description: str | None = None,
        max_clients: int | None = None,
        max_open_transactions: int | None = None,
    ) -> SystemLogResult | None:
        """Audit-logged configuration change (admin login required when signing)."""
        return self._run(
            tse_id,
            lambda c, s, n: tse.configure(
                c,
                s,
                n,
                description=description,
                max_clients=max_clients,
                max_open_transactions=max_open_transactions,
            ),
        )

    def self_test(self, tse_id: str) -> SystemLogResult:
        ctx = self.context(tse_id)
        from opentse.tr03151.signature import verify_signature  # local: only here

        probe = b"opentse self test"
        verify_signature(
            ctx.record.public_key_point,
            ctx.algorithm_oid,
            probe,
            ctx.signer.sign(probe),
            ctx.record.curve,
        )
        return self._run(tse_id, lambda c, s, n: tse.self_test(c, s, n))

    # -- users ------------------------------------------------------------------

    def _one_attempt_at_a_time(self, tse_id: str, user_id: str, kind: str) -> threading.Lock:
        """The lock an attempt with one user's PIN (or PUK) holds from counting down to
        its result. Each attempt counts down before it is checked (a crash counts as a
        failure); six correct PINs at once counted the counter to zero between them and
        the sixth was refused as blocked. In turn, each counts down and is restored.
        Per process: nodes of one database can still overlap (then as before)."""
        key = (tse_id, user_id, kind)
        with self._lock:
            lock = self._attempt_locks.get(key)
            if lock is None:
                lock = self._attempt_locks[key] = threading.Lock()
            return lock

    def set_admin_pin(
        self, tse_id: str, admin_puk: str, new_admin_pin: str, *, user_id: str = users.ADMIN
    ) -> AuthResult:
        """unblockUser (fiskaly PATCH /admin): set, change or unblock a PIN with the PUK."""
        rules.check_new_secret(new_admin_pin, kind="pin", minimum=rules.MIN_PIN)
        with self._one_attempt_at_a_time(tse_id, user_id, "puk"):
            checked = self._run(
                tse_id, lambda c, s, n: users.begin_attempt(c, s, n, user_id, "puk")
            )
            ok = secret_hash.verify_secret(admin_puk, checked)
            new_hash = secret_hash.hash_secret(new_admin_pin) if ok else None
            return self._run(
                tse_id,
                lambda c, s, n: users.finish_unblock(c, s, n, user_id, ok, checked, new_hash),
            )

    def authenticate(self, tse_id: str, pin: str, *, user_id: str = users.ADMIN) -> AuthResult:
        """authenticateUser: counter down and committed, check, then log the attempt;
        a wrong PIN raises E_PIN_INVALID (or E_<ROLE>_PIN_BLOCKED) after the commit."""
        with self._one_attempt_at_a_time(tse_id, user_id, "pin"):
            checked = self._run(
                tse_id, lambda c, s, n: users.begin_attempt(c, s, n, user_id, "pin")
            )
            ok = isinstance(pin, str) and secret_hash.verify_secret(pin, checked)
            return self._run(
                tse_id, lambda c, s, n: users.finish_authenticate(c, s, n, user_id, ok, checked)
            )

    def logout(self, tse_id: str, *, user_id: str = users.ADMIN) -> SystemLogResult | None:
        return self._run(tse_id, lambda c, s, n: users.logout(c, s, n, user_id))

    def update_time(self, tse_id: str, *, user_id: str | None = None) -> SystemLogResult:
        """updateTime from the service clock. With ``auto_time=False`` call it once
        after start without ``user_id`` (start-up sync); later changes need a
        logged-in admin or timeadmin (``user_id`` names which)."""
        return self._run(
            tse_id, lambda c, s, n: tse.update_time(c, s, n, user_id=user_id), signs=False
        )

    # -- clients ----------------------------------------------------------------

    def register_client(self, tse_id: str, client_id: str) -> SystemLogResult:
        return self._run(tse_id, lambda c, s, n: tse.register_client(c, s, n, client_id))

    def deregister_client(self, tse_id: str, client_id: str) -> SystemLogResult:
        return self._run(tse_id, lambda c, s, n: tse.deregister_client(c, s, n, client_id))

    # -- transactions -----------------------------------------------------------

    def start_transaction(
        self,
        tse_id: str,
        client_id: str,
        process_data: bytes = b"",
        process_type: str = "",
        *,
        ref: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> SignResult:
        """startTransaction. ``ref``: idempotency key; a retry with the same ref returns
        the stored result (``replayed=True``) and signs nothing."""
        step = _transaction_step("start", client_id, 0, process_data, process_type, ref, extra)
        return self._run(tse_id, step, ref=ref)

    def update_transaction(
        self,
        tse_id: str,
        client_id: str,
        number: int,
        process_data: bytes = b"",
        process_type: str = "",
        *,
        ref: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> SignResult:
        step = _transaction_step(
            "update", client_id, number, process_data, process_type, ref, extra
        )
        return self._run(tse_id, step, ref=ref)

    def finish_transaction(
        self,
        tse_id: str,
        client_id: str,
        number: int,
        process_data: bytes = b"",
        process_type: str = "",
        *,
        ref: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> SignResult:
        step = _transaction_step(
            "finish", client_id, number, process_data, process_type, ref, extra
        )
        return self._run(tse_id, step, ref=ref)

    async def transaction_async(
        self,
        operation: TransactionOp,
        tse_id: str,
        client_id: str,
        number: int = 0,
        process_data: bytes = b"",
        process_type: str = "",
        *,
        ref: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> SignResult:
        """start/update/finish_transaction (``operation``) awaited on the event loop
        (``number`` is ignored for a start): what an asyncio server calls."""
        step = _transaction_step(
            operation, client_id, number, process_data, process_type, ref, extra
        )
        return await self._run_async(tse_id, step, ref=ref)

    # -- export -----------------------------------------------------------------

    def export(
        self,
        tse_id: str,
        out: IO[bytes],
        flt: export_mod.ExportFilter | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
        log_export: bool = True,
    ) -> ExportSummary:
        """exportData to ``out`` (a TAR), streamed; then the exportData system log
        (only while INITIALIZED: ``tse.export_log``)."""
        flt = flt or export_mod.ExportFilter()
        flt.validate()
        record = self.store.get_record(tse_id)
        rules.check_allowed(rules.Op.EXPORT, self.store.get_state(tse_id).lifecycle)
        summary = export_mod.write_export(self.store, record, out, flt, progress=progress)
        if not log_export:
            return summary
        return self.log_export(tse_id, summary, flt)

    def log_export(
        self,
        tse_id: str,
        summary: ExportSummary,
        flt: export_mod.ExportFilter | None = None,
    ) -> ExportSummary:
        """The exportData system log of an export already written (``export`` with
        ``log_export=False``). A caller that must keep the file first (the archive)
        signs it only once the file is on the disk: an unfiltered export's log lets
        deleteStoredData drop every log it holds."""
        flt = flt or export_mod.ExportFilter()
        up_to = summary.last_signature_counter if flt.is_unfiltered() else None
        try:
            log = self._run(
                tse_id,
                lambda c, s, n: tse.export_log(c, s, n, description=flt.describe(), up_to=up_to),
            )
        except OpenTSEError as exc:
            if exc.code != "E_CERTIFICATE_EXPIRED":
                raise
            log = None
        return dataclasses.replace(summary, export_log=log)

    def logs(self, tse_id: str, flt: LogFilter | None = None) -> Iterator[StoredLog]:
        return self.store.iter_logs(tse_id, flt)

    # -- SE API queries (sign nothing) -------------------------------------------

    def read_log_message(self, tse_id: str, signature_counter: int | None = None) -> bytes:
        """readLogMessage: the last log message (or the one with this counter)."""
        counter = signature_counter or self.store.get_state(tse_id).signature_counter
        log = self.store.get_log(tse_id, counter) if counter else None
        if log is None:
            raise NotFoundError("no such log message", code="E_LOG_NOT_FOUND")
        return log.message

    def export_certificates(self, tse_id: str) -> tuple[bytes, ...]:
        """exportCertificates: the TSE certificate first, then its CA chain (DER)."""
        return self.store.get_record(tse_id).certificate_chain

    def limits(self, tse_id: str) -> dict[str, int]:
        """getMax/CurrentNumberOfClients and ...Transactions (SE API) in one call."""
        state = self.store.get_state(tse_id)
        return {
            "max_number_clients": state.max_clients,
            "current_number_clients": sum(1 for c in state.clients.values() if c.registered),
            "max_number_transactions": state.max_open_transactions,
            "current_number_transactions": len(state.open_transactions),
        }

    @staticmethod
    def supported_update_variants() -> tuple[str, ...]:
        """getSupportedTransactionUpdateVariants: every update is signed and logged."""
        return ("SIGNED",)

    def find_ref(self, tse_id: str, ref: str) -> SignResult | None:
        log = self.store.find_ref(tse_id, ref)
        return None if log is None else self._replay(tse_id, log)

    def require(self, tse_id: str) -> TSERecord:
        try:
            return self.store.get_record(tse_id)
        except NotFoundError:
            raise NotFoundError(f"TSS {tse_id!r} not found", code="E_TSS_NOT_FOUND") from None


TransactionOp = Literal["start", "update", "finish"]


def _transaction_step(
    operation: TransactionOp,
    client_id: str,
    number: int,
    process_data: bytes,
    process_type: str,
    ref: str | None,
    extra: dict[str, Any] | None,
) -> Step[SignResult]:
    """The pure engine step of one transaction call (shared by the blocking and the
    asyncio entry points)."""
    if operation == "start":
        return lambda c, s, n: tse.start_transaction(
            c, s, n, client_id, process_data, process_type, ref=ref, extra=extra
        )
    run = tse.update_transaction if operation == "update" else tse.finish_transaction
    return lambda c, s, n: run(
        c, s, n, client_id, number, process_data, process_type, ref=ref, extra=extra
    )
