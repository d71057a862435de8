"""How long opentse waits for PostgreSQL, and the client-side deadline that enforces it.

A database that stops answering without closing anything (a frozen host, a
PostgreSQL stuck on its disk, a network path that still acknowledges) holds a query
until the TCP stack gives up, many minutes later: a POS request hung with it. Server
settings cannot help there (the server is what does not answer), TCP keepalives
neither while the peer's kernel still acknowledges. So every statement and signing
batch runs under a deadline: a watchdog thread shuts the connection's socket down
when it passes, psycopg raises OperationalError, the request answers 503 (the usual
problem body, Retry-After) and the pool replaces the connection.

Nothing is half-written: a signature leaves the store only after its COMMIT
returned. A COMMIT whose answer never came may or may not have happened; the log
carries the request's ref, so a retry of the same revision finds it and answers the
stored result instead of signing again.

The hot path pays two dict operations per borrowed connection; the watchdog polls.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

QUERY_DEADLINE = 5.0  # seconds a statement or a signing batch may take
LONG_DEADLINE = 300.0  # ... a statement of an export or report (counting, streaming)
REQUEST_WAIT = 5.0  # seconds a request waits for a pooled connection
CONNECT_TIMEOUT = 5  # libpq connect_timeout: the whole connection set-up
LOCK_TIMEOUT_MS = 3000  # a TSE's row lock held by a stalled node: E_STORAGE_BUSY
# deleteStoredData's batch gets this much longer per log it drops (``deletion_seconds``)
DELETE_SECONDS_PER_LOG = 0.001
_TICK = 0.1

# libpq parameters a URL may set itself (its own win)
CONNECTION_DEFAULTS: dict[str, Any] = {
    "connect_timeout": CONNECT_TIMEOUT,
    "keepalives": 1,  # a peer that vanished (host gone) is noticed by TCP too
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,  # sent data unacknowledged that long: the link is dead
}


def connection_kwargs(url: str, *, lock_timeout: bool = True, **extra: Any) -> dict[str, Any]:
    """psycopg connect arguments: ``extra`` plus CONNECTION_DEFAULTS the URL does not
    set, and the session's ``lock_timeout`` (LOCK_TIMEOUT_MS) unless the URL's
    ``options`` (or PGOPTIONS) set one: waiting for a TSE's row lock held by a
    stalled node ends E_STORAGE_BUSY (a 503) before the client deadline cuts. Not
    for migrations (their advisory lock waits for another node's migration)."""
    try:
        given = conninfo_to_dict(url)
    except psycopg.Error:
        given = {}
    kwargs = {k: v for k, v in CONNECTION_DEFAULTS.items() if k not in given}
    if psycopg.pq.version() < 120000:  # libpq 11 and older refuse the parameter
        kwargs.pop("tcp_user_timeout", None)
    options = str(given.get("options") or os.environ.get("PGOPTIONS", ""))
    if lock_timeout and "lock_timeout" not in options:
        kwargs["options"] = f"{options} -c lock_timeout={LOCK_TIMEOUT_MS}".strip()
    kwargs.update(extra)
    return kwargs


class Watch:
    """One deadline under way; ``expired`` once the watchdog cut its connection."""

    __slots__ = ("deadline", "expired", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.expired = False

    def renew(self) -> None:
        """Another ``seconds`` from now (a stream: per round trip, not in all)."""
        self.deadline = time.monotonic() + self.seconds


class Watchdog:
    """Shuts down the socket of a connection whose deadline passed (one thread).

    The thread runs while a store is open (``attach``/``detach``) or a watch is under
    way, and ends with the last store's ``close``: no thread of ours outlives the
    stores (the verifier forks its workers only where no other thread runs)."""

    def __init__(self) -> None:
        self._active: dict[int, tuple[psycopg.Connection[Any], Watch]] = {}
        self._tokens = itertools.count()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._users = 0
        self._wake = threading.Event()

    def attach(self) -> None:
        """A store opened: the thread stays while it is open."""
        with self._lock:
            self._users += 1

    def detach(self) -> None:
        """A store closed; the last one stops the thread and waits for it."""
        with self._lock:
            self._users -= 1
            thread = self._thread if self._users <= 0 else None
        if thread is not None:
            self._wake.set()
            thread.join(timeout=2.0)

    @contextlib.contextmanager
    def watch(self, conn: psycopg.Connection[Any], seconds: float) -> Iterator[Watch]:
        token = next(self._tokens)
        handle = Watch(seconds)
        with self._lock:
            self._active[token] = (conn, handle)
            if self._thread is None:
                self._wake.clear()
                self._thread = threading.Thread(
                    target=self._run, name="opentse-pg-deadline", daemon=True
                )
                self._thread.start()
        try:
            yield handle
        finally:
            self._active.pop(token, None)

    def extend(self, conn: psycopg.Connection[Any], seconds: float) -> None:
        """The deadline under way on ``conn`` ends no sooner than ``seconds`` from now
        (a deletion of many logs inside a signing batch: ``deletion_seconds``)."""
        until = time.monotonic() + seconds
        with self._lock:
            for watched, handle in self._active.values():
                if watched is conn and handle.deadline < until:
                    handle.deadline = until

    def _run(self) -> None:
        while True:
            if self._wake.wait(_TICK):
                self._wake.clear()
            now = time.monotonic()
            with self._lock:
                if self._users <= 0 and not self._active:
                    self._thread = None
                    return
                expired = [
                    token for token, (_, handle) in self._active.items() if handle.deadline <= now
                ]
                cut = [self._active.pop(token) for token in expired]
            for conn, handle in cut:
                handle.expired = True
                _sever(conn)


def _sever(conn: psycopg.Connection[Any]) -> None:
    """Shut the socket down under the blocked thread: its wait ends with an error."""
    with contextlib.suppress(Exception):
        fd = conn.pgconn.socket
        with socket.socket(fileno=os.dup(fd)) as sock:  # the duplicate shares the socket
            sock.shutdown(socket.SHUT_RDWR)


WATCHDOG = Watchdog()


def deletion_seconds(logs: int, base: float = QUERY_DEADLINE) -> float:
    """How long a batch deleting ``logs`` logs may take: ``base`` plus
    DELETE_SECONDS_PER_LOG for each (measured: 27-72 us a log on PostgreSQL 15 with a
    shared 2-core machine, docs/performance.md; 14-37 times that is allowed). A
    fixed QUERY_DEADLINE refused every deletion of more than about 80,000 logs
    (before migration 0014's flag update about 200,000): a TSE with millions of logs
    could never delete them."""
    return base + max(0, logs) * DELETE_SECONDS_PER_LOG


def no_answer(seconds: float) -> str:
    return f"PostgreSQL did not answer within {seconds:g} s (the connection was dropped)"


def check_connection(conn: psycopg.Connection[Any]) -> None:
    """The pool's check of a connection before lending it, under the deadline (the
    check itself hung on a stalled connection)."""
    with WATCHDOG.watch(conn, QUERY_DEADLINE):
        conn.execute("")
