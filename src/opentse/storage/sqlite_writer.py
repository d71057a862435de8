"""Group commit for SQLite, pipelined: a writer thread sequences, a committer commits.

Callers queue an ``op`` and wait. Two kinds of requests:

* **sequenced** (every ``run_locked``): the writer thread runs the op against
  memory (the store's running batch, sqlite_batch.py) and its read connection,
  without a database transaction, then hands the batch to the committer thread and
  goes on with the next requests. The committer writes every batch handed to it so
  far in ONE ``BEGIN IMMEDIATE`` .. ``COMMIT`` and only then releases their callers:
  one fsync serves many callers, the fsync overlaps the next batch's engine work,
  and no caller hears "done" before its data is durable (ports.py, "Nothing lost").
* **plain** (``create_tse``): waits until the committer has written everything
  handed before, then runs on the write connection inside a transaction, with a
  SAVEPOINT each (a failing op loses only its own effects).

A failed COMMIT fails its batches and every batch sequenced after them on top of
their state (the writer's *epoch* ends); the writer drops its caches and starts a
new epoch from the database. When the COMMIT failed because another process wrote
the same TSE since the writer read it (the counter trigger or the state's version
check refuses it), nothing of those requests was written or returned, so they are
sequenced again from the new state; for ``EXCLUSIVE_SECONDS`` after such a conflict
the writer sequences inside its own ``BEGIN IMMEDIATE`` (SQLite's write lock, as
without pipelining), so two processes on one file take turns instead of
overwriting each other's reads.

What a caller holds while it waits, and how an asyncio caller is woken, is in
``sqlite_requests.py``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import weakref
from _thread import LockType
from collections.abc import Callable
from dataclasses import dataclass
from queue import Empty, SimpleQueue
from typing import Any

from opentse.errors import OpenTSEError, StorageError
from opentse.storage.sqlite_requests import (
    LoopWaker,
    Op,
    Request,
    rollback_quietly,
    storage_error,
)

Retry = Callable[[Callable[[], Any]], Any]

MAX_RETRIES = 20
EXCLUSIVE_SECONDS = 2.0
# A COMMIT refused with one of these (or a request that found the file changed
# between two of its reads, E_STORAGE_MOVED) met another process's writes.
CONFLICT_CODES = frozenset(("E_COUNTER_GAP", "E_STORAGE_CONFLICT", "E_DUPLICATE_REF"))
MOVED = "E_STORAGE_MOVED"


class _Kick:
    """Put in the writer's queue by the committer when it has nothing to write."""


KICK = _Kick()


@dataclass(slots=True)
class _Handed:
    epoch: int
    batch: object  # the store's batch token
    requests: list[Request]


@dataclass(frozen=True, slots=True)
class BatchHooks:
    """What the writer needs from the store for sequenced requests.

    ``start(epoch)`` (writer thread) opens a new running batch; ``hand_over()``
    (writer) returns it for the committer, still visible to lookups; ``write(conn,
    batches)`` (committer, inside the transaction) writes them; ``done(batch)``
    (committer) after its COMMIT or rollback; ``reset()`` (writer) drops every cache
    after a failed commit.
    """

    start: Callable[[int], object]
    hand_over: Callable[[], object]
    write: Callable[[sqlite3.Connection, list[Any]], None]
    done: Callable[[object], None]
    reset: Callable[[], None]
    # (writer, read connection) before a bunch of sequenced requests runs: their
    # keys, to look up together; called with [] after the bunch (forget them)
    prefetch: Callable[[sqlite3.Connection, list[Any]], None] | None = None


