"""Forked worker processes, for the verifier's signatures on more than one core.

Worker *threads* share one GIL: while two of them verify and the reading thread
scans, decodes and checks, every hand-off of the GIL costs a few microseconds per
log (bench_verify: ~10 us of non-signature CPU per log with two threads against ~6
with one). A forked child has an interpreter of its own.

The reading process adds each decoded chunk to a backlog. A feeder thread sends the
oldest chunks to the children (their signed data and signatures, pickled, through
a pipe; at most ``AHEAD`` per child) and takes their answers; the reading process
decodes and checks meanwhile, and then verifies the newest chunks itself
(``take``) until none is left. So every core stays busy whatever the archive's
size, also while the reading process runs the checks, and at the end a child holds
at most ``AHEAD`` chunks. The feeder needs the GIL only once per chunk.

Fork, not spawn: a spawned interpreter spends ~0.3 s importing; forked before the
archive is read, a child costs a few milliseconds and shares every loaded module.
Only on Linux (macOS system libraries are not fork-safe), and only while no other
thread runs (``alone``); elsewhere the verifier uses threads. A chunk whose child
dies goes back to the backlog.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import struct
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

Token = TypeVar("Token")

AHEAD = 2  # chunks a child holds (running and queued): the next one is always there
PIN = True  # one CPU each for the reading process and every child (see _cpus)
PIPE_SIZE = 1 << 20  # a few chunks fit: sending one never waits for the child
_LENGTH = struct.Struct("<Q")
_PROTOCOL = pickle.HIGHEST_PROTOCOL
# parent ends of every live pool's pipes: a child forked later closes them, or a
# child of an earlier pool would never see the end of its input
_PARENT_FDS: set[int] = set()


def available() -> bool:
    """Whether children can be forked safely here (Linux)."""
    return sys.platform == "linux" and hasattr(os, "fork")


def alone() -> bool:
    """Whether the calling thread is the only one: only then may it fork. A lock
    another thread holds at the fork (a logging handler's, a buffered stream's, the
    allocator's) stays held in the child for ever (Python 3.12+ warns). The
    verifier's own threads start after its forks (the feeder; the CLI's progress bar
    has no refresh thread), so this holds unless the caller runs threads of its own;
    ``LogPipeline`` then uses worker threads."""
    return threading.active_count() == 1


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
        self.inbox = inbox  # the feeder writes chunks here
        self.outbox = outbox  # and reads answers here
        self.queue: deque[Token] = deque()
        self.received = bytearray()


def _cpus(count: int) -> list[int] | None:
    """CPUs for the caller and each of ``count`` children, one each, when this
    thread may run on that many (else None: nothing is pinned).

    Pinned, the two processes keep their caches and the feeder never lands on the
    child's CPU: on the 2-vCPU test machine 10^5 logs verified ~4% faster (ratio to
    raw on two threads 0.86-0.95 against 0.84-0.90 free, three runs each).
    """
    if not PIN or not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[: count + 1] if len(allowed) > count else None


def _fork(work: Callable[[Any], Any], cpu: int | None) -> _Child[Any]:
    import fcntl  # POSIX only: imported where fork is

    inbox_read, inbox = os.pipe()
    outbox, outbox_write = os.pipe()
    # a smaller pipe only means the feeder may wait while sending
    with contextlib.suppress(OSError):
        fcntl.fcntl(inbox, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 1
        try:
            for fd in (*_PARENT_FDS, inbox, outbox):
                os.close(fd)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})
            _serve(inbox_read, outbox_write, work)
            status = 0
        finally:
            os._exit(status)
    os.close(inbox_read)
    os.close(outbox_write)
    _PARENT_FDS.update((inbox, outbox))
    return _Child(pid, inbox, outbox)


class ForkedPool(Generic[Token]):
    """``count`` forked children running ``work`` on ``payload(token)`` for the
    tokens ``add``-ed; ``done(token, result)`` is called (on the feeder thread) for
    each answer. Tokens nobody has sent yet are handed out by ``take``."""

    def __init__(
        self,
        count: int,
        work: Callable[[Any], Any],
        payload: Callable[[Token], object],
        done: Callable[[Token, Any], None],
    ) -> None:
        self._payload = payload
        self._done = done
        self._children: list[_Child[Token]] = []
        self._backlog: deque[Token] = deque()
        self._state = threading.Condition()
        self._closed = False
        self._error: BaseException | None = None
        cpus = _cpus(count)
        try:
            for index in range(count):
                self._children.append(_fork(work, None if cpus is None else cpus[index + 1]))
        except BaseException:
            self._reap_all()
            raise
        # this thread and the feeder (which inherits it) on a CPU of their own, until
        # close() gives this thread back the CPUs it had
        self._pinned: tuple[int, set[int]] | None = None
        if cpus is not None:
            thread = threading.get_native_id()
            self._pinned = (thread, os.sched_getaffinity(0))
            os.sched_setaffinity(thread, {cpus[0]})
        self._wake_read, self._wake = os.pipe()  # made after the forks: parent-only
        self._feeder = threading.Thread(target=self._feed, name="opentse-verify-feeder")
        self._feeder.daemon = True
        self._feeder.start()

    def add(self, token: Token) -> None:
        with self._state:
            self._backlog.append(token)
            room = any(len(child.queue) < AHEAD for child in self._children)
        if room:
            os.write(self._wake, b"+")

    def take(self) -> Token | None:
        """The newest token no child has been sent, or None."""
        with self._state:
            return self._backlog.pop() if self._backlog else None

    def wait(self) -> bool:
        """Wait until every child has answered for what it holds (True) or a token
        has come back to the backlog (False: ``take`` it); feeder errors raise."""
        with self._state:
            self._state.wait_for(
                lambda: (
                    self._error is not None
                    or bool(self._backlog)
                    or not any(child.queue for child in self._children)
                )
            )
            if self._error is not None:
                raise self._error
            return not self._backlog

    def _feed(self) -> None:
        try:
            while self._feed_once():
                pass
        except BaseException as exc:  # handed to whoever waits
            with self._state:
                self._error = exc
                self._state.notify_all()

    def _feed_once(self) -> bool:
        sends: list[tuple[_Child[Token], Token]] = []
        with self._state:
            if self._closed:
                return False
            for child in self._children:
                while len(child.queue) < AHEAD and self._backlog:
                    token = self._backlog.popleft()
                    child.queue.append(token)
                    sends.append((child, token))
            children = list(self._children)
        for child, token in sends:
            data = pickle.dumps(self._payload(token), _PROTOCOL)
            with contextlib.suppress(OSError):  # the child is gone: its EOF comes below
                _write_all(child.inbox, _LENGTH.pack(len(data)) + data)
        ready, _, _ = select.select([self._wake_read, *(c.outbox for c in children)], [], [])
        if self._wake_read in ready:
            os.read(self._wake_read, 4096)
        for child in children:
            if child.outbox in ready:
                self._receive(child)
        return True

    def _receive(self, child: _Child[Token]) -> None:
        chunk = os.read(child.outbox, 1 << 16)
        child.received += chunk
        received = child.received
        start = 0
        answers = []
        while len(received) - start >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(received, start)
            end = start + _LENGTH.size + size
            if end > len(received):
                break
            answers.append(pickle.loads(received[start + _LENGTH.size : end]))
            start = end
        del received[:start]
        for result in answers:
            self._done(child.queue[0], result)
            with self._state:
                child.queue.popleft()
                self._state.notify_all()
        if not chunk:  # the child is gone: what it still held goes back to the backlog
            with self._state:
                self._backlog.extendleft(child.queue)
                child.queue.clear()
                self._children.remove(child)
                self._state.notify_all()
            self._reap(child, kill=True)

    def close(self) -> None:
        """Stop the feeder and end every child (those still working are killed)."""
        with self._state:
            self._closed = True
        if self._feeder.is_alive():
            os.write(self._wake, b"!")
            self._feeder.join()
        self._reap_all()
        os.close(self._wake_read)
        os.close(self._wake)
        if self._pinned is not None:
            thread, cpus = self._pinned
            self._pinned = None
            with contextlib.suppress(OSError):  # that thread may have ended
                os.sched_setaffinity(thread, cpus)

    def _reap_all(self) -> None:
        children, self._children = self._children, []
        for child in children:
            self._reap(child, kill=bool(child.queue))

    @staticmethod
    def _reap(child: _Child[Token], kill: bool) -> None:
        for fd in (child.inbox, child.outbox):
            _PARENT_FDS.discard(fd)
            os.close(fd)  # EOF: an idle child ends its loop
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
        os.waitpid(child.pid, 0)
