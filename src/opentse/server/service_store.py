"""The service's own tables (migration 0002_service.sql) in the engine's SQLite file.

Organizations and API keys, TSS ownership and metadata, the client UUID <-> serial
number mapping, the transaction index (UUID -> number, revision, state) and exports.
The transaction index is a cache of what the signed logs already say: the log of each
revision carries ``ref = "tx:<uuid>:<rev>"`` and the data to rebuild the response, so
a crash between the engine's commit and the index update loses nothing.

One connection per thread (sqlite3 objects are not shared across threads); WAL mode
so readers never block the engine's writers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentse.errors import ConflictError
from opentse.storage.sqlite_requests import is_full

log = logging.getLogger("opentse.server.store")

# the index writer's pause after a failed write, doubled per failure up to the max
RETRY_SECONDS = 0.1
RETRY_MAX_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ApiKey:
    api_key: str
    secret_hash: str
    organization_id: str
    env: str
    disabled: bool


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What ``opentse apikey list`` shows of a key: never its secret nor its hash."""

    api_key: str
    organization_id: str
    organization: str
    env: str
    created_at: int
    disabled: bool


@dataclass(frozen=True, slots=True)
class TssRow:
    tss_id: str
    organization_id: str
    env: str
    metadata: dict[str, str]
    puk_sealed: bytes | None
    created_at: int


@dataclass(frozen=True, slots=True)
class ClientRow:
    client_id: str
    tss_id: str
    organization_id: str
    serial_number: str
    state: str
    metadata: dict[str, str]
    time_creation: int
    time_update: int


@dataclass(frozen=True, slots=True)
class TxRow:
    tss_id: str
    tx_id: str
    organization_id: str
    number: int
    client_id: str
    latest_revision: int
    state: str
    process_type: str
    time_start: int
    time_end: int | None
    metadata: dict[str, str]
    # gross total of a FINISHED Kassenbeleg-V1 in cents (migration 0007), else None
    amount_cents: int | None = None


@dataclass(frozen=True, slots=True)
class ExportRow:
    export_id: str
    tss_id: str
    organization_id: str
    state: str
    params: dict[str, Any]
    exception: str | None
    time_request: int
    time_start: int | None
    time_end: int | None
    time_error: int | None
    file_path: str | None
    metadata: dict[str, str]
    lease_owner: str | None = None  # the node working on it, or that last did


@dataclass(frozen=True, slots=True)
class Page:
    """limit/offset/order_by/order of a list request (already validated)."""

    limit: int = 100
    offset: int = 0
    order_by: str | None = None
    order: str = "asc"


def _meta(text: str) -> dict[str, str]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


class _Where:
    """The WHERE of a list query over one organization's rows: its conditions and
    their parameters, in order."""

    def __init__(self, org_id: str) -> None:
        self.terms = ["organization_id=?"]
        self.args: list[Any] = [org_id]

    def add(self, term: str, *args: Any) -> None:
        self.terms.append(term)
        self.args.extend(args)

    def equal(self, column: str, value: Any) -> None:
        """``column = value``, unless ``value`` is None (no filter)."""
        if value is not None:
            self.add(f"{column}=?", value)

    def among(self, column: str, values: Sequence[Any]) -> None:
        """``column`` is one of ``values`` (none of an empty sequence)."""
        if values:
            self.add(f"{column} IN ({','.join('?' * len(values))})", *values)
        else:
            self.add("0=1")


def tx_ref(tx_id: str, revision: int) -> str:
    """The engine ref of an API transaction's revision (``tx:<uuid>:<revision>``):
    what its log is found by, and what deleted_refs keeps of a deleted one."""
    return f"tx:{tx_id}:{revision}"


