"""Child process of the crash test: appends logs through SQLiteStore.run_locked on
several threads, forever, and prints each counter only after run_locked returned
(one unbuffered write per call). The parent SIGKILLs it at random moments.

usage: python storage_crash_writer.py DB_PATH THREADS
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

from opentse.engine.ports import LockedTSE, StoredLog, TSERecord
from opentse.engine.state import TSEState
from opentse.errors import ConflictError
from opentse.storage.sqlite import SQLiteStore
from opentse.tr03151.oids import LogType

TSE = "crash"  # (the conformance helpers import pytest: too slow to start here)
RECORD = TSERecord(
    TSE,
    b"\x01" * 32,
    "P-256",
    "ecdsa-plain-SHA256",
    "unixTime",
    b"\x04" * 65,
    b"key",
    (b"cert",),
    1_700_000_000,
)


def make_log(counter: int, ref: str) -> StoredLog:
    return StoredLog(
        TSE,
        counter,
        LogType.TRANSACTION,
        "UpdateTransaction",
        1_700_000_000,
        f"Unixt_1700000000_Sig-{counter}_Log-Tra.log",
        b"\x30" * 300,
        1,
        "c",
        ref,
    )


def main() -> None:
    path, threads = sys.argv[1], int(sys.argv[2])
    store = SQLiteStore(path)
    with contextlib.suppress(ConflictError):  # created by an earlier round
        store.create_tse(RECORD, TSEState(TSE))
    out = threading.Lock()

    def emit(text: str) -> None:
        with out:
            os.write(1, text.encode())

    def worker(index: int) -> None:
        n = 0
        while True:
            n += 1
            count = 1 + (n + index) % 3
            tag = f"{os.getpid()}:{index}:{n}"

            def fn(locked: LockedTSE, count: int = count, tag: str = tag) -> list[int]:
                state = locked.load()
                first = state.signature_counter + 1
                counters = list(range(first, first + count))
                locked.append([make_log(c, f"{tag}:{c}") for c in counters])
                state.signature_counter = counters[-1]
                state.transaction_counter += 1  # one per committed call
                locked.save(state)
                return counters

            counters = store.run_locked(TSE, fn)
            emit("".join(f"{c}\n" for c in counters))

    emit("READY\n")
    for index in range(threads):
        threading.Thread(target=worker, args=(index,), daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