class GroupCommitWriter:
    """The writer and committer threads around one write connection (module doc)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        read_conn: sqlite3.Connection,
        *,
        retry: Retry,
        hooks: BatchHooks,
        max_batch: int = 256,
    ) -> None:
        self._conn = conn
        self._read_conn = read_conn
        self._retry = retry
        self._hooks = hooks
        self._max_batch = max_batch
        self._queue: SimpleQueue[Request | _Kick | None] = SimpleQueue()
        self._handed: SimpleQueue[_Handed | LockType | None] = SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._epoch = 1
        self._failed_epoch = 0  # written by the committer, read by the writer
        self._doom: dict[int, BaseException | None] = {}  # failed epoch -> error (None: retry)
        self._exclusive_until = 0.0  # monotonic; set by the committer after a conflict
        self._open: list[Request] | None = None  # requests of the running, unhanded batch
        self._committer_idle = True  # the committer waits for work (it says so by a KICK)
        self.stats = {"requests": 0, "commits": 0}
        self._wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWaker] = (
            weakref.WeakKeyDictionary()
        )
        self._last_waker: LoopWaker | None = None
        self._committer = threading.Thread(
            target=self._commit_loop, name="opentse-sqlite-committer", daemon=True
        )
        self._thread = threading.Thread(
            target=self._loop, name="opentse-sqlite-writer", daemon=True
        )
        self._committer.start()
        self._thread.start()

    def in_writer_thread(self) -> bool:
        current = threading.current_thread()
        return current is self._thread or current is self._committer

    def submit(self, op: Op, *, sequenced: bool = False, key: object = None) -> object:
        """Run ``op``; return its result after the COMMIT that made it durable.

        A ``sequenced`` op runs on the writer's read connection outside any
        transaction and must keep every change in the store's running batch."""
        if self.in_writer_thread():
            raise StorageError(
                "run_locked/create_tse called from inside run_locked", code="E_STORE_REENTRANT"
            )
        request = Request(op, sequenced, key=key)
        self._enqueue(request)
        request.wait()
        if request.error is None:
            return request.result
        # neither the request nor this frame keeps the error: its traceback holds
        # both, and such a cycle waits for the cyclic GC
        error, request.error = request.error, None
        try:
            raise error
        finally:
            del error

    def submit_async(self, op: Op, *, key: object = None) -> asyncio.Future[Any]:
        """A sequenced ``op`` for a caller on the running event loop: the future
        resolves after the COMMIT that made it durable, with no thread waiting."""
        loop = asyncio.get_running_loop()
        waker = self._last_waker  # a server has one loop: skip the weak lookup
        if waker is None or waker.loop is not loop:
            waker = self._wakers.get(loop)
            if waker is None:
                waker = self._wakers.setdefault(loop, LoopWaker(loop))
            self._last_waker = waker
        future: asyncio.Future[Any] = loop.create_future()
        self._enqueue(Request(op, True, waker, future, key))
        return future

    def _enqueue(self, request: Request) -> None:
        with self._lock:
            if self._closed:
                raise StorageError("the store is closed", code="E_STORE_CLOSED")
            self._queue.put(request)

    def close(self) -> None:
        """Finish the queued requests, then stop both threads. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        if not self.in_writer_thread():
            self._thread.join()
            self._committer.join()

    # -- writer thread -----------------------------------------------------------

    def _loop(self) -> None:
        while True:
            batch, stop = self._collect()
            start = 0
            while start < len(batch):
                kind = batch[start].sequenced
                end = start
                while end < len(batch) and batch[end].sequenced == kind:
                    end += 1
                if not kind:
                    run = self._run_plain
                elif time.monotonic() < self._exclusive_until:
                    run = self._sequence_exclusive
                else:
                    run = self._sequence
                self._guarded(run, batch[start:end])
                start = end
            if self._open is not None and self._committer_idle:
                self._guarded(lambda _: self._hand(), [])
            if stop:
                self._drain()
                if self._requeued():
                    continue  # retries queued while draining: sequence them first
                self._handed.put(None)
                return

    def _guarded(self, run: Callable[[list[Request]], None], requests: list[Request]) -> None:
        try:
            run(requests)
        except BaseException as exc:  # a bug here must not leave callers waiting
            self._hooks.reset()
            rollback_quietly(self._conn)
            opened, self._open = self._open or [], None
            for request in [*requests, *opened]:
                if not request.finished:
                    request.error = StorageError(f"store writer failed: {exc!r}")
                    request.finish()

    def _requeued(self) -> bool:
        """After ``close``: whether retries were queued meanwhile (then they are
        queued again, followed by the None)."""
        retries = []
        while True:
            try:
                item = self._queue.get_nowait()
            except Empty:
                break
            if isinstance(item, Request):
                retries.append(item)
        for item in retries:
            self._queue.put(item)
        if retries:
            self._queue.put(None)
        return bool(retries)

    def _collect(self) -> tuple[list[Request], bool]:
        """Every queued request (blocking for the first one) and whether ``close``
        was queued. No waiting for more: while the committer writes one batch, the
        callers of the next one queue up by themselves."""
        batch: list[Request] = []
        item = self._queue.get()
        while True:
            if item is None:
                return batch, True
            if isinstance(item, Request):
                batch.append(item)
                if len(batch) >= self._max_batch:
                    break
            try:
                item = self._queue.get_nowait()
            except Empty:
                break
        return batch, False

    def _sequence(self, requests: list[Request]) -> None:
        """Run ``requests`` into the running batch; it is handed to the committer when
        the committer has nothing to do (so batches are as large as the disk lets
        them grow, and a lone caller is not kept waiting)."""
        self._after_failure()
        if self._open is None:
            self._hooks.start(self._epoch)
            self._open = []
        moved = self._run_prefetched(requests)
        if moved:  # another process writes: sequence them again, under the write lock
            self._exclusive_until = time.monotonic() + EXCLUSIVE_SECONDS
            requests = [r for r in requests if r not in moved]
            for request in moved:
                self._again(request, None)
        self._open.extend(requests)

    def _after_failure(self) -> None:
        """After a failed commit: the open batch goes to the committer (it belongs to
        the failed epoch, the committer ends it), the caches go, and a new epoch
        starts from the database."""
        if self._failed_epoch >= self._epoch:
            self._hand()
            self._hooks.reset()
            self._epoch = self._failed_epoch + 1

    def _run_prefetched(self, requests: list[Request]) -> list[Request]:
        """``_run_ops`` on the read connection, the requests' keys looked up first
        in one go (BatchHooks.prefetch), forgotten after."""
        prefetch = self._hooks.prefetch
        keys = [r.key for r in requests if r.key is not None]
        if prefetch is None or len(keys) < 2:
            return self._run_ops(requests, self._read_conn)
        try:
            prefetch(self._read_conn, keys)
        except sqlite3.Error:
            prefetch(self._read_conn, [])  # each request looks its key up alone
        try:
            return self._run_ops(requests, self._read_conn)
        finally:
            prefetch(self._read_conn, [])

    def _run_ops(self, requests: list[Request], conn: sqlite3.Connection) -> list[Request]:
        """Run each sequenced op on ``conn``, its error kept for its caller; returns
        the requests that found the file changed between two of their reads."""
        moved = []
        for request in requests:
            self.stats["requests"] += 1
            try:
                request.result = request.op(conn)
            except BaseException as exc:
                if isinstance(exc, OpenTSEError) and exc.code == MOVED:
                    moved.append(request)
                request.error = (
                    storage_error("reading", exc) if isinstance(exc, sqlite3.Error) else exc
                )
        return moved

    def _hand(self) -> None:
        """The running batch goes to the committer (if there is one)."""
        if self._open is not None:
            requests, self._open = self._open, None
            self._committer_idle = False
            self._handed.put(_Handed(self._epoch, self._hooks.hand_over(), requests))

    def _sequence_exclusive(self, requests: list[Request]) -> None:
        """Sequence and commit ``requests`` inside one write transaction of their own
        (another process writes the same file: its commits cannot come between)."""
        self._drain()
        self._after_failure()
        self._hooks.start(self._epoch)
        conn = self._conn
        try:
            self._retry(lambda: conn.execute("BEGIN IMMEDIATE"))
        except sqlite3.Error as exc:
            self._hooks.reset()
            for request in requests:
                request.error = storage_error("locking the database", exc)
                request.finish()
            return
        self._run_ops(requests, conn)  # nothing moves under the write lock
        batch = self._hooks.hand_over()
        try:
            self._hooks.write(conn, [batch])
            conn.execute("COMMIT")
            self.stats["commits"] += 1
        except Exception as exc:
            rollback_quietly(conn)
            self._hooks.reset()
            error = exc if isinstance(exc, OpenTSEError) else storage_error("committing", exc)
            for request in requests:
                if request.error is None:
                    request.result = None
                    request.error = error
        self._hooks.done(batch)
        for request in requests:
            request.finish()

    def _drain(self) -> None:
        """Until the committer has finished everything handed to it before."""
        self._hand()
        barrier = threading.Lock()
        barrier.acquire()
        self._handed.put(barrier)
        barrier.acquire()

    def _run_plain(self, requests: list[Request]) -> None:
        """Plain requests in one transaction of their own; release after COMMIT."""
        self._drain()
        conn = self._conn
        try:
            self._retry(lambda: conn.execute("BEGIN IMMEDIATE"))
        except sqlite3.Error as exc:
            for request in requests:
                request.error = storage_error("locking the database", exc)
                request.finish()
            return
        succeeded: list[Request] = []
        for index, request in enumerate(requests):
            self.stats["requests"] += 1
            conn.execute("SAVEPOINT request")
            try:
                request.result = request.op(conn)
            except BaseException as exc:
                request.error = (
                    storage_error("writing", exc) if isinstance(exc, sqlite3.Error) else exc
                )
                if not conn.in_transaction:
                    # SQLite rolled the whole transaction back (disk full, I/O error):
                    # the requests before this one are lost; the rest get a new one.
                    self._hooks.reset()
                    for earlier in succeeded:
                        earlier.result = None
                        earlier.error = storage_error("writing", exc)
                    request.finish()
                    for earlier in succeeded:
                        earlier.finish()
                    if index + 1 < len(requests):
                        self._run_plain(requests[index + 1 :])
                    return
                conn.execute("ROLLBACK TO request")
                conn.execute("RELEASE request")
            else:
                conn.execute("RELEASE request")
                succeeded.append(request)
        try:
            conn.execute("COMMIT")
            self.stats["commits"] += 1
        except sqlite3.Error as exc:
            self._hooks.reset()
            rollback_quietly(conn)
            for request in succeeded:
                request.result = None
                request.error = storage_error("committing", exc)
        for request in requests:
            request.finish()

    # -- committer thread ----------------------------------------------------------

    def _commit_loop(self) -> None:
        while True:
            try:
                first = self._handed.get_nowait()
            except Empty:  # nothing to write: ask the writer for its running batch
                self._committer_idle = True
                self._queue.put(KICK)
                first = self._handed.get()
            items = [first]
            while True:
                try:
                    items.append(self._handed.get_nowait())
                except Empty:
                    break
            handed: list[_Handed] = []
            for item in items:
                if isinstance(item, _Handed):
                    handed.append(item)
                    continue
                self._commit_guarded(handed)
                handed = []
                if item is None:
                    return
                item.release()  # a barrier: everything before it is written
            self._commit_guarded(handed)

    def _commit_guarded(self, handed: list[_Handed]) -> None:
        try:
            self._commit(handed)
        except BaseException as exc:  # a bug here must not leave callers waiting
            rollback_quietly(self._conn)
            self._failed_epoch = max([self._failed_epoch, *(h.epoch for h in handed)])
            for item in handed:
                self._doom[item.epoch] = StorageError(f"store committer failed: {exc!r}")
            for item in handed:
                self._hooks.done(item.batch)
                for request in item.requests:
                    if not request.finished:
                        request.result = None
                        request.error = StorageError(f"store committer failed: {exc!r}")
                        request.finish()

    def _commit(self, handed: list[_Handed]) -> None:
        """Write every live batch of ``handed`` in one transaction, then release."""
        live = [h for h in handed if h.epoch > self._failed_epoch]
        doomed = [h for h in handed if h.epoch <= self._failed_epoch]
        if any(r.error is None for h in live for r in h.requests):
            self._write(live)
            if live[0].epoch <= self._failed_epoch:  # this commit failed
                doomed, live = live + doomed, []
        for item in handed:
            self._hooks.done(item.batch)
        for item in live:
            for request in item.requests:
                request.finish()
        for item in doomed:  # last: a request queued again must not be failed here too
            self._end_doomed(item)

    def _end_doomed(self, item: _Handed) -> None:
        """A batch of a failed epoch: sequence it again after a conflict, else fail it
        with the epoch's error. Nothing of it was written."""
        error = self._doom.get(item.epoch)
        for request in item.requests:
            self._again(request, error)

    def _again(self, request: Request, error: BaseException | None) -> None:
        """Queue ``request`` to be sequenced again (``error`` None), or fail it."""
        request.result = None
        if error is None and request.retries < MAX_RETRIES:
            request.retries += 1
            request.error = None
            self._queue.put(request)
            return
        request.error = error or StorageError(
            "the TSE was changed by another process again and again; nothing was written",
            code="E_STORAGE_CONFLICT",
        )
        request.finish()

    def _write(self, live: list[_Handed]) -> None:
        conn = self._conn
        try:
            self._retry(lambda: conn.execute("BEGIN IMMEDIATE"))
            self._hooks.write(conn, [item.batch for item in live])
            conn.execute("COMMIT")
            self.stats["commits"] += 1
        except Exception as exc:
            rollback_quietly(conn)
            epoch = max(h.epoch for h in live)
            error = exc if isinstance(exc, OpenTSEError) else storage_error("committing", exc)
            conflict = isinstance(exc, OpenTSEError) and exc.code in CONFLICT_CODES
            if conflict:
                self._exclusive_until = time.monotonic() + EXCLUSIVE_SECONDS
            for item in live:
                self._doom[item.epoch] = None if conflict else error
            self._failed_epoch = epoch