class ServiceStore:
    def __init__(self, db_path: Path) -> None:
        self._path = Path(db_path).absolute()  # each thread connects: not by the cwd
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._migrate()
        # transaction index rows not yet written: (tss_id, tx_id) -> row, and by number
        self._pending: dict[tuple[str, str], TxRow] = {}
        self._pending_numbers: dict[tuple[str, int], TxRow] = {}
        self._queue: queue.SimpleQueue[TxRow | None] = queue.SimpleQueue()
        self._idle = threading.Condition(self._lock)
        self._retrying = False  # the writer's last write failed: it tries again
        self.gather_seconds = 0.05
        # requests between their engine call and their index row being queued: token ->
        # service time at begin; the writer's durable mark never passes the oldest
        self._inflight: dict[int, int] = {}
        self._inflight_seq = 0
        self._latest_begin: int | None = None
        self._owners: dict[str, TssRow] = {}  # tss_id -> row; owner and env are fixed
        self._signing_clients: dict[str, ClientRow] = {}  # REGISTERED rows (hot path)
        self._clients_changed = 0  # bumped by update_client: a read begun before is stale
        # one mark per service node (PostgreSQL: tables shared by several hosts); a
        # host without its own mark scans all logs once
        self.node_id = socket.gethostname() or "local"
        self._close_wait = 30.0  # seconds close() waits for the index writer
        self._closing = threading.Event()  # ends the writer's pause between attempts
        self._writer = threading.Thread(
            target=self._write_loop, name="opentse-svc-index", daemon=True
        )
        self._writer.start()

    def _migrate(self) -> None:
        """Apply the schema (PostgreSQL twin: storage/pg_service.py overrides this)."""
        from opentse.storage import migrations

        migrations.apply(self._conn(), "sqlite")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _tx(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction; ``durable`` ones are synced to disk at commit (keys,
        organizations); index rows are not, they can be rebuilt from the logs."""
        conn = self._conn()
        if durable:
            conn.execute("PRAGMA synchronous=FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            if durable:
                conn.execute("PRAGMA synchronous=NORMAL")

    @staticmethod
    @contextmanager
    def _conflict(code: str, message: str, status: int = 409) -> Iterator[None]:
        """A unique-key race (two creates of one id at once) is a 4xx, not a crash."""
        try:
            yield
        except sqlite3.IntegrityError:
            raise ConflictError(message, code=code, http_status=status) from None

    @contextmanager
    def waiting(self, seconds: float) -> Iterator[None]:
        """Statements of this thread in the block wait at most ``seconds`` for the
        database (the PostgreSQL twin's pool; a SQLite file is always there)."""
        yield

    def stopping(self) -> None:
        """The node is stopping: waits for the database are cut short from now on
        (PostgreSQL twin), and ``close`` waits at most 2 s for the index writer's last
        rows (rebuilt from the logs if it had to leave them)."""
        self._close_wait = 2.0

    def close(self) -> None:
        self._closing.set()
        self._queue.put(None)
        self._writer.join(timeout=self._close_wait)
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.ProgrammingError):
                    conn.close()  # may belong to a thread that already ended
            self._all.clear()

    # organizations and API keys -------------------------------------------------
    def create_organization(self, org_id: str, name: str, env: str, now: int) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO svc_organizations(id, name, env, created_at) VALUES (?,?,?,?)",
                (org_id, name, env, now),
            )

    def find_organization(self, name: str, env: str) -> str | None:
        row = (
            self._conn()
            .execute("SELECT id FROM svc_organizations WHERE name=? AND env=?", (name, env))
            .fetchone()
        )
        return str(row[0]) if row else None

    def add_api_key(self, api_key: str, secret_hash: str, org_id: str, env: str, now: int) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO svc_api_keys(api_key, secret_hash, organization_id, env, created_at)"
                " VALUES (?,?,?,?,?)",
                (api_key, secret_hash, org_id, env, now),
            )

    def get_api_key(self, api_key: str) -> ApiKey | None:
        row = (
            self._conn()
            .execute(
                "SELECT api_key, secret_hash, organization_id, env, disabled"
                " FROM svc_api_keys WHERE api_key=?",
                (api_key,),
            )
            .fetchone()
        )
        return ApiKey(row[0], row[1], row[2], row[3], bool(row[4])) if row else None

    def list_api_keys(self, org_name: str | None = None) -> list[ApiKeyInfo]:
        """Every API key (of the organizations named ``org_name``), by organization
        and age."""
        sql = (
            "SELECT k.api_key, k.organization_id, o.name, k.env, k.created_at, k.disabled"
            " FROM svc_api_keys k JOIN svc_organizations o ON o.id = k.organization_id"
        )
        args: list[Any] = []
        if org_name is not None:
            sql += " WHERE o.name=?"
            args.append(org_name)
        rows = self._conn().execute(sql + " ORDER BY o.name, k.env, k.created_at, k.rowid", args)
        return [ApiKeyInfo(r[0], r[1], r[2], r[3], int(r[4]), bool(r[5])) for r in rows]

    def disable_api_key(self, api_key: str) -> bool:
        """Refuse the key's logins from now on (``TokenService`` also stops the tokens
        it issued); False when no such key exists. Disabling twice changes nothing."""
        with self._tx() as c:
            return (
                int(
                    c.execute(
                        "UPDATE svc_api_keys SET disabled=1 WHERE api_key=?", (api_key,)
                    ).rowcount
                )
                == 1
            )

    def count_api_keys(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM svc_api_keys").fetchone()[0])

    # TSS ---------------------------------------------------------------------------
    def add_tss(
        self,
        tss_id: str,
        org_id: str,
        env: str,
        metadata: dict[str, str],
        puk_sealed: bytes | None,
        now: int,
    ) -> None:
        with self._conflict("E_TSS_CONFLICT", "TSS exists"), self._tx() as c:
            c.execute(
                "INSERT INTO svc_tss(tss_id, organization_id, env, metadata, puk_sealed,"
                " created_at) VALUES (?,?,?,?,?,?)",
                (tss_id, org_id, env, json.dumps(metadata), puk_sealed, now),
            )

    def get_tss(self, tss_id: str) -> TssRow | None:
        row = (
            self._conn()
            .execute(
                "SELECT tss_id, organization_id, env, metadata, puk_sealed, created_at"
                " FROM svc_tss WHERE tss_id=?",
                (tss_id,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return TssRow(row[0], row[1], row[2], _meta(row[3]), row[4], row[5])

    def get_tss_owner(self, tss_id: str) -> TssRow | None:
        """``get_tss`` for the hot path, cached: only ``organization_id`` and ``env`` may
        be read from the result (they never change; metadata and PUK may be stale)."""
        row = self._owners.get(tss_id)
        if row is None:
            row = self.get_tss(tss_id)
            if row is not None:
                self._owners[tss_id] = row
        return row

    def list_tss_ids(self, org_id: str) -> list[str]:
        rows = self._conn().execute(
            "SELECT tss_id FROM svc_tss WHERE organization_id=? ORDER BY created_at, tss_id",
            (org_id,),
        )
        return [r[0] for r in rows]

    def set_tss_metadata(self, tss_id: str, metadata: dict[str, str]) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE svc_tss SET metadata=? WHERE tss_id=?", (json.dumps(metadata), tss_id)
            )

    def drop_puk(self, tss_id: str) -> None:
        with self._tx() as c:
            c.execute("UPDATE svc_tss SET puk_sealed=NULL WHERE tss_id=?", (tss_id,))

    # clients -----------------------------------------------------------------------
    _CLIENT_COLS = (
        "client_id, tss_id, organization_id, serial_number, state, metadata,"
        " time_creation, time_update"
    )

    def _client(self, row: Sequence[Any]) -> ClientRow:
        return ClientRow(row[0], row[1], row[2], row[3], row[4], _meta(row[5]), row[6], row[7])

    def add_client(self, row: ClientRow) -> None:
        with (
            self._conflict("E_CLIENT_CONFLICT", "client id or serial number exists"),
            self._tx() as c,
        ):
            c.execute(
                f"INSERT INTO svc_clients({self._CLIENT_COLS}) VALUES (?,?,?,?,?,?,?,?)",
                (
                    row.client_id,
                    row.tss_id,
                    row.organization_id,
                    row.serial_number,
                    row.state,
                    json.dumps(row.metadata),
                    row.time_creation,
                    row.time_update,
                ),
            )

    def get_client(self, client_id: str) -> ClientRow | None:
        row = (
            self._conn()
            .execute(f"SELECT {self._CLIENT_COLS} FROM svc_clients WHERE client_id=?", (client_id,))
            .fetchone()
        )
        return self._client(row) if row else None

    def get_client_for_signing(self, client_id: str) -> ClientRow | None:
        """``get_client`` for upsertTransaction, REGISTERED rows served from memory.

        Id, TSS and serial number of a client never change; its state does, through
        ``update_client`` (which drops the row here). A change made elsewhere (another
        node, the CLI) is still refused by the engine, whose TSE state knows every
        client's registration (E_CLIENT_DEREGISTERED, the same answer). Metadata of
        the returned row may be stale: only id, TSS, serial and state are read.
        """
        row = self._signing_clients.get(client_id)
        if row is not None:
            return row
        seen = self._clients_changed
        row = self.get_client(client_id)
        if row is not None and row.state == "REGISTERED":
            with self._lock:
                if seen == self._clients_changed:
                    if len(self._signing_clients) >= 65536:
                        self._signing_clients.clear()
                    self._signing_clients[client_id] = row
        return row

    def client_by_serial(self, tss_id: str, serial: str) -> ClientRow | None:
        row = (
            self._conn()
            .execute(
                f"SELECT {self._CLIENT_COLS} FROM svc_clients WHERE tss_id=? AND serial_number=?",
                (tss_id, serial),
            )
            .fetchone()
        )
        return self._client(row) if row else None

    def update_client(self, client_id: str, state: str, metadata: dict[str, str], now: int) -> None:
        self._forget_client(client_id)
        try:
            with self._tx() as c:
                c.execute(
                    "UPDATE svc_clients SET state=?, metadata=?, time_update=? WHERE client_id=?",
                    (state, json.dumps(metadata), now, client_id),
                )
        finally:  # again: a read that began during the write saw the old row
            self._forget_client(client_id)

    def _forget_client(self, client_id: str) -> None:
        with self._lock:
            self._clients_changed += 1
            self._signing_clients.pop(client_id, None)

    def list_clients(
        self,
        org_id: str,
        tss_id: str | None,
        page: Page,
        serial: str | None = None,
        state: str | None = None,
    ) -> tuple[list[ClientRow], int]:
        where = _Where(org_id)
        where.equal("tss_id", tss_id)
        where.equal("serial_number", serial)
        where.equal("state", state)
        order = {"serial_number": "serial_number", "time_creation": "time_creation"}.get(
            page.order_by or "", "time_creation"
        )
        return self._page(
            f"SELECT {self._CLIENT_COLS} FROM svc_clients", where, order, page, self._client
        )

    # transactions -----------------------------------------------------------------
    _TX_COLS = (
        "tss_id, tx_id, organization_id, number, client_id, latest_revision, state,"
        " process_type, time_start, time_end, metadata, amount_cents"
    )

    def _txrow(self, r: Sequence[Any]) -> TxRow:
        meta = _meta(r[10])
        return TxRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], meta, r[11])

    def get_tx(self, tss_id: str, tx_id: str) -> TxRow | None:
        with self._lock:
            pending = self._pending.get((tss_id, tx_id))
        if pending is not None:
            return pending
        row = (
            self._conn()
            .execute(
                f"SELECT {self._TX_COLS} FROM svc_transactions WHERE tss_id=? AND tx_id=?",
                (tss_id, tx_id),
            )
            .fetchone()
        )
        return self._txrow(row) if row else None

    def get_tx_by_number(self, tss_id: str, number: int) -> TxRow | None:
        with self._lock:
            pending = self._pending_numbers.get((tss_id, number))
        if pending is not None:
            return pending
        row = (
            self._conn()
            .execute(
                f"SELECT {self._TX_COLS} FROM svc_transactions WHERE tss_id=? AND number=?",
                (tss_id, number),
            )
            .fetchone()
        )
        return self._txrow(row) if row else None

    def upsert_tx(self, row: TxRow) -> None:
        """Record ``row`` in the index: visible to this process at once, written to the
        database by one background writer in batches (group commit). The index is a
        cache of the signed logs (their refs), so a row lost in a crash is rebuilt."""
        key = (row.tss_id, row.tx_id)
        with self._lock:
            old = self._pending.get(key)
            if old is None or row.latest_revision > old.latest_revision:
                self._pending[key] = row
                self._pending_numbers[(row.tss_id, row.number)] = row
        self._queue.put(row)

    def begin_signing(self, now: int) -> int:
        """A request is about to sign a transaction revision at service time ``now``;
        returns the token for :meth:`end_signing` (after its ``upsert_tx``)."""
        with self._lock:
            self._inflight_seq += 1
            self._inflight[self._inflight_seq] = now
            if self._latest_begin is None or now > self._latest_begin:
                self._latest_begin = now
            return self._inflight_seq

    def end_signing(self, token: int) -> None:
        with self._lock:
            self._inflight.pop(token, None)

    def _mark_now(self) -> int | None:
        """The durable mark a batch drained from here on may record: no request that
        began signing before it is still without a queued row (caller holds no lock)."""
        with self._lock:
            if self._inflight:
                return min(self._inflight.values())
            return self._latest_begin

    def index_mark(self) -> int | None:
        row = (
            self._conn()
            .execute("SELECT mark FROM svc_index_mark WHERE node=?", (self.node_id,))
            .fetchone()
        )
        return int(row[0]) if row else None

    def set_index_mark(self, mark: int) -> None:
        with self._tx(durable=False) as c:
            self._write_mark(c, mark)

    def _write_mark(self, c: Any, mark: int) -> None:
        c.execute(
            "INSERT INTO svc_index_mark(node, mark) VALUES (?,?)"
            " ON CONFLICT(node) DO UPDATE SET mark=excluded.mark",
            (self.node_id, mark),
        )

    def all_tss(self) -> list[tuple[str, str]]:
        """(tss_id, organization_id) of every TSS, for the startup index rebuild."""
        rows = self._conn().execute("SELECT tss_id, organization_id FROM svc_tss")
        return [(r[0], r[1]) for r in rows]

    def flush(self, *, strict: bool = False) -> None:
        """Wait (at most 30 s) until every index row handed to ``upsert_tx`` is in the
        database, or until the writer failed to write them (it tries again,
        ``_write_loop``): a list then answers what is written, not 30 s later (a
        deletion of millions of logs holds the writer off for minutes). ``strict``:
        wait for the rows also then (a write that must follow them, a durable mark)."""
        with self._idle:
            self._idle.wait_for(
                lambda: not self._pending or (self._retrying and not strict), timeout=30
            )

    def _write_loop(self) -> None:
        retry: list[TxRow] = []  # a batch whose write failed, to be written again
        failures = 0
        while True:
            if retry:
                # a pause before the next attempt; rows queued meanwhile join the batch
                pause = min(RETRY_MAX_SECONDS, RETRY_SECONDS * 2 ** min(failures, 16))
                if self._closing.wait(pause):
                    return  # close(): the startup rebuild writes them (mark not passed)
                batch, retry = retry, []
            else:
                first = self._queue.get()
                if first is None:
                    return
                # gather for a moment: few, larger write transactions keep the engine's
                # writer (same SQLite file, same write lock) from waiting on ours
                time.sleep(self.gather_seconds)
                batch = [first]
            # the mark is taken before draining: a request no longer in flight now has
            # queued its row already (end_signing follows upsert_tx), so it is drained
            mark = self._mark_now()
            stop = False
            while len(batch) < 4096:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            error = self._write_batch(batch, mark, quiet=failures % 60 != 0)
            if error is None:
                if failures:  # the end of the warnings the first failure started
                    log.warning("transaction index written again after %d attempts", failures + 1)
                failures = 0
            elif not stop and (isinstance(error, sqlite3.OperationalError) or failures < 3):
                # busy, locked, away or full: never dropped, still served from
                # _pending (get_tx, get_tx_by_number) until written; anything else is
                # tried 3 more times, then left to the startup rebuild as before
                failures += 1
                retry = batch
                with self._idle:
                    self._retrying = True
                    self._idle.notify_all()
                continue
            with self._idle:
                self._retrying = False
                for row in batch:
                    key = (row.tss_id, row.tx_id)
                    if self._pending.get(key) is row:
                        del self._pending[key]
                        self._pending_numbers.pop((row.tss_id, row.number), None)
                self._idle.notify_all()
            if stop:
                return

    def _write_batch(
        self, batch: list[TxRow], mark: int | None, *, quiet: bool = False
    ) -> sqlite3.Error | None:
        """One write transaction for ``batch`` (and the durable mark); the error when
        it failed (logged unless ``quiet``: the retries between every 60th, a line in
        about five minutes): the caller writes the batch again after a pause. A
        deleteStoredData of millions of logs holds its locks for minutes (the SQLite
        file's write lock, PostgreSQL's ROW EXCLUSIVE on deleted_refs); a batch
        dropped then was missing from the lists until a restart rebuilt the index."""
        # parameters built before the write lock is taken, one row per transaction
        # (its latest revision): the engine's writer waits on this lock
        latest: dict[tuple[str, str], TxRow] = {}
        for row in batch:
            key = (row.tss_id, row.tx_id)
            old = latest.get(key)
            if old is None or row.latest_revision > old.latest_revision:
                latest[key] = row
        params = [self._upsert_params(row) for row in latest.values()]
        try:
            with self._tx(durable=False) as c:
                if isinstance(c, sqlite3.Connection):
                    c.executemany(self._UPSERT_SQL, params)
                else:  # the PostgreSQL twin's connection runs one statement at a time
                    # log_deleted: a deleteStoredData in progress (it holds ROW
                    # EXCLUSIVE on deleted_refs from its first statement) ends
                    # first, so the probes below see its refs; one that starts
                    # meanwhile waits for this commit and then sees these rows.
                    # Without it a row it had just flagged was written back as 0
                    # (this statement's snapshot predated its commit). The wait is
                    # the session's lock_timeout; a longer deletion makes this
                    # attempt fail E_STORAGE_BUSY and the loop waits on (retries)
                    c.execute("LOCK TABLE deleted_refs IN SHARE MODE")
                    for one in params:
                        c.execute(self._UPSERT_SQL, one)
                if mark is not None and len(batch) < 4096:  # a full batch left rows
                    self._write_mark(c, mark)
        except sqlite3.Error as exc:
            if quiet:
                pass
            elif is_full(exc):  # the engine's 503s say so too: a line, no traceback
                log.warning(
                    "transaction index write failed, the data disk is full or cannot "
                    "be written: %s (written again shortly)",
                    exc,
                )
            elif isinstance(exc, sqlite3.OperationalError):  # busy, locked, away
                log.warning("transaction index write failed: %s (written again shortly)", exc)
            else:
                log.exception("transaction index write failed (written again shortly)")
            return exc
        return None

    # log_deleted (migration 0014): deleteStoredData flags the rows in the database
    # (storage/rows.delete_logs_sql); a row written after its revision's log was
    # deleted (queued here meanwhile) is flagged as it is written: one probe of
    # deleted_refs' primary key per row
    _UPSERT_SQL = (
        f"INSERT INTO svc_transactions({_TX_COLS}, log_deleted)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?, CASE WHEN EXISTS (SELECT 1 FROM deleted_refs"
        " WHERE tse_id=? AND ref=?) THEN 1 ELSE 0 END)"
        " ON CONFLICT(tss_id, tx_id) DO UPDATE SET"
        " latest_revision=excluded.latest_revision, state=excluded.state,"
        " client_id=excluded.client_id, process_type=excluded.process_type,"
        " time_end=excluded.time_end, metadata=excluded.metadata,"
        " amount_cents=excluded.amount_cents, log_deleted=excluded.log_deleted"
        " WHERE excluded.latest_revision > svc_transactions.latest_revision"
    )

    @staticmethod
    def _upsert_params(row: TxRow) -> tuple[Any, ...]:
        return (
            row.tss_id,
            row.tx_id,
            row.organization_id,
            row.number,
            row.client_id,
            row.latest_revision,
            row.state,
            row.process_type,
            row.time_start,
            row.time_end,
            json.dumps(row.metadata) if row.metadata else "{}",
            row.amount_cents,
            row.tss_id,
            tx_ref(row.tx_id, row.latest_revision),
        )

    def set_tx_metadata(self, tss_id: str, tx_id: str, metadata: dict[str, str]) -> None:
        self.flush(strict=True)  # the row must be written for the UPDATE to find it
        with self._tx() as c:
            c.execute(
                "UPDATE svc_transactions SET metadata=? WHERE tss_id=? AND tx_id=?",
                (json.dumps(metadata), tss_id, tx_id),
            )

    # What the API's lists show (fiskaly's Transaction requires its log and
    # signature): a transaction whose latest revision's log is stored, and an open one
    # whose log deleteStoredData dropped (log_deleted, migration 0014), which is still
    # open at the TSE and counted in the TSS's number_active_transactions: a register's
    # recovery lists its open transactions to abort them. A closed one whose log was
    # deleted is left out of the pages and their count alike. The term is the WHERE of
    # the partial index svc_transactions_listed, written as it is there, so SQLite
    # reads along it and counts from it without reading the rows.
    _LISTED = "(log_deleted = 0 OR state = 'ACTIVE')"

    def deleted_log_counter(self, tss_id: str, ref: str) -> int | None:
        """The signature counter of the log with ``ref`` that deleteStoredData dropped
        (deleted_refs, beside the logs in this database), None when none was."""
        row = (
            self._conn()
            .execute(
                "SELECT signature_counter FROM deleted_refs WHERE tse_id=? AND ref=?",
                (tss_id, ref),
            )
            .fetchone()
        )
        return None if row is None else int(row[0])

    def list_txs(
        self,
        org_id: str,
        page: Page,
        tss_id: str | None = None,
        client_id: str | None = None,
        states: Sequence[str] = (),
        *,
        client_ids: Sequence[str] | None = None,
        time_from: int | None = None,
        time_to: int | None = None,
        amount_cents: int | None = None,
        listed: bool = False,
    ) -> tuple[list[TxRow], int]:
        """A page of index rows. Keyword filters (the dashboard's search): any of
        ``client_ids`` (empty: none match), ``time_from <= time_start < time_to``, an
        exact ``amount_cents`` (indexed, migration 0007). ``listed``: only what the
        API's lists show (``_LISTED``)."""
        self.flush()
        where = _Where(org_id)
        if listed:
            where.add(self._LISTED)
        where.equal("tss_id", tss_id)
        where.equal("client_id", client_id)
        if client_ids is not None:
            where.among("client_id", client_ids)
        if states:
            where.among("state", states)
        if time_from is not None:
            where.add("time_start>=?", time_from)
        if time_to is not None:
            where.add("time_start<?", time_to)
        where.equal("amount_cents", amount_cents)
        order = {
            "number": "number",
            "state": "state",
            "time_start": "time_start",
            "time_end": "time_end",
        }.get(page.order_by or "", "time_start")
        return self._page(
            f"SELECT {self._TX_COLS} FROM svc_transactions", where, order, page, self._txrow
        )

    # exports ----------------------------------------------------------------------
    _EXP_COLS = (
        "export_id, tss_id, organization_id, state, params, exception, time_request,"
        " time_start, time_end, time_error, file_path, metadata"
    )
    _EXP_READ = _EXP_COLS + ", lease_owner"

    def _exp(self, r: Sequence[Any]) -> ExportRow:
        return ExportRow(
            r[0],
            r[1],
            r[2],
            r[3],
            json.loads(r[4]),
            r[5],
            r[6],
            r[7],
            r[8],
            r[9],
            r[10],
            _meta(r[11]),
            r[12],
        )

    def add_export(
        self,
        row: ExportRow,
        max_running: int,
        *,
        owner: str | None = None,
        lease_seconds: float = 0.0,
    ) -> bool:
        """Insert a PENDING export unless ``max_running`` are already running (atomic).

        ``owner``: the node that took the request reserves the export for itself (a
        lease of ``lease_seconds``), so other nodes leave it to that node's queue.
        """
        until = "NULL" if owner is None else f"{self._NOW_MS} + {int(lease_seconds * 1000)}"
        with self._conflict("E_DUPLICATE_EXPORT", "export exists", 400), self._tx() as c:
            running = c.execute(
                "SELECT count(*) FROM svc_exports"
                " WHERE tss_id=? AND state IN ('PENDING','WORKING')",
                (row.tss_id,),
            ).fetchone()[0]
            if running >= max_running:
                return False
            c.execute(
                f"INSERT INTO svc_exports({self._EXP_COLS}, lease_owner, lease_until)"
                f" VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?, {until})",
                (
                    row.export_id,
                    row.tss_id,
                    row.organization_id,
                    row.state,
                    json.dumps(row.params),
                    row.exception,
                    row.time_request,
                    row.time_start,
                    row.time_end,
                    row.time_error,
                    row.file_path,
                    json.dumps(row.metadata),
                    owner,
                ),
            )
        return True

    def get_export(self, export_id: str) -> ExportRow | None:
        row = (
            self._conn()
            .execute(f"SELECT {self._EXP_READ} FROM svc_exports WHERE export_id=?", (export_id,))
            .fetchone()
        )
        return self._exp(row) if row else None

    def update_export(
        self,
        export_id: str,
        *,
        only_from: Sequence[str] = (),
        owner: str | None = None,
        **fields: Any,
    ) -> bool:
        """Set columns; with ``only_from`` only while the state is one of those, with
        ``owner`` only while that node holds the export's lease (atomic)."""
        if "metadata" in fields:
            fields["metadata"] = json.dumps(fields["metadata"])
        sets = ", ".join(f"{k}=?" for k in fields)
        sql = f"UPDATE svc_exports SET {sets} WHERE export_id=?"
        args: list[Any] = [*fields.values(), export_id]
        if only_from:
            sql += f" AND state IN ({','.join('?' * len(only_from))})"
            args.extend(only_from)
        if owner is not None:
            sql += " AND lease_owner=?"
            args.append(owner)
        with self._tx() as c:
            return c.execute(sql, args).rowcount == 1

    def export_files(self, export_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """``(state, file_path)`` of each of ``export_ids`` that exists (the clean-up
        of export files asks for all the folder holds at once)."""
        found: dict[str, tuple[str, str | None]] = {}
        conn = self._conn()
        for start in range(0, len(export_ids), 500):
            chunk = list(export_ids[start : start + 500])
            rows = conn.execute(
                "SELECT export_id, state, file_path FROM svc_exports"
                f" WHERE export_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for r in rows:
                found[str(r[0])] = (str(r[1]), r[2])
        return found

    def running_exports(self) -> list[ExportRow]:
        rows = self._conn().execute(
            f"SELECT {self._EXP_READ} FROM svc_exports WHERE state IN ('PENDING','WORKING')"
            " ORDER BY time_request"
        )
        return [self._exp(r) for r in rows]

    # export leases (migration 0006): one node works on an export at a time ---------
    # the database's clock in unix milliseconds, so nodes' clocks need not agree
    # (PostgreSQL twin: pg_service.PgServiceStore overrides it)
    _NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

    def _lease_free(self) -> str:
        return f"(lease_owner IS NULL OR lease_until IS NULL OR lease_until < {self._NOW_MS})"

    def claim_export(
        self, export_id: str, owner: str, lease_seconds: float, now: int
    ) -> ExportRow | None:
        """Make ``owner`` the one node working on the export: PENDING or WORKING, and
        unclaimed, its lease expired (the node that held it died), or reserved by
        ``owner`` itself and still PENDING. One conditional UPDATE; of two nodes
        racing, the second's WHERE no longer matches (row lock), so exactly one wins.
        Returns the row now WORKING (``time_start`` = ``now``), or None."""
        with self._tx() as c:
            claimed = c.execute(
                f"UPDATE svc_exports SET state='WORKING', time_start=?, lease_owner=?,"
                f" lease_until={self._NOW_MS} + ?"
                f" WHERE export_id=? AND state IN ('PENDING','WORKING')"
                f" AND ({self._lease_free()} OR (lease_owner=? AND state='PENDING'))",
                (now, owner, int(lease_seconds * 1000), export_id, owner),
            ).rowcount
            if claimed != 1:
                return None
            row = c.execute(
                f"SELECT {self._EXP_READ} FROM svc_exports WHERE export_id=?", (export_id,)
            ).fetchone()
        return self._exp(row) if row else None

    def renew_export_leases(self, owner: str, lease_seconds: float) -> set[str]:
        """Extend every lease ``owner`` holds (one statement per heartbeat); returns
        the ids it still holds: an export missing here was cancelled or taken over."""
        running = "state IN ('PENDING','WORKING')"
        with self._tx(durable=False) as c:
            c.execute(
                f"UPDATE svc_exports SET lease_until={self._NOW_MS} + ?"
                f" WHERE lease_owner=? AND {running}",
                (int(lease_seconds * 1000), owner),
            )
            rows = c.execute(
                f"SELECT export_id FROM svc_exports WHERE lease_owner=? AND {running}", (owner,)
            ).fetchall()
        return {str(r[0]) for r in rows}

    def claimable_exports(self) -> list[str]:
        """PENDING or WORKING exports nobody holds a live lease on, oldest first."""
        rows = self._conn().execute(
            "SELECT export_id FROM svc_exports WHERE state IN ('PENDING','WORKING')"
            f" AND {self._lease_free()} ORDER BY time_request"
        )
        return [str(r[0]) for r in rows]

    def beat_node(self, node: str, pid: int, level: int, version: str, beat: float) -> None:
        """This server process is alive, of schema ``level`` (migration 0010,
        storage/nodes.py: a migration waits for older nodes); every ``beat`` seconds."""
        with self._tx(durable=False) as c:
            c.execute(
                "INSERT INTO svc_nodes(node, host, pid, schema_level, version, beat_ms,"
                f" started_ms, seen_ms) VALUES (?,?,?,?,?,?,{self._NOW_MS},{self._NOW_MS})"
                f" ON CONFLICT(node) DO UPDATE SET seen_ms={self._NOW_MS}",
                (node, self.node_id, pid, level, version, int(beat * 1000)),
            )

    def schema_versions(self) -> set[int]:
        """The migrations applied to this database (all nodes' code must know them)."""
        rows = self._conn().execute("SELECT version FROM schema_migrations").fetchall()
        return {int(r[0]) for r in rows}

    def forget_node(self, node: str) -> None:
        """A node stopping on purpose is gone at once (not after its heartbeats): its
        row stays, stopped (seen_ms 0; one such row per host), so the host's recent
        svc_index_mark is not taken for a node of before 0010 (storage/nodes.py)."""
        with self._tx(durable=False) as c:
            c.execute(
                "DELETE FROM svc_nodes WHERE host=? AND seen_ms=0 AND node<>?",
                (self.node_id, node),
            )
            c.execute("UPDATE svc_nodes SET seen_ms=0 WHERE node=?", (node,))

    def release_export_leases(self, owner: str) -> int:
        """A node stopping on purpose hands its unfinished exports back (PENDING,
        unclaimed), so another node need not wait for the leases to run out."""
        with self._tx() as c:
            return int(
                c.execute(
                    "UPDATE svc_exports SET state='PENDING', lease_owner=NULL, lease_until=NULL"
                    " WHERE lease_owner=? AND state IN ('PENDING','WORKING')",
                    (owner,),
                ).rowcount
            )

    def list_exports(
        self, org_id: str, page: Page, tss_id: str | None = None, states: Sequence[str] = ()
    ) -> tuple[list[ExportRow], int]:
        where = _Where(org_id)
        where.equal("tss_id", tss_id)
        if states:
            where.among("state", states)
        cols = ("state", "time_request", "time_start", "time_end", "time_error")
        order = page.order_by if page.order_by in cols else "time_request"
        return self._page(
            f"SELECT {self._EXP_READ} FROM svc_exports", where, order, page, self._exp
        )

    # helpers ------------------------------------------------------------------------
    def _page(
        self, select: str, where: _Where, order: str, page: Page, conv: Any
    ) -> tuple[list[Any], int]:
        clause = " WHERE " + " AND ".join(where.terms)
        args = where.args
        direction = "DESC" if page.order == "desc" else "ASC"
        conn = self._conn()
        total = conn.execute(f"SELECT count(*) FROM ({select}{clause})", args).fetchone()[0]
        rows = conn.execute(
            f"{select}{clause} ORDER BY {order} {direction}, rowid {direction} LIMIT ? OFFSET ?",
            [*args, page.limit, page.offset],
        ).fetchall()
        return [conv(r) for r in rows], int(total)
