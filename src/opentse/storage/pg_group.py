"""Group commit per key inside one process: callers queue, one leads.

Callers of the same key (a TSE id) join an in-memory queue; the first one leads:
it takes up to ``max_batch`` queued requests, hands them to ``run_batch`` (which
runs them all in one database transaction and sets each request's result or
error), then wakes them and passes the lead to the next waiter, if any. So no
thread leads forever, at most one connection per key waits on the database's row
lock, and one commit (one WAL flush) serves a whole batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Request:
    """One caller's ``fn`` waiting in its key's queue."""

    __slots__ = ("error", "finished", "fn", "lead", "ref", "result", "wake")

    def __init__(self, fn: Callable[[Any], object], ref: str | None = None) -> None:
        self.fn = fn
        self.ref = ref  # the caller's idempotency key, if any (looked up per batch)
        self.wake = threading.Event()
        self.lead = False
        self.finished = False
        self.result: object = None
        self.error: BaseException | None = None


class GroupQueue:
    """``submit(key, fn)`` runs ``fn`` through ``run_batch(key, requests)``."""

    def __init__(
        self, run_batch: Callable[[str, list[Request]], None], max_batch: int = 64
    ) -> None:
        self._run_batch = run_batch
        self._max_batch = max(1, max_batch)
        self._lock = threading.Lock()
        self._queues: dict[str, list[Request]] = {}  # key -> queued requests; present
        # exactly while some thread leads (or has been woken to lead) for that key

    def submit(self, key: str, fn: Callable[[Any], object], ref: str | None = None) -> object:
        """Queue ``fn``; return its result (or raise its error) after its batch."""
        request = Request(fn, ref)
        with self._lock:
            pending = self._queues.get(key)
            if pending is None:
                pending = self._queues[key] = []
                request.lead = True
            pending.append(request)
        if not request.lead:
            request.wake.wait()
        if not request.finished:  # first in line, or woken to lead the next batch
            self._lead(key, request)
        if request.error is not None:
            raise request.error
        return request.result

    def _lead(self, key: str, me: Request) -> None:
        with self._lock:
            pending = self._queues[key]
            batch = pending[: self._max_batch]
            del pending[: len(batch)]
        try:
            self._run_batch(key, batch)
        except BaseException as exc:  # a bug in run_batch: nobody of this batch succeeded
            for request in batch:
                if request.error is None:
                    request.result, request.error = None, exc
        finally:
            with self._lock:
                for request in batch:
                    request.finished = True
                pending = self._queues[key]
                if pending:
                    pending[0].wake.set()  # not finished: it leads the next batch
                else:
                    del self._queues[key]
            for request in batch:
                if request is not me:
                    request.wake.set()
