"""WAL checkpoints on a thread of their own, off the committer's path.

SQLite's default runs a checkpoint inside the COMMIT that pushes the WAL past
1,000 pages: that commit copies ~4 MB into the database file and fsyncs it while
every caller of its batch, and every batch behind it, waits. The store's write
connection therefore sets ``wal_autocheckpoint = 0`` and this thread runs PASSIVE checkpoints
on its own connection: they copy what is committed without blocking the writer
or any reader, and the next write transaction starts the WAL over once all of it
is copied. Durability does not change: a COMMIT is durable when its WAL frames
are synced, before any checkpoint.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("opentse.storage")

INTERVAL = 0.2  # seconds between checkpoints: a few MB of WAL at most in between


class Checkpointer:
    """A daemon thread checkpointing one database file until :meth:`stop`."""

    def __init__(self, path: Path | str, interval: float = INTERVAL) -> None:
        self._path = str(path)
        self._interval = interval
        self._stopping = threading.Event()
        self.checkpoints = 0  # completed PASSIVE runs (for tests and stats)
        self._thread = threading.Thread(
            target=self._run, name="opentse-sqlite-checkpoint", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 1000")
            while not self._stopping.wait(self._interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.checkpoints += 1
                except sqlite3.Error as exc:  # busy or I/O: the next round tries again
                    log.warning("WAL checkpoint failed: %s", exc)
        finally:
            conn.close()

    def stop(self) -> None:
        """End the thread (the last connection to close checkpoints what is left)."""
        self._stopping.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()
