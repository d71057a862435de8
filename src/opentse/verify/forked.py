"""Forked worker processes, for the verifier's signatures on more than one core.

Worker *threads* share one GIL: while two of them verify and the reading thread
scans, decodes and checks, every hand-off of the GIL costs a few microseconds per
log (bench_verify: ~10 us of non-signature CPU per log with two threads against ~6
with one). A forked child has an interpreter of its own: the reading process sends
it a chunk's signed data and signatures (pickled, through a pipe) and gets one
result per log back. The reading process verifies a chunk itself whenever every
child already has ``AHEAD`` chunks, so every core stays busy and the queue a child
still works through once the archive is read stays short.

Fork, not spawn: a spawned interpreter spends ~0.3 s importing; forked before the
archive is read, a child costs a few milliseconds and shares every loaded module.
Only on Linux (macOS system libraries are not fork-safe); elsewhere the verifier
uses threads. A child that dies loses nothing: its chunks come back as ``LOST``
and the caller verifies them itself.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import struct
import sys
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

Token = TypeVar("Token")

AHEAD = 3  # chunks a child may hold (running or queued) before the parent verifies
PIPE_SIZE = 1 << 20  # a few chunks fit: sending one never waits for the child
_LENGTH = struct.Struct("<Q")
_PROTOCOL = pickle.HIGHEST_PROTOCOL
LOST = object()  # the result of a chunk whose child died before answering


def available() -> bool:
    """Whether children can be forked safely here (Linux)."""
    return sys.platform == "linux" and hasattr(os, "fork")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _serve(inbox: int, outbox: int, work: Callable[[Any], Any]) -> None:
    """A child's loop: one length-prefixed pickle in, ``work`` of it out, until EOF."""
    with open(inbox, "rb") as reader:  # read(n) waits for all n octets (or EOF)
        while True:
            head = reader.read(_LENGTH.size)
            if len(head) < _LENGTH.size:
                return
            (size,) = _LENGTH.unpack(head)
            payload = reader.read(size)
            if len(payload) < size:
                return
            result = pickle.dumps(work(pickle.loads(payload)), _PROTOCOL)
            _write_all(outbox, _LENGTH.pack(len(result)) + result)


class _Child(Generic[Token]):
    """One child: its pipes, the tokens of the chunks it holds (oldest first) and
    the unparsed octets of its answers."""

    __slots__ = ("inbox", "outbox", "pid", "queue", "received")

    def __init__(self, pid: int, inbox: int, outbox: int) -> None:
        self.pid = pid
        self.inbox = inbox  # the parent writes chunks here
        self.outbox = outbox  # and reads results here (non-blocking)
        self.queue: deque[Token] = deque()
        self.received = bytearray()


class ForkedPool(Generic[Token]):
    """``count`` forked children, each running ``work`` on the payloads sent to it,
    in order. The caller keeps a token per payload and gets (token, result) back."""

    def __init__(self, count: int, work: Callable[[Any], Any]) -> None:
        self._children: list[_Child[Token]] = []
        try:
            for _ in range(count):
                self._children.append(self._fork(work))
        except BaseException:
            self.close()
            raise

    def _fork(self, work: Callable[[Any], Any]) -> _Child[Token]:
        import fcntl  # POSIX only: imported where fork is

        inbox_read, inbox = os.pipe()
        outbox, outbox_write = os.pipe()
        # a smaller pipe only means the parent may wait while sending
        with contextlib.suppress(OSError):
            fcntl.fcntl(inbox, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        pid = os.fork()
        if pid == 0:  # the child: never returns
            status = 1
            try:
                # the write ends of the other children's inboxes must close here, or
                # those children never see the end of their input
                for other in self._children:
                    os.close(other.inbox)
                    os.close(other.outbox)
                os.close(inbox)
                os.close(outbox)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _serve(inbox_read, outbox_write, work)
                status = 0
            finally:
                os._exit(status)
        os.close(inbox_read)
        os.close(outbox_write)
        os.set_blocking(outbox, False)
        return _Child(pid, inbox, outbox)

    @property
    def pending(self) -> int:
        """Chunks sent and not yet answered."""
        return sum(len(child.queue) for child in self._children)

    def send(self, make_payload: Callable[[], object], token: Token) -> bool:
        """Send ``make_payload()`` to the child holding the fewest chunks, unless every
        one holds ``AHEAD`` (False: the caller does the work itself)."""
        if not self._children:
            return False
        child = min(self._children, key=lambda c: len(c.queue))
        if len(child.queue) >= AHEAD:
            return False
        data = pickle.dumps(make_payload(), _PROTOCOL)
        try:
            _write_all(child.inbox, _LENGTH.pack(len(data)) + data)
        except OSError:  # the child is gone: its chunks come back LOST
            return False
        child.queue.append(token)
        return True

    def results(self, wait: bool) -> list[tuple[Token, object]]:
        """Answers that have arrived (with ``wait``: at least one, unless nothing is
        pending), oldest first per child; a dead child's chunks with ``LOST``."""
        out: list[tuple[Token, object]] = []
        while True:
            busy = [child for child in self._children if child.queue]
            for child in busy:
                self._receive(child, out)
            if out or not wait or not any(child.queue for child in self._children):
                return out
            select.select([child.outbox for child in busy], [], [])

    def _receive(self, child: _Child[Token], out: list[tuple[Token, object]]) -> None:
        ended = False
        while True:
            try:
                chunk = os.read(child.outbox, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:  # the child is gone: what it answered before still counts
                ended = True
                break
            child.received += chunk
        received = child.received
        start = 0
        while len(received) - start >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(received, start)
            end = start + _LENGTH.size + size
            if end > len(received):
                break
            out.append((child.queue.popleft(), pickle.loads(received[start + _LENGTH.size : end])))
            start = end
        del received[:start]
        if ended:
            out.extend((token, LOST) for token in child.queue)
            child.queue.clear()
            self._children.remove(child)
            self._reap(child, kill=True)

    def close(self) -> None:
        """End every child: those still working are killed (their answers are
        not wanted any more)."""
        children, self._children = self._children, []
        for child in children:
            self._reap(child, kill=bool(child.queue))

    @staticmethod
    def _reap(child: _Child[Token], kill: bool) -> None:
        os.close(child.inbox)  # EOF: an idle child ends its loop
        os.close(child.outbox)
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
        os.waitpid(child.pid, 0)
