"""Loopback services that fail the way a till's network does, and count the
connections a till opens to them: a count of requests says "asked once" on any
machine, where a stopwatch under load says nothing."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CountingPort:
    """A listening socket whose accepted connections are counted; ``hang`` keeps
    them open unanswered (a hung service), otherwise each is closed at once (a
    service that drops every request)."""

    def __init__(self, hang: bool) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self._hang = hang
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._count = 0
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def connections(self) -> int:
        """The connections made so far, those still waiting in the listen queue
        too: read right after a command, the count depended on whether the accept
        thread had run since (on a loaded machine it lagged for tenths of seconds)."""
        with self._lock:
            self._take_waiting()
            return self._count

    def _accept(self) -> None:
        # a blocked accept() is not woken by close() from another thread: poll, so
        # close() ends this thread (a thread left behind in a test worker made the
        # verifier's fork tests, which need a process without other threads, fail)
        while not self._closed.is_set():
            try:
                ready, _, _ = select.select([self._listener], [], [], 0.05)
            except (OSError, ValueError):  # closed
                return
            if ready:
                with self._lock:
                    self._take_waiting()

    def _take_waiting(self) -> None:
        """Accept every connection in the listen queue (with the lock held)."""
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # none waiting (BlockingIOError), or closed
                return
            self._count += 1
            if self._hang:
                self._held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive(), "the counting port's thread did not end"
        self._listener.close()
        for conn in self._held:
            conn.close()


@contextmanager
def counting_port(hang: bool) -> Iterator[CountingPort]:
    port = CountingPort(hang)
    try:
        yield port
    finally:
        port.close()
