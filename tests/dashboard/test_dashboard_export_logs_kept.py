"""The TSE page's export list (API, archive and CLI exports, the last known only by
the exportData log the TSE signs) is kept beside the data. Before, it was kept in
memory: the first TSE page after a restart read every system log of the TSE again
(0.8 s at 200,000 logs, seconds at millions), and a CLI export whose log an
archive export and delete-stored-data had removed dropped off the list."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_support import api_login, dashboard_login, export_rows, opentse, sell, setup_tss

from opentse.engine.ports import LockedTSE, StoredLog
from opentse.installation import Installation
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.testing.serving import serve_process, serving_in_thread
from opentse.tr03151.oids import LogType


def test_a_cli_export_stays_listed_after_its_log_was_deleted_and_a_restart(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    key = json.loads(opentse("apikey", "create", "--data", str(data), "--json"))
    with serve_process(data) as base, httpx.Client(base_url=base, timeout=30) as api:
        h = api_login(api, key)
        tss, cid = setup_tss(api, h, "KASSE-1")
        sell(api, h, tss, cid, "2.50")
        cli = json.loads(
            opentse("export", str(tmp_path / "by-hand.tar"), "--tss", tss,
                     "--data", str(data), "--json")
        )  # fmt: skip
        with httpx.Client(base_url=base, timeout=30) as web:
            assert dashboard_login(web, key).status_code == 303
            seen = export_rows(web.get(f"/dashboard/tss/{tss}", params={"lang": "en"}).text)
            assert len(seen) == 1 and "Command line (opentse export)" in seen[0], seen
        time.sleep(1.1)  # the archive export is signed in a later second
        opentse("archive", "export", tss, "--data", str(data))
        opentse("archive", "release", tss, "--data", str(data))
        opentse("tse", "delete-stored-data", tss, "--pin", "123456", "--data", str(data))
    with serve_process(data) as base, httpx.Client(base_url=base, timeout=30) as web:
        assert dashboard_login(web, key).status_code == 303
        rows = export_rows(web.get(f"/dashboard/tss/{tss}", params={"lang": "en"}).text)
    assert len(rows) == 2, rows
    assert "Archive (opentse archive)" in rows[0]
    assert "Command line (opentse export)" in rows[1]
    assert rows[1].endswith(str(cli["export_log_signature_counter"]))


LOGS = 200_000
BATCH = 20_000


def _sign_system_logs(inst: Installation, tss: str, count: int, system: bool = True) -> None:
    """``count`` updateTime system logs (or FinishTransaction logs), written through
    the store as the engine writes them (their DER content is never read by the
    export list)."""
    now = int(time.time())

    def log(n: int) -> StoredLog:
        if system:
            return StoredLog(
                tss,
                n,
                LogType.SYSTEM,
                "updateTime",
                now,
                f"Unixt_{now}_Sig-{n}_Log-Sys_updateTime.log",
                b"\x30\x00",
            )
        return StoredLog(tss, n, LogType.TRANSACTION, "FinishTransaction", now,
                         f"Unixt_{now}_Sig-{n}_Log-Tra_No-{n}_Finish_Client-K1.log", b"\x30\x00",
                         n, "KASSE-1")  # fmt: skip

    def batch(locked: LockedTSE) -> None:
        state = locked.load()
        first = state.signature_counter + 1
        locked.append([log(n) for n in range(first, first + BATCH)])
        state.signature_counter = first + BATCH - 1
        locked.save(state)

    for _ in range(count // BATCH):
        inst.store.run_locked(tss, batch)


@contextmanager
def _served(data: Path) -> Iterator[tuple[httpx.Client, Installation, Any]]:
    inst = Installation.open(data)
    app = create_app(inst, ServerConfig(data_dir=data))
    try:
        with serving_in_thread(app) as base, httpx.Client(base_url=base, timeout=60) as web:
            yield web, inst, app.state.ctx
    finally:
        inst.close()


@contextmanager
def _sqlite_steps(inst: Installation) -> Iterator[list[int]]:
    """Counts, in thousands, the virtual-machine steps SQLite runs for the store's
    readers inside the block (the work of reading logs, counted rather than timed:
    a loaded machine slows a timing, not this). The reader the block will use is
    made first; the test checks no other one was made."""
    store = inst.store
    with store._reading("warming up"):  # type: ignore[attr-defined]
        pass
    readers = set(store._readers)  # type: ignore[attr-defined]
    steps = [0]

    def step() -> int:
        steps[0] += 1
        return 0  # go on

    for conn in readers:
        conn.set_progress_handler(step, 1000)
    try:
        yield steps
    finally:
        for conn in readers:
            conn.set_progress_handler(None, 0)
    assert set(store._readers) == readers  # type: ignore[attr-defined]  # all counted


@pytest.mark.slow
def test_the_first_tse_page_after_a_restart_does_not_read_every_log_again(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with _served(data) as (web, inst, ctx):
        key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
        h = api_login(web, key)
        tss, cid = setup_tss(web, h, "KASSE-1")
        sell(web, h, tss, cid, "2.50")
        _sign_system_logs(inst, tss, LOGS)
        assert dashboard_login(web, key).status_code == 303
        with _sqlite_steps(inst) as cold:
            assert web.get(f"/dashboard/tss/{tss}").status_code == 200  # reads them once
    with _served(data) as (web, inst, ctx):
        assert dashboard_login(web, key).status_code == 303
        with _sqlite_steps(inst) as warm:
            page = web.get(f"/dashboard/tss/{tss}", params={"lang": "en"})
    assert page.status_code == 200
    assert "No exports yet" in page.text or export_rows(page.text) == []
    # the view that read the 200,000 system logs ran ~15 steps a log (3 million); the
    # first view after a restart reads what was kept beside the data (none of them)
    assert cold[0] > LOGS * 5 // 1000, cold  # counted: the first view read the logs
    assert warm[0] < cold[0] / 4, (warm[0], cold[0])


def test_a_tse_page_does_not_read_the_logs_again(tmp_path: Path) -> None:
    """A TSE that signs sales, rarely a system log: each view of its page read every
    log after its last system log (to list exports) and then every log of the TSE
    (its set-up events, when it has fewer than 50 system logs), 0.1 s at 300,000
    logs, a second at millions; now the first view reads its system logs (along
    their index, migration 0013) and a later view none. The statements the store
    sends are counted (they were timed: a later view against the first)."""
    data = tmp_path / "data"
    with _served(data) as (web, inst, ctx):
        key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
        h = api_login(web, key)
        tss, _ = setup_tss(web, h, "KASSE-1")
        _sign_system_logs(inst, tss, 40_000, system=False)
        assert dashboard_login(web, key).status_code == 303
        store = inst.store
        with store._reading("warming up"):  # type: ignore[attr-defined]
            pass
        readers = set(store._readers)  # type: ignore[attr-defined]
        statements: list[str] = []
        for conn in readers:
            conn.set_trace_callback(statements.append)
        try:
            first = web.get(f"/dashboard/tss/{tss}", params={"lang": "en"})
            first_reads = [s for s in statements if "FROM logs WHERE" in s]
            statements.clear()
            for _ in range(3):
                again = web.get(f"/dashboard/tss/{tss}", params={"lang": "en"})
        finally:
            for conn in readers:
                conn.set_trace_callback(None)
        assert set(store._readers) == readers  # type: ignore[attr-defined]  # all traced
    assert again.status_code == 200
    assert again.text.count("registerClient") == first.text.count("registerClient") >= 1
    assert any("log_type IN" in s for s in first_reads), first_reads  # the system logs
    logs_read = [s for s in statements if "FROM logs WHERE" in s and "signature_counter >=" in s]
    assert any("FROM logs WHERE" in s for s in statements)  # traced: its last signature
    assert logs_read == [], logs_read  # a later view reads no range of logs
