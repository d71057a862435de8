"""``GET /health``'s store check, answered within a bounded time whatever the store does.

The check is one trivial read of the engine store (PostgreSQL: ``ping``, which waits
at most 3 s for a pooled connection). A database server that accepts connections but
never answers (a frozen host, a stalled network path that still acknowledges) holds
that read for ever: the pool's connection check, the query itself. So the read runs
in a thread of its own and the answer waits at most ``timeout`` seconds; while a read
is still stuck, the next checks wait on that same read instead of starting another,
so polls of a load balancer never pile up threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable

HEALTH_WAIT = 3.5  # seconds /health waits for the store (ping itself waits 3 for the pool)


class HealthProbe:
    """``await probe.failure()``: None when ``check`` returned in time, else why not
    (the exception's class name, or "Timeout")."""

    def __init__(self, check: Callable[[], None], timeout: float = HEALTH_WAIT) -> None:
        self._check = check
        self._timeout = timeout
        self._lock = threading.Lock()
        self._running: concurrent.futures.Future[None] | None = None

    async def failure(self) -> str | None:
        with self._lock:
            future = self._running
            if future is None or future.done():
                future = self._running = concurrent.futures.Future()
                threading.Thread(
                    target=self._run, args=(future,), name="opentse-health", daemon=True
                ).start()
        waited = asyncio.wrap_future(future)
        # a read that fails after every waiter gave up: its error is this poll's "Timeout"
        # already; shield drops its own retrieval once the waiter is cancelled, and
        # asyncio logged a traceback ("Future exception was never retrieved") per poll
        waited.add_done_callback(_retrieved)
        try:  # shielded: a waiter that gives up does not cancel the shared read
            await asyncio.wait_for(asyncio.shield(waited), self._timeout)
        except TimeoutError:
            return "Timeout"
        except Exception as exc:  # the store is unreachable: not healthy
            return type(exc).__name__
        return None

    def _run(self, future: concurrent.futures.Future[None]) -> None:
        try:
            self._check()
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(None)


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
