"""Group commit for SQLite: one thread owns the write connection.

Callers queue an ``op`` and wait. The writer takes every queued request, runs them
one after another inside ONE ``BEGIN IMMEDIATE`` .. ``COMMIT`` with a SAVEPOINT each
(a failing op loses only its own effects and gets its own exception), commits once
and only then releases the waiters: one fsync serves many callers, and no caller
hears "done" before its data is durable (ports.py, "Nothing lost").
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from queue import Empty, SimpleQueue
from typing import Any

from opentse.errors import StorageError

Op = Callable[[sqlite3.Connection], object]
Retry = Callable[[Callable[[], Any]], Any]

GATHER_SECONDS = 0.0005  # see GroupCommitWriter._collect


def is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def storage_error(doing: str, exc: BaseException) -> StorageError:
    code = "E_STORAGE_BUSY" if is_busy(exc) else "E_STORAGE"
    return StorageError(f"SQLite failed while {doing}: {exc}", code=code)


def rollback_quietly(conn: sqlite3.Connection) -> None:
    """End a failed transaction; the error that got us here is the one to report."""
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


class _Request:
    """One queued write: ``op`` runs on the writer connection inside a savepoint.

    The caller waits on a plain lock that the writer releases once: cheaper than a
    ``threading.Event`` (its Condition cost more than the INSERT per request).
    """

    __slots__ = ("_waiting", "error", "finished", "lazy", "op", "result", "savepoint")

    def __init__(self, op: Op, lazy: bool = False) -> None:
        self.op = op
        self.lazy = lazy  # its SAVEPOINT is opened by ensure_savepoint, if at all
        self.savepoint = False
        self.result: object = None
        self.error: BaseException | None = None
        self.finished = False
        self._waiting = threading.Lock()
        self._waiting.acquire()

    def finish(self) -> None:
        """Release the caller (writer thread; once, later calls do nothing)."""
        if not self.finished:
            self.finished = True
            self._waiting.release()

    def wait(self) -> None:
        self._waiting.acquire()


class GroupCommitWriter:
    """Runs ops on ``conn`` in batched transactions on its own thread.

    ``before_commit`` writes what the ops deferred to the end of the transaction
    (one state row per TSE); if it fails, the whole batch fails like a failed
    COMMIT. ``on_rollback`` is called (on the writer thread) whenever
    committed-looking work is thrown away, so caches built during the batch can be
    dropped.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        retry: Retry,
        on_rollback: Callable[[], None],
        before_commit: Callable[[sqlite3.Connection], None] = lambda conn: None,
        max_batch: int = 256,
    ) -> None:
        self._conn = conn
        self._retry = retry
        self._on_rollback = on_rollback
        self._before_commit = before_commit
        self._max_batch = max_batch
        self._queue: SimpleQueue[_Request | None] = SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._current: _Request | None = None
        self.stats = {"requests": 0, "commits": 0}
        self._thread = threading.Thread(
            target=self._loop, name="opentse-sqlite-writer", daemon=True
        )
        self._thread.start()

    def in_writer_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, op: Op, *, lazy_savepoint: bool = False) -> object:
        """Run ``op`` in the next batch; return its result after the COMMIT.

        Each op runs inside its own SAVEPOINT, so a failing op loses only its own
        changes. With ``lazy_savepoint`` the op promises to call ``ensure_savepoint``
        before its first change to the database; one that only reads (or changes
        nothing, the usual ``run_locked`` with deferred logs) then costs no
        SAVEPOINT/RELEASE pair (two statements, about a fifth of a request)."""
        if self.in_writer_thread():
            raise StorageError(
                "run_locked/create_tse called from inside run_locked", code="E_STORE_REENTRANT"
            )
        request = _Request(op, lazy_savepoint)
        with self._lock:
            if self._closed:
                raise StorageError("the store is closed", code="E_STORE_CLOSED")
            self._queue.put(request)
        request.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def ensure_savepoint(self) -> None:
        """Open the running lazy request's SAVEPOINT now (writer thread, inside an op)."""
        request = self._current
        if request is not None and not request.savepoint:
            self._conn.execute("SAVEPOINT request")
            request.savepoint = True

    def close(self) -> None:
        """Finish the queued requests, then stop the thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        if not self.in_writer_thread():
            self._thread.join()

    def _loop(self) -> None:
        expected = 0  # callers of the last shared commit: they will be back soon
        while True:
            batch, stop = self._collect(expected)
            if batch:
                try:
                    self._run_batch(batch)
                except BaseException as exc:  # a bug here must not leave callers waiting
                    self._on_rollback()
                    rollback_quietly(self._conn)
                    for request in batch:
                        if not request.finished:
                            request.error = StorageError(f"store writer failed: {exc!r}")
                            request.finish()
            if stop:
                return
            expected = len(batch) if len(batch) > 1 else 0

    def _collect(self, expected: int) -> tuple[list[_Request], bool]:
        """The next batch (and whether ``close`` was queued): block for a first
        request, take every queued one, then wait up to ``GATHER_SECONDS`` while
        fewer than ``expected`` have come.

        Without the wait the writer starts the next transaction with whoever queued
        during the fsync, and concurrent callers split into two alternating halves
        (half the calls per fsync). A lone caller never waits (``expected`` is 0
        after a batch of one). The wait blocks in ``SimpleQueue.get``: no polling,
        so the callers it waits for get the GIL.
        """
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        deadline = 0.0
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except Empty:
                if len(batch) >= expected:
                    break
                now = time.monotonic()
                if not deadline:
                    deadline = now + GATHER_SECONDS
                elif now >= deadline:
                    break
                try:
                    item = self._queue.get(timeout=deadline - now)
                except Empty:
                    break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _run_batch(self, batch: list[_Request]) -> None:
        """Run ``batch`` in one transaction; release every waiter after COMMIT."""
        conn = self._conn
        try:
            self._retry(lambda: conn.execute("BEGIN IMMEDIATE"))
        except sqlite3.Error as exc:
            for request in batch:
                request.error = storage_error("locking the database", exc)
                request.finish()
            return
        succeeded: list[_Request] = []
        for index, request in enumerate(batch):
            self.stats["requests"] += 1
            if not request.lazy:
                conn.execute("SAVEPOINT request")
                request.savepoint = True
            self._current = request
            try:
                request.result = request.op(conn)
            except BaseException as exc:
                request.error = (
                    storage_error("writing", exc) if isinstance(exc, sqlite3.Error) else exc
                )
                if not conn.in_transaction:
                    # SQLite rolled the whole transaction back (disk full, I/O error):
                    # the requests before this one are lost; the rest get a new one.
                    self._on_rollback()
                    for earlier in succeeded:
                        earlier.result = None
                        earlier.error = storage_error("writing", exc)
                    request.finish()
                    for earlier in succeeded:
                        earlier.finish()
                    if index + 1 < len(batch):
                        self._run_batch(batch[index + 1 :])
                    return
                if request.savepoint:
                    conn.execute("ROLLBACK TO request")
                    conn.execute("RELEASE request")
            else:
                if request.savepoint:
                    conn.execute("RELEASE request")
                succeeded.append(request)
            finally:
                self._current = None
        try:
            self._before_commit(conn)
            conn.execute("COMMIT")
            self.stats["commits"] += 1
        except (sqlite3.Error, StorageError) as exc:
            self._on_rollback()
            rollback_quietly(conn)
            for request in succeeded:
                request.result = None
                request.error = (
                    storage_error("committing", exc) if isinstance(exc, sqlite3.Error) else exc
                )
        for request in batch:
            request.finish()
