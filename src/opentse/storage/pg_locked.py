"""What ``fn`` sees inside ``PostgresStore.run_locked``: one row-locked TSE.

Several callers' ``fn`` may run one after another in ONE transaction (group
commit); ``TxState`` is what each hands on to the next: the version and counter
reached so far and the state object valid for that version. A failing ``fn``
rolls back to its savepoint and the next one continues from the state before it.
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
_DELETE_LOGS = delete_logs_sql("%s")
INSERT_LOG = f"INSERT INTO logs ({LOG_COLUMNS}) VALUES ({', '.join(['%s'] * 11)})"
# One log (the usual append): a duplicate ref is skipped, not an error, so the
# transaction stays usable without a savepoint round trip (the counter trigger runs
# AFTER INSERT, so a skipped row advances nothing).
INSERT_ONE_LOG = (
    INSERT_LOG + " ON CONFLICT (tse_id, ref) WHERE ref IS NOT NULL DO NOTHING"
    " RETURNING signature_counter"
)


@dataclass(frozen=True, slots=True)
class TxState:
    """The TSE inside the open transaction, between two callers' ``fn``.

    ``text``: the state JSON of ``version`` when the lock query returned it.
    ``current``: a parsed state of ``version`` nobody has mutated, or None.
    ``saved``: the last state saved and not touched since (cached after COMMIT).
    """

    version: int
    counter: int
    text: str | None = None
    current: TSEState | None = None
    saved: TSEState | None = None


class LockedView:
    """``engine.ports.LockedTSE`` for one caller inside the locked transaction."""

    def __init__(
        self,
        store: PostgresStore,
        conn: psycopg.Connection[Any],
        tse_id: str,
        tx: TxState,
    ) -> None:
        self._store = store
        self._conn = conn
        self._tse_id = tse_id
        self._tx = tx
        self._counter = tx.counter  # last stored signature counter, including appends
        self._saved_counter = tx.counter  # signature_counter of the state as saved
        self._current = tx.current
        self._loaded = False
        self._saved: TSEState | None = None
        self._pending: tuple[str, int] | None = None  # (state JSON, version) to write
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
            raise StorageError(f"PostgreSQL failed while reading a TSE state: {exc}") from exc
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
        """The UPDATE of the last ``save``, sent with the next COMMIT or RELEASE
        (one round trip less per operation); None when nothing was saved."""
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
        params = [log_params(log) for log in logs]  # StorageError before writing anything
        try:
            if len(params) == 1:
                inserted = self._conn.execute(INSERT_ONE_LOG, params[0]).fetchone()
                if inserted is None:
                    raise ConflictError("a log with this ref exists", code="E_DUPLICATE_REF")
            else:
                with self._conn.transaction(), self._conn.cursor() as cursor:  # a savepoint
                    cursor.executemany(INSERT_LOG, params)
        except psycopg.Error as exc:
            raise append_error(exc) from exc
        self._counter = expected - 1

    def delete_logs(self, up_to: int) -> None:
        """deleteStoredData: in this request's transaction, before its appends."""
        self._check_open()
        try:
            for statement in _DELETE_LOGS:
                self._conn.execute(statement, (self._tse_id, up_to))
        except psycopg.Error as exc:
            raise StorageError(f"PostgreSQL failed while deleting logs: {exc}") from exc

    def find_ref(self, ref: str) -> StoredLog | None:
        self._check_open()
        try:
            row = self._conn.execute(_FIND_REF, (self._tse_id, ref, self._tse_id, ref)).fetchone()
        except psycopg.Error as exc:
            raise StorageError(f"PostgreSQL failed while reading a log: {exc}") from exc
        return stored_or_deleted(row, ref)

    def finish(self) -> None:
        """After ``fn``: appended logs require the state saved with their counter."""
        if self._saved_counter != self._counter:
            raise StorageError(
                f"logs up to counter {self._counter} appended but the state was saved "
                f"with {self._saved_counter}",
                code="E_COUNTER_GAP",
            )

    def succeeded(self) -> TxState:
        """What the next ``fn`` in this transaction starts from after this one."""
        if self._saved is not None:
            saved = self._saved
            return TxState(saved.version, self._counter, None, saved, saved)
        if self._loaded:  # fn may have changed the object it loaded without saving
            return TxState(self._tx.version, self._tx.counter, self._tx.text)
        return self._tx

    def failed(self) -> TxState:
        """After a rollback to this fn's savepoint: the state before it (objects it
        may have touched are dropped)."""
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
    return StorageError(f"PostgreSQL failed while appending logs: {exc}")
