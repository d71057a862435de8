"""One run of a long ops command at a time on a data folder.

A replacement takes minutes (an export of the old TSE, its verification, every
register moved) and, when it stops, is finished by running the same command again.
Nothing kept a second run of the SAME replacement (same new id) from starting
while the first still ran, and the message of a stopped one says to run it again:
both then did every step side by side, and the protocol ended with two
``replace.done``. The lock is an flock on a file in the data folder, held for the
whole run and dropped by the kernel when the process ends (a killed run leaves no
lock behind). It covers runs on this machine; runs of one replacement on two hosts
of one PostgreSQL database are kept apart by the protocol's claim only.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from opentse.errors import ConflictError

LOCK_FOLDER = "locks"


@contextmanager
def one_run(data_dir: Path, name: str, busy: str, code: str) -> Iterator[None]:
    """Hold the lock called ``name`` for the block; ConflictError(``busy``, ``code``)
    when another process holds it now."""
    folder = Path(data_dir) / LOCK_FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    digest = hashlib.sha256(name.encode()).hexdigest()[:24]  # any id makes a file name
    fd = os.open(folder / f"{digest}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConflictError(busy, code=code) from None
        yield
    finally:
        os.close(fd)  # and with it the lock
