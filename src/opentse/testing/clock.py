"""Clocks: the engine takes time as a parameter; tests use a frozen one."""

from __future__ import annotations

import threading
import time


class SystemClock:
    """Wall-clock UTC in whole unix seconds (implements ``engine.ports.Clock``)."""

    def now(self) -> int:
        return int(time.time())


class FrozenClock:
    """A clock that only moves when told to; thread-safe so service tests can share it."""

    def __init__(self, now: int = 1_700_000_000) -> None:
        self._now = now
        self._lock = threading.Lock()

    def now(self) -> int:
        with self._lock:
            return self._now

    def set(self, now: int) -> None:
        with self._lock:
            self._now = now

    def advance(self, seconds: int = 1) -> int:
        """Move forward (or backward, for negative ``seconds``); returns the new time."""
        with self._lock:
            self._now += seconds
            return self._now
