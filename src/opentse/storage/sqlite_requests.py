"""What callers of the SQLite group-commit writer hold while they wait.

A blocking caller's :class:`Request` is released through a plain lock; an asyncio
caller's through its loop's :class:`LoopWaker`, which hands a whole batch of
finished requests to the loop in one wake-up. Also the small SQLite error helpers
the writer, the batches and the store share.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from opentse.errors import StorageError

Op = Callable[[sqlite3.Connection], object]


def is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


# SQLite's result codes for a write the file system refused: SQLITE_FULL (ENOSPC),
# SQLITE_IOERR_WRITE (EFBIG past a file size limit, EDQUOT past a quota, or EIO) and
# SQLITE_IOERR_TRUNCATE / _FSYNC / _SHMSIZE that the same causes give elsewhere
FULL_CODES = frozenset(
    {
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR_WRITE,
        sqlite3.SQLITE_IOERR_TRUNCATE,
        sqlite3.SQLITE_IOERR_FSYNC,
        sqlite3.SQLITE_IOERR_SHMSIZE,
    }
)


def is_full(exc: BaseException) -> bool:
    """Did the data disk (or a quota, or a file size limit) refuse the write?"""
    return getattr(exc, "sqlite_errorcode", None) in FULL_CODES


def storage_error(doing: str, exc: BaseException) -> StorageError:
    if is_full(exc):
        # nothing of the failed transaction is kept; the next one may succeed once
        # space is back (no restart needed: SQLite rolled back in the same file)
        return StorageError(
            f"the data disk is full or cannot be written (a quota or file size limit, "
            f"or a disk error): SQLite failed while {doing}: {exc}; nothing was signed, "
            "retry once space is freed",
            code="E_STORAGE_FULL",
        )
    if is_read_only(exc):
        return StorageError(
            f"SQLite failed while {doing}: {exc}: the database or its folder cannot be "
            "written (the folder's owner or mode, or a read-only mount); opentse writes "
            "its database and the database's -wal and -shm files beside it",
            code="E_STORAGE_READONLY",
        )
    code = "E_STORAGE_BUSY" if is_busy(exc) else "E_STORAGE"
    return StorageError(f"SQLite failed while {doing}: {exc}", code=code)


def is_read_only(exc: BaseException) -> bool:
    """SQLITE_READONLY or SQLITE_CANTOPEN (and their extended codes): a file or folder
    this process may not write."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN)


def rollback_quietly(conn: sqlite3.Connection) -> None:
    """End a failed transaction; the error that got us here is the one to report."""
    if conn.in_transaction:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


class Request:
    """One queued write. A blocking caller waits on a plain lock that is released
    once: cheaper than a ``threading.Event`` (its Condition cost more than the
    INSERT). An asyncio caller (``waker`` set) hears it through its loop's
    :class:`LoopWaker` instead, without a thread of its own."""

    __slots__ = (
        "_waiting",
        "error",
        "finished",
        "future",
        "key",
        "op",
        "result",
        "retries",
        "sequenced",
        "waker",
    )

    def __init__(
        self,
        op: Op,
        sequenced: bool,
        waker: LoopWaker | None = None,
        future: asyncio.Future[Any] | None = None,
        key: object = None,
    ) -> None:
        self.op = op
        self.key = key  # what the op will look up (BatchHooks.prefetch), or None
        self.sequenced = sequenced
        self.retries = 0
        self.result: object = None
        self.error: BaseException | None = None
        self.finished = False
        self.waker = waker
        self.future = future
        if waker is None:  # an asyncio caller never waits on a lock
            self._waiting = threading.Lock()
            self._waiting.acquire()

    def finish(self) -> None:
        """Release the caller (once; later calls do nothing)."""
        if not self.finished:
            self.finished = True
            if self.waker is None:
                self._waiting.release()
            else:
                self.waker.add(self)

    def wait(self) -> None:
        self._waiting.acquire()

    def settle(self) -> None:
        """On the caller's loop: hand the outcome to its future."""
        future = self.future
        if future is None or future.done():  # cancelled meanwhile: nobody listens
            return
        if self.error is not None:
            # handed on, not kept: the error's traceback holds this request
            error, self.error = self.error, None
            future.set_exception(error)
        else:
            future.set_result(self.result)


class LoopWaker:
    """Finished asyncio requests of one event loop, handed over in bunches.

    The committer releases a whole batch at once; one ``call_soon_threadsafe`` (one
    wake-up of the loop) carries every request finished before the loop got to run,
    instead of one thread hand-off per request."""

    __slots__ = ("_lock", "_loop", "_ready")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._ready: list[Request] = []

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def add(self, request: Request) -> None:
        with self._lock:
            self._ready.append(request)
            if len(self._ready) > 1:
                return  # a wake-up is already on its way
        with suppress(RuntimeError):  # a closed loop: nobody waits any more
            self._loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
        for request in ready:
            request.settle()
