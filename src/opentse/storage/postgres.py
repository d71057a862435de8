"""The TSE store on PostgreSQL (psycopg 3 + psycopg_pool), for several API nodes.

Same promises as ``storage/sqlite.py`` (ports.py, "Nothing lost"), checked by the
same conformance suite (``opentse.testing.store_conformance``). How they are kept
when several processes on several machines sign for the same TSE:

* Per-TSE serialisation: ``run_locked`` opens a transaction and takes the TSE's
  row lock (``SELECT ... FROM tses WHERE tse_id = %s FOR UPDATE``). Writers of one
  TSE queue on that lock in any process; writers of different TSEs never meet.
  A process that dies (SIGKILL) closes its socket and PostgreSQL rolls its
  transaction back at once, releasing the lock.
* Group commit (``pg_group.py``): callers of one TSE in one process queue in
  memory; the first one leads and runs up to ``max_batch`` queued ``fn`` in ONE
  transaction (a savepoint each, so a failing ``fn`` loses only its own work),
  commits once, releases them all, and hands the lead to the next waiter. One
  row-lock round and one WAL flush serve many callers of a hot TSE; at most one
  connection per TSE per process waits on the row lock.
* Counters: ``append`` checks that logs follow the stored counter by +1 (TR-03151:
  one per signature); the schema's trigger checks it again and advances
  ``last_signature_counter``; the state must be saved with that counter.
* Durability: logs and state commit in ONE transaction with ``synchronous_commit
  = on`` before ``run_locked`` returns, so a signature never leaves the process
  before its log message is on disk. If the commit fails, fn's result is dropped.
* State cache: the parsed ``TSEState`` is kept per TSE with its version. The lock
  query returns the state text only when the stored version differs from the
  cached one; versions increase under the row lock, so (tse, version) names one
  committed state in the whole cluster. An entry is taken out while ``fn`` runs
  (it may mutate the object) and put back only after a successful commit.
* ``iter_logs`` streams through a server-side (named) cursor: bounded memory.
* Deadlines (``pg_deadline.py``): every statement and signing batch gets an answer
  in QUERY_DEADLINE seconds or its connection is dropped (StorageError
  E_STORAGE_UNAVAILABLE, a 503); a request waits REQUEST_WAIT for a connection.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar, cast

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from opentse.engine.ports import LockedTSE, LogFilter, StoredLog, TSERecord
from opentse.engine.state import TSEState
from opentse.errors import ConflictError, NotFoundError, ProtocolError, StorageError
from opentse.storage import migrations, nodes
from opentse.storage.pg_deadline import (
    LONG_DEADLINE,
    QUERY_DEADLINE,
    REQUEST_WAIT,
    WATCHDOG,
    check_connection,
    connection_kwargs,
    no_answer,
)
from opentse.storage.pg_group import GroupQueue, Request
from opentse.storage.pg_locked import LockedView, StagedLogs, TxState
from opentse.storage.rows import (
    LOG_COLUMNS,
    RECORD_COLUMNS,
    filter_sql,
    log_from_row,
    record_from_row,
    record_params,
    state_from_json,
    state_to_json,
)

T = TypeVar("T")

_FETCH = 256  # rows per round trip of the server-side cursor in iter_logs
_CACHE_SIZE = 4096  # TSEState objects kept per process
_DEFAULT_POOL_MAX = 10
POOL_MAX_SETTING = "OPENTSE_PG_POOL_MAX"
_POOL_MAX_RANGE = (2, 1000)  # a reader (iter_logs) beside a writer needs two
PING_TIMEOUT = 3.0  # seconds ``ping`` waits for a connection (a request: REQUEST_WAIT)
_MIGRATION_LOCK = 151_03151  # first key of pg_advisory_lock(int, int); second: schema

_INSERT_TSE = (
    f"INSERT INTO tses ({RECORD_COLUMNS}, state, version, last_signature_counter)"
    f" VALUES ({', '.join(['%s'] * 14)})"
)
# The lock query: the state text only when the caller's cached version is stale.
_LOCK_TSE = (
    "BEGIN; SELECT version, last_signature_counter,"
    " CASE WHEN version = {cached} THEN NULL ELSE state END"
    " FROM tses WHERE tse_id = {tse_id} FOR UPDATE"
)

# which of a batch's refs are stored or deleted (rows.refs_present_sql with arrays)
_REFS_PRESENT = (
    "SELECT ref FROM logs WHERE tse_id = %s AND ref = ANY(%s)"
    " UNION ALL SELECT ref FROM deleted_refs WHERE tse_id = %s AND ref = ANY(%s)"
)

_SECRET_CHECK_LABEL = b"opentse/installation-check/v1"

_cursor_names = itertools.count(1)


def pool_max_setting() -> int:
    """``OPENTSE_PG_POOL_MAX``, or the default when unset or empty. A value that is not
    a whole number in _POOL_MAX_RANGE stops the command or node with one line
    (ProtocolError E_DATABASE_SETTING) instead of a traceback (``ten``) or a pool of
    another size than set (``0`` gave 2)."""
    raw = os.environ.get(POOL_MAX_SETTING, "").strip()
    if not raw:
        return _DEFAULT_POOL_MAX
    low, high = _POOL_MAX_RANGE
    if not (raw.isascii() and raw.isdigit() and low <= int(raw) <= high):
        raise ProtocolError(
            f"{POOL_MAX_SETTING}={raw!r} is not a number of connections from {low} to "
            f"{high} (default {_DEFAULT_POOL_MAX}, see docs/scaling.md)",
            code="E_DATABASE_SETTING",
        )
    return int(raw)


def installation_checks(secret: bytes, ca_certificates: Sequence[bytes]) -> tuple[str, str]:
    """What ``installation_check`` records of an installation (migration 0900): an
    HMAC of the secret (revealing nothing) and a hash of the CA certificates."""
    secret_check = hmac.new(secret, _SECRET_CHECK_LABEL, hashlib.sha256).hexdigest()
    return secret_check, hashlib.sha256(b"".join(ca_certificates)).hexdigest()


def is_postgres_url(url: str | None) -> bool:
    return url is not None and url.startswith(("postgresql://", "postgres://"))


def _not_found(tse_id: str) -> NotFoundError:
    return NotFoundError(f"TSE {tse_id!r} does not exist", code="E_TSE_NOT_FOUND")


def _storage_error(doing: str, exc: BaseException, no_answer_in: float = 0.0) -> StorageError:
    """A StorageError naming what failed; never the URL (it may carry a password).
    ``no_answer_in``: the deadline that dropped the connection (pg_deadline)."""
    if no_answer_in:
        return StorageError(
            f"PostgreSQL failed while {doing}: {no_answer(no_answer_in)}",
            code="E_STORAGE_UNAVAILABLE",
        )
    if isinstance(exc, PoolTimeout | pg_errors.LockNotAvailable | pg_errors.QueryCanceled):
        code = "E_STORAGE_BUSY"
    elif isinstance(exc, pg_errors.DiskFull):  # 53100: the database server's disk
        code = "E_STORAGE_FULL"
    elif isinstance(exc, psycopg.OperationalError):
        code = "E_STORAGE_UNAVAILABLE"
    else:
        code = "E_STORAGE"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StorageError(f"PostgreSQL failed while {doing}: {text}", code=code)


def migrate(url: str, *, connect_timeout: int = 10, force: bool = False) -> list[int]:
    """Apply the numbered PostgreSQL migrations not yet applied; return their versions.

    Concurrent migrators (several nodes starting at once) are serialised by an
    advisory lock per schema: ``CREATE TABLE IF NOT EXISTS`` alone races in
    PostgreSQL. A database with migrations this code does not know is refused
    (E_SCHEMA_NEWER), and so are migrations while nodes of an older opentse are alive
    (E_MIGRATE_OLD_NODES, unless ``force``; storage/nodes.py).
    """
    try:
        conn = psycopg.connect(
            url,
            **connection_kwargs(
                url, lock_timeout=False, autocommit=True, connect_timeout=connect_timeout
            ),
        )
    except psycopg.Error as exc:
        raise _storage_error("connecting", exc) from exc
    try:
        conn.execute(
            "SELECT pg_advisory_lock(%s, hashtext(coalesce(current_schema(), '')))",
            (_MIGRATION_LOCK,),
        )
        known = {m.version for m in migrations.load("postgresql")}
        row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        applied = migrations.applied_versions(conn) if row and row[0] else set()
        nodes.refuse_if_schema_newer(applied, known)
        if not force:
            nodes.refuse_if_older_nodes(conn, sorted(known - applied))
        return migrations.apply(conn, "postgresql")
    except psycopg.Error as exc:
        raise _storage_error("migrating", exc) from exc
    finally:
        conn.close()  # ends the session and with it the advisory lock


class PostgresStore:
    """``engine.ports.TSEStore`` on PostgreSQL (see the module docstring).

    ``url`` is a libpq URI (``postgresql://user@host:5432/db?options=...``);
    ``pool_max`` defaults to ``OPENTSE_PG_POOL_MAX`` or 10 connections per process;
    ``max_batch=1`` turns group commit off.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_min: int = 1,
        pool_max: int | None = None,
        timeout: float = 30.0,
        apply_migrations: bool = True,
        max_batch: int = 64,
    ) -> None:
        if not is_postgres_url(url):
            raise StorageError("PostgresStore needs a postgresql:// URL", code="E_DATABASE_URL")
        self.url = url
        if pool_max is None:
            pool_max = pool_max_setting()
        if apply_migrations:
            migrate(url, connect_timeout=max(1, int(timeout)))
        self._pool = ConnectionPool(
            url,
            min_size=max(1, min(pool_min, pool_max)),
            max_size=max(2, pool_max),  # iter_logs plus a writer need two
            kwargs=connection_kwargs(url, autocommit=True),
            configure=_configure,
            check=check_connection,  # after a server restart: reconnect
            timeout=min(timeout, REQUEST_WAIT),  # a request's wait for a connection
            open=False,
            name="opentse",
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except psycopg.Error as exc:
            self._pool.close()
            raise _storage_error("connecting", exc) from exc
        WATCHDOG.attach()
        self._closed = False
        self._queue = GroupQueue(self._run_batch, max_batch)
        self._local = threading.local()
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[int, TSEState]] = OrderedDict()
        self._stats_lock = threading.Lock()
        self._stats = {"requests": 0, "commits": 0, "state_parsed": 0}
        # seconds a signing batch may take (pg_deadline; a deletion adds its own
        # share, pg_deadline.deletion_seconds); tests set less to see a cut quickly
        self.batch_deadline = QUERY_DEADLINE

    def __repr__(self) -> str:  # the URL may hold a password
        return "PostgresStore(...)"

    # -- connections -------------------------------------------------------------

    @contextmanager
    def _connection(
        self, doing: str, deadline: float = QUERY_DEADLINE
    ) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection whose use must end within ``deadline`` seconds (0:
        the caller watches each statement itself)."""
        if self._closed:
            raise StorageError("the store is closed", code="E_STORE_CLOSED")
        watch = None
        try:
            with self._pool.connection() as conn:
                if not deadline:
                    yield conn
                    return
                with WATCHDOG.watch(conn, deadline) as watch:
                    yield conn
        except psycopg.Error as exc:
            cut = watch.seconds if watch is not None and watch.expired else 0.0
            raise _storage_error(doing, exc, cut) from exc

    def ping(self, tse_id: str, timeout: float = PING_TIMEOUT) -> None:
        """One indexed read of ``tse_id``'s first log, waiting at most ``timeout``
        seconds for a connection: ``GET /health`` must say 503 while the database is
        away in time for a load balancer's check; the read itself gets as long.
        StorageError if it fails."""
        if self._closed:
            raise StorageError("the store is closed", code="E_STORE_CLOSED")
        watch = None
        try:
            with (
                self._pool.connection(timeout=timeout) as conn,
                WATCHDOG.watch(conn, max(timeout, 1.0)) as watch,
            ):
                conn.execute(
                    "SELECT 1 FROM logs WHERE tse_id = %s AND signature_counter = 0", (tse_id,)
                ).fetchone()
        except psycopg.Error as exc:
            cut = watch.seconds if watch is not None and watch.expired else 0.0
            raise _storage_error("checking the connection", exc, cut) from exc

    def _one(self, doing: str, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        with self._connection(doing) as conn:
            return conn.execute(sql, params).fetchone()

    # -- the state cache ---------------------------------------------------------

    def _cached_version(self, tse_id: str) -> int:
        with self._cache_lock:
            entry = self._cache.get(tse_id)
        return -1 if entry is None else entry[0]

    def _take(self, tse_id: str, version: int) -> TSEState | None:
        """Remove and return the cached state of ``version`` (fn may mutate it)."""
        with self._cache_lock:
            entry = self._cache.pop(tse_id, None)
        if entry is None or entry[0] != version:
            return None
        return entry[1]

    def _remember(self, tse_id: str, version: int, state: TSEState) -> None:
        """Cache a committed state; a newer entry already there wins."""
        with self._cache_lock:
            entry = self._cache.get(tse_id)
            if entry is not None and entry[0] > version:
                return
            self._cache[tse_id] = (version, state)
            self._cache.move_to_end(tse_id)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)

    def _forget(self, tse_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(tse_id, None)

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self._stats[name] += 1

    # -- TSEStore: writes --------------------------------------------------------

    def create_tse(self, record: TSERecord, state: TSEState) -> None:
        if state.tse_id != record.tse_id:
            raise StorageError("state.tse_id differs from record.tse_id", code="E_TSE_MISMATCH")
        params = (*record_params(record), state_to_json(state), state.version)
        params += (state.signature_counter,)
        self._forget(record.tse_id)
        try:
            with self._connection("creating a TSE") as conn:
                conn.execute(_INSERT_TSE, params)
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, pg_errors.UniqueViolation):
                constraint = cause.diag.constraint_name or ""
                what = "serial number" if "serial" in constraint else "id"
                raise ConflictError(
                    f"a TSE with this {what} exists ({record.tse_id!r})", code="E_TSE_CONFLICT"
                ) from None
            raise

    def run_locked(self, tse_id: str, fn: Callable[[LockedTSE], T], *, ref: str | None = None) -> T:
        if getattr(self._local, "busy", False):
            raise StorageError(
                "run_locked/create_tse called from inside run_locked", code="E_STORE_REENTRANT"
            )
        self._local.busy = True
        try:
            self._count("requests")
            return cast(T, self._queue.submit(tse_id, fn, ref))
        finally:
            self._local.busy = False

    def _run_batch(self, tse_id: str, batch: list[Request]) -> None:
        """Run the requests' fn in ONE transaction on the row-locked TSE; results
        count only after the COMMIT. A failing fn loses only its own work
        (pg_locked: its logs were only staged).

        Round trips: BEGIN + lock; the batch's refs looked up together (when
        several have one); the staged logs in one INSERT; the last saved state's
        UPDATE + COMMIT in one message. An fn's own queries come on top (a ref
        lookup the batch's could not answer, a state not sent with the lock).
        """
        grouped = len(batch) > 1
        try:
            with self._connection("running a TSE operation", self.batch_deadline) as conn:
                try:
                    tx = self._begin_locked(conn, tse_id)
                    absent = self._absent_refs(conn, tse_id, batch)
                    staged = StagedLogs()
                    update: sql.Composed | None = None
                    for request in batch:
                        view = LockedView(self, conn, tse_id, tx, staged, absent)
                        try:
                            request.result = request.fn(view)
                            view.finish()
                        except BaseException as exc:
                            if not grouped:
                                raise
                            request.result, request.error = None, exc
                            tx = view.failed()
                        else:
                            update = view.pending_update() or update
                            tx = view.succeeded()
                        finally:
                            view.closed = True
                    staged.flush(conn)
                    final: sql.SQL | sql.Composed = sql.SQL("COMMIT")
                    if update is not None:
                        final = sql.SQL("; ").join([update, final])
                    conn.execute(final)  # synchronous_commit = on: durable when it returns
                except BaseException:
                    _rollback_quietly(conn)
                    raise
        except BaseException as exc:
            self._forget(tse_id)
            for request in batch:
                if request.error is None:
                    request.result, request.error = None, exc
            return
        self._count("commits")
        if tx.saved is not None:
            self._remember(tse_id, tx.saved.version, tx.saved)

    @staticmethod
    def _absent_refs(conn: psycopg.Connection[Any], tse_id: str, batch: list[Request]) -> set[str]:
        """The batch's refs that are neither stored nor deleted, in one query (only
        when at least two requests carry one: a lone one is looked up by its fn).
        Valid inside this transaction: the TSE's row lock keeps other writers out."""
        refs = list({r.ref for r in batch if r.ref is not None})
        if len(refs) < 2:
            return set()
        try:
            found = {row[0] for row in conn.execute(_REFS_PRESENT, (tse_id, refs, tse_id, refs))}
        except psycopg.Error as exc:
            raise _storage_error("reading refs", exc) from exc
        return {ref for ref in refs if ref not in found}

    def _begin_locked(self, conn: psycopg.Connection[Any], tse_id: str) -> TxState:
        """BEGIN and lock the TSE's row in one round trip (a simple-protocol query
        with quoted literals); the state text comes only if our cache is stale."""
        query = sql.SQL(_LOCK_TSE).format(
            cached=sql.Literal(self._cached_version(tse_id)), tse_id=sql.Literal(tse_id)
        )
        cursor = conn.execute(query)
        cursor.nextset()
        row = cursor.fetchone()
        if row is None:
            raise _not_found(tse_id)
        return TxState(int(row[0]), int(row[1]), row[2])

    # -- TSEStore: reads ---------------------------------------------------------

    def get_record(self, tse_id: str) -> TSERecord:
        row = self._one(
            "reading a TSE", f"SELECT {RECORD_COLUMNS} FROM tses WHERE tse_id = %s", (tse_id,)
        )
        if row is None:
            raise _not_found(tse_id)
        return record_from_row(row)

    def get_state(self, tse_id: str) -> TSEState:
        """A committed snapshot, parsed afresh (the caller may change it freely)."""
        row = self._one(
            "reading a TSE state", "SELECT state, version FROM tses WHERE tse_id = %s", (tse_id,)
        )
        if row is None:
            raise _not_found(tse_id)
        return state_from_json(row[0], int(row[1]))

    def list_tses(self, owner: str | None = None) -> list[TSERecord]:
        """Records ordered by (created_at, tse_id), optionally of one owner."""
        sql = f"SELECT {RECORD_COLUMNS} FROM tses"
        params: tuple[str, ...] = ()
        if owner is not None:
            sql += " WHERE owner = %s"
            params = (owner,)
        with self._connection("listing TSEs") as conn:
            rows = conn.execute(sql + " ORDER BY created_at, tse_id", params).fetchall()
        return [record_from_row(row) for row in rows]

    def _require_tse(self, tse_id: str) -> None:
        if self._one("reading a TSE", "SELECT 1 FROM tses WHERE tse_id = %s", (tse_id,)) is None:
            raise _not_found(tse_id)

    def iter_logs(self, tse_id: str, flt: LogFilter | None = None) -> Iterator[StoredLog]:
        """Logs in counter order from one snapshot, through a server-side cursor.

        Raises NotFoundError at once (not at the first ``next``) for an unknown TSE.
        The iterator holds one pooled connection until it is exhausted or closed.
        """
        self._require_tse(tse_id)
        where, params = filter_sql(flt, "%s")
        sql = f"SELECT {LOG_COLUMNS} FROM logs WHERE tse_id = %s{where} ORDER BY signature_counter"
        return self._stream(sql, [tse_id, *params])

    def _stream(self, sql: str, params: Sequence[Any]) -> Iterator[StoredLog]:
        """Every round trip within LONG_DEADLINE (renewed per fetch: the consumer
        may take its time between them)."""
        with self._connection("reading logs", deadline=0) as conn:
            watch = None
            try:
                with (
                    WATCHDOG.watch(conn, LONG_DEADLINE) as watch,
                    conn.transaction(),
                    conn.cursor(name=f"opentse_logs_{next(_cursor_names)}") as cursor,
                ):
                    cursor.itersize = _FETCH
                    cursor.execute(sql, params)
                    while rows := cursor.fetchmany(_FETCH):
                        for row in rows:
                            yield log_from_row(row)
                        watch.renew()
            except psycopg.Error as exc:
                cut = watch.seconds if watch is not None and watch.expired else 0.0
                raise _storage_error("reading logs", exc, cut) from exc

    def count_logs(self, tse_id: str, flt: LogFilter | None = None) -> int:
        self._require_tse(tse_id)
        where, params = filter_sql(flt, "%s")
        with self._connection("counting logs", LONG_DEADLINE) as conn:
            row = conn.execute(
                f"SELECT COUNT(*) FROM logs WHERE tse_id = %s{where}", [tse_id, *params]
            ).fetchone()
        assert row is not None
        return int(row[0])

    def get_log(self, tse_id: str, signature_counter: int) -> StoredLog | None:
        row = self._one(
            "reading a log",
            f"SELECT {LOG_COLUMNS} FROM logs WHERE tse_id = %s AND signature_counter = %s",
            (tse_id, signature_counter),
        )
        return None if row is None else log_from_row(row)

    def find_ref(self, tse_id: str, ref: str) -> StoredLog | None:
        row = self._one(
            "reading a log",
            f"SELECT {LOG_COLUMNS} FROM logs WHERE tse_id = %s AND ref = %s",
            (tse_id, ref),
        )
        return None if row is None else log_from_row(row)

    # -- one installation per database ------------------------------------------

    def check_installation(self, secret: bytes, ca_certificates: Sequence[bytes]) -> None:
        """Record (first node) or compare (every later node) the installation secret
        and CA this database belongs to; ProtocolError E_INSTALLATION_MISMATCH if this
        node's differ (see migration 0900). Reveals nothing about the secret."""
        secret_check, ca_check = installation_checks(secret, ca_certificates)
        with self._connection("checking the installation") as conn:
            conn.execute(
                "INSERT INTO installation_check (id, secret_check, ca_check, created_at)"
                " VALUES (1, %s, %s, extract(epoch from now())::bigint)"
                " ON CONFLICT (id) DO NOTHING",
                (secret_check, ca_check),
            )
            row = conn.execute(
                "SELECT secret_check, ca_check FROM installation_check WHERE id = 1"
            ).fetchone()
        assert row is not None
        if not hmac.compare_digest(str(row[0]), secret_check):
            raise ProtocolError(
                "this node's installation secret differs from the one this database was "
                "set up with: give every node the same installation.key (and ca.json)",
                code="E_INSTALLATION_MISMATCH",
            )
        if row[1] != ca_check:
            raise ProtocolError(
                "this node's local CA (ca.json) differs from the one this database was "
                "set up with: give every node the same ca.json",
                code="E_INSTALLATION_MISMATCH",
            )

    # -- lifecycle ---------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """run_locked calls, commits, and how often a state had to be parsed."""
        with self._stats_lock:
            return dict(self._stats)

    def close(self) -> None:
        """Close every pooled connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pool.close()
        WATCHDOG.detach()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rollback_quietly(conn: psycopg.Connection[Any]) -> None:
    """End a failed transaction; the error that got us here is the one to report."""
    if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        with suppress(psycopg.Error):
            conn.execute("ROLLBACK")


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Per pooled connection: a COMMIT returns only once it is durable."""
    with WATCHDOG.watch(conn, QUERY_DEADLINE):
        conn.execute("SET synchronous_commit = on")
