"""What ``fn`` sees inside ``PostgresStore.run_locked``: one row-locked TSE.

Several callers' ``fn`` may run one after another in ONE transaction (group
commit); ``TxState`` is what each hands on to the next: the version and counter
reached so far and the state object valid for that version.

Logs are not sent as ``fn`` appends them: they are staged (``StagedLogs``) and go
to the database in one multi-row INSERT just before the COMMIT, with the last
saved state's UPDATE. A failing ``fn`` drops only its own staged logs, so no
savepoint is needed (one had cost three round trips per caller and made grouped
batches slower than single ones). Lookups see the staged logs: a ref appended by
an earlier caller of the batch is found, and the refs of the whole batch are
looked up in the database in one query first (``PostgresStore._run_batch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from opentse.engine.ports import StoredLog
from opentse.engine.state import TSEState
from opentse.errors import ConflictError, OpenTSEError, StorageError
from opentse.storage.pg_deadline import WATCHDOG, deletion_seconds
from opentse.storage.rows import (
    LOG_COLUMNS,
    delete_logs_sql,
    find_ref_sql,
    log_params,
    state_from_json,
    state_to_json,
    stored_or_deleted,
)

if TYPE_CHECKING:
    from opentse.storage.postgres import PostgresStore

_FIND_REF = find_ref_sql("%s")
_ROW = "(" + ", ".join(["%s"] * 11) + ")"
_INSERT_HEAD = f"INSERT INTO logs ({LOG_COLUMNS}) VALUES "
_ROWS_PER_INSERT = 200
_DELETE_LOGS = delete_logs_sql("%s")


@dataclass(frozen=True, slots=True)
class TxState:
    """The TSE inside the open transaction, between two callers' ``fn``.

    ``text``: the state JSON of ``version`` when the lock query returned it or a
    caller of this transaction saved it (its UPDATE waits for the COMMIT).
    ``current``: a parsed state of ``version`` nobody has mutated, or None.
    ``saved``: the last state saved and not touched since (cached after COMMIT).
    """

    version: int
    counter: int
    text: str | None = None
    current: TSEState | None = None
    saved: TSEState | None = None


class StagedLogs:
    """The logs of a batch's callers that succeeded so far, not yet sent."""

    __slots__ = ("by_ref", "rows")

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.by_ref: dict[str, StoredLog] = {}

    def flush(self, conn: psycopg.Connection[Any]) -> None:
        """INSERT the staged rows (in counter order: the counter trigger checks
        each against the one before), in as few statements as the size allows."""
        rows = self.rows
        try:
            for begin in range(0, len(rows), _ROWS_PER_INSERT):
                part = rows[begin : begin + _ROWS_PER_INSERT]
                params = [value for row in part for value in row]
                conn.execute(_INSERT_HEAD + ", ".join([_ROW] * len(part)), params)
        except psycopg.Error as exc:
            raise append_error(exc) from exc
        rows.clear()


