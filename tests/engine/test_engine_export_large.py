"""The export streams: memory stays flat however many logs are exported."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

from opentse.engine import tse
from opentse.engine.export import ExportFilter
from opentse.engine.keyring import Keyring
from opentse.engine.service import TSEService
from opentse.storage.sqlite import SQLiteStore
from opentse.testing import TEST_SECRET, FrozenClock, ready_tse

N_TX = 3000  # 6,000 transaction logs, written in one locked batch to keep this fast


class _Sink:
    """Counts bytes and drops them: the archive itself must not be held anywhere."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def test_large_export_uses_bounded_memory(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    try:
        svc = TSEService(store, Keyring(TEST_SECRET), FrozenClock(1_700_000_000))
        ready_tse(svc, "t1")
        ctx = svc.context("t1")

        def fill(locked: Any) -> None:
            state = svc._prepare("t1", locked.load())
            logs = []
            for _ in range(N_TX):
                out = tse.start_transaction(
                    ctx, state, 1_700_000_000, "REGISTER-1", b"x" * 200, "T"
                )
                n = out.result.transaction_number
                logs.extend(out.logs)
                out = tse.finish_transaction(
                    ctx, out.state, 1_700_000_000, "REGISTER-1", n, b"y" * 200, "T"
                )
                logs.extend(out.logs)
                state = out.state
            locked.append(logs)
            locked.save(state)

        store.run_locked("t1", fill)
        total = store.count_logs("t1")
        assert total > 2 * N_TX
        sink = _Sink()
        tracemalloc.start()
        try:
            summary = svc.export("t1", sink, ExportFilter(), log_export=False)  # type: ignore[arg-type]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert summary.records == total and sink.size > total * 1024
        assert peak < 3 * 1024 * 1024, peak  # the archive is > 6 MB
    finally:
        store.close()