class LockedView:
    """``engine.ports.LockedTSE`` for one caller inside the locked transaction."""

    def __init__(
        self,
        store: PostgresStore,
        conn: psycopg.Connection[Any],
        tse_id: str,
        tx: TxState,
        staged: StagedLogs | None = None,
        absent: frozenset[str] | set[str] = frozenset(),
    ) -> None:
        self._store = store
        self._conn = conn
        self._tse_id = tse_id
        self._tx = tx
        self._staged = StagedLogs() if staged is None else staged
        self._absent = absent  # refs the batch's lookup found neither stored nor deleted
        self._mine: list[StoredLog] = []  # appended by this fn, staged if it succeeds
        self._rows: list[tuple[Any, ...]] = []
        self._checked: set[str] = set()  # refs this fn found absent itself
        self._counter = tx.counter  # last stored signature counter, including appends
        self._saved_counter = tx.counter  # signature_counter of the state as saved
        self._current = tx.current
        self._loaded = False
        self._saved: TSEState | None = None
        self._pending: tuple[str, int] | None = None  # (state JSON, version) to write
        self._savepoint = False  # set before a deletion (delete_logs)
        self.closed = False

    def _check_open(self) -> None:
        if self.closed:
            raise StorageError("LockedTSE used after run_locked returned", code="E_STORE_CLOSED")

    def load(self) -> TSEState:
        """The current state: the last one saved or loaded here, the cached object
        when nobody wrote since, else parsed from the locked row."""
        self._check_open()
        self._loaded = True
        if self._current is not None:
            return self._current
        state = None
        if self._tx.text is None:
            state = self._store._take(self._tse_id, self._tx.version)
        if state is None:
            text = self._tx.text
            if text is None:  # not sent with the lock and not (any more) cached
                text = self._select_state()
            state = state_from_json(text, self._tx.version)
            self._store._count("state_parsed")
        self._current = state
        return state

    def _select_state(self) -> str:
        try:
            row = self._conn.execute(
                "SELECT state FROM tses WHERE tse_id = %s", (self._tse_id,)
            ).fetchone()
        except psycopg.Error as exc:
            raise pg_error("reading a TSE state", exc) from exc
        assert row is not None  # the row is locked: it cannot vanish
        return str(row[0])

    def save(self, state: TSEState, *, frozen: bool = False) -> None:
        """Persist ``state`` (with ``version`` bumped, set on the object too).

        Its signature_counter must be the last stored one (TR-03151: the counter
        counts every signature; state and logs never disagree).
        """
        self._check_open()
        if state.tse_id != self._tse_id:
            raise StorageError("state belongs to another TSE", code="E_TSE_MISMATCH")
        if state.signature_counter != self._counter:
            raise StorageError(
                f"state.signature_counter {state.signature_counter} differs from the last "
                f"stored counter {self._counter}",
                code="E_COUNTER_GAP",
            )
        version = self._tx.version + 1
        text = state_to_json(state)  # StorageError now if not JSON-safe
        state.version = version
        self._saved_counter = state.signature_counter
        self._current = state
        self._saved = state
        self._pending = (text, version)

    def pending_update(self) -> sql.Composed | None:
        """The UPDATE of the last ``save``, sent with the COMMIT (one round trip less);
        None when nothing was saved."""
        if self._pending is None:
            return None
        text, version = self._pending
        return sql.SQL("UPDATE tses SET state = {}, version = {} WHERE tse_id = {}").format(
            sql.Literal(text), sql.Literal(version), sql.Literal(self._tse_id)
        )

    def append(self, logs: Sequence[StoredLog]) -> None:
        """Store ``logs`` (all or none): counters must continue the stored ones by +1."""
        self._check_open()
        if not logs:
            return
        expected = self._counter + 1
        refs: set[str] = set()
        for log in logs:
            if log.tse_id != self._tse_id:
                raise StorageError("log belongs to another TSE", code="E_TSE_MISMATCH")
            if log.signature_counter != expected:
                raise StorageError(
                    f"signature counter {log.signature_counter} does not follow {expected - 1}",
                    code="E_COUNTER_GAP",
                )
            expected += 1
            if log.ref is not None:
                if log.ref in refs:
                    raise ConflictError(f"duplicate ref {log.ref!r}", code="E_DUPLICATE_REF")
                refs.add(log.ref)
        for ref in refs:  # stored, deleted, staged by this batch or by this fn before
            if self.find_ref(ref) is not None:
                raise ConflictError("a log with this ref exists", code="E_DUPLICATE_REF")
        rows = [log_params(log) for log in logs]  # StorageError before staging anything
        self._mine.extend(logs)
        self._rows.extend(rows)
        self._counter = expected - 1

    def delete_logs(self, up_to: int) -> None:
        """deleteStoredData: in this request's transaction, before its appends. The
        staged logs of earlier callers go first, then a savepoint, so that a failing
        ``fn`` takes its deletion back (``failed``). The batch's deadline grows with
        the number of logs that go (``pg_deadline.deletion_seconds``): a fixed one
        refused a TSE's deletion of more than about 80,000 logs for good."""
        self._check_open()
        if self._mine:
            raise StorageError("delete_logs comes before appends", code="E_STORE_ORDER")
        self._staged.flush(self._conn)
        try:
            row = self._conn.execute(
                "SELECT min(signature_counter) FROM logs WHERE tse_id = %s", (self._tse_id,)
            ).fetchone()
            first = up_to + 1 if row is None or row[0] is None else int(row[0])
            WATCHDOG.extend(
                self._conn, deletion_seconds(up_to - first + 1, self._store.batch_deadline)
            )
            if not self._savepoint:
                self._conn.execute("SAVEPOINT opentse_delete")
                self._savepoint = True
            for statement in _DELETE_LOGS:
                self._conn.execute(statement, (self._tse_id, up_to))
        except psycopg.Error as exc:
            raise pg_error("deleting logs", exc) from exc

    def find_ref(self, ref: str) -> StoredLog | None:
        self._check_open()
        for log in self._mine:
            if log.ref == ref:
                return log
        staged = self._staged.by_ref.get(ref)
        if staged is not None:
            return staged
        if ref in self._absent or ref in self._checked:
            return None
        return self._query_ref(ref)

    def _query_ref(self, ref: str) -> StoredLog | None:
        try:
            row = self._conn.execute(_FIND_REF, (self._tse_id, ref, self._tse_id, ref)).fetchone()
        except psycopg.Error as exc:
            raise pg_error("reading a log", exc) from exc
        found = stored_or_deleted(row, ref)
        if found is None:
            self._checked.add(ref)
        return found

    def finish(self) -> None:
        """After ``fn``: appended logs require the state saved with their counter."""
        if self._saved_counter != self._counter:
            raise StorageError(
                f"logs up to counter {self._counter} appended but the state was saved "
                f"with {self._saved_counter}",
                code="E_COUNTER_GAP",
            )

    def succeeded(self) -> TxState:
        """What the next ``fn`` in this transaction starts from after this one (its
        logs join the batch's staged ones)."""
        staged = self._staged
        staged.rows.extend(self._rows)
        for log in self._mine:
            if log.ref is not None:
                staged.by_ref[log.ref] = log
        if self._saved is not None:
            saved = self._saved
            # its JSON too: the UPDATE waits for the COMMIT, so a caller after a
            # failed one must parse this state, not read the row
            text = None if self._pending is None else self._pending[0]
            return TxState(saved.version, self._counter, text, saved, saved)
        if self._loaded:  # fn may have changed the object it loaded without saving
            return TxState(self._tx.version, self._tx.counter, self._tx.text)
        return self._tx

    def failed(self) -> TxState:
        """After ``fn`` raised: its staged logs are dropped, a deletion rolled back,
        and the next one starts from the state before it (objects it may have
        touched are dropped)."""
        if self._savepoint:
            try:
                self._conn.execute("ROLLBACK TO SAVEPOINT opentse_delete")
            except psycopg.Error as exc:
                raise pg_error("rolling back", exc) from exc
        tx = self._tx
        if self._loaded or self._saved is not None:
            return TxState(tx.version, tx.counter, tx.text)
        return tx


def append_error(exc: psycopg.Error) -> OpenTSEError:
    constraint = exc.diag.constraint_name or ""
    if isinstance(exc, pg_errors.UniqueViolation) and "ref" in constraint:
        return ConflictError("a log with this ref exists", code="E_DUPLICATE_REF")
    if isinstance(exc, pg_errors.UniqueViolation | pg_errors.CheckViolation):
        return StorageError(f"signature counter rejected: {exc}", code="E_COUNTER_GAP")
    return pg_error("appending logs", exc)  # 53100, the server's disk full: E_STORAGE_FULL


def pg_error(doing: str, exc: psycopg.Error) -> StorageError:
    """A failure inside the locked transaction, coded as on every PostgreSQL path
    (``postgres._storage_error``): 53100 (the database server's disk is full) is
    E_STORAGE_FULL, a lost connection E_STORAGE_UNAVAILABLE, a lock or statement
    timeout E_STORAGE_BUSY. Deleting logs answered plain E_STORAGE on a full disk."""
    from opentse.storage.postgres import _storage_error  # postgres imports this module

    return _storage_error(doing, exc)
