"""Two first views of one TSE page at once, with a signature between them, list each
system log once. The view that began later (the higher signature counter) read the
TSE's first system logs from the start as well; when the earlier one kept its
reading first, the later one appended its own first logs to those kept, so the page
listed the TSE's set-up twice. The two views' steps are interleaved by hand: each
waits, through events, just before it reads the logs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from dashboard_support import api_login, setup_tss

from opentse.dashboard.tse_exports import ExportLogs
from opentse.engine.ports import LockedTSE, LogFilter, StoredLog
from opentse.installation import Installation
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.testing.serving import serving_in_thread
from opentse.tr03151.oids import LogType


class _HeldBeforeReading:
    """The installation's service as a view uses it (its store, its logs); the view's
    read of the logs starts only once the test says so."""

    def __init__(self, service: Any) -> None:
        self.store = service.store
        self._service = service
        self.reading = threading.Event()
        self.go = threading.Event()

    def logs(self, tss_id: str, flt: LogFilter) -> Iterator[StoredLog]:
        self.reading.set()
        assert self.go.wait(60), "the test never let the view read"
        return self._service.logs(tss_id, flt)  # type: ignore[no-any-return]


def _sign_update_time(inst: Installation, tss: str) -> int:
    """One updateTime system log, written through the store as the engine writes it."""
    now = int(time.time())
    signed: list[int] = []

    def one(locked: LockedTSE) -> None:
        state = locked.load()
        n = state.signature_counter + 1
        name = f"Unixt_{now}_Sig-{n}_Log-Sys_updateTime.log"
        locked.append([StoredLog(tss, n, LogType.SYSTEM, "updateTime", now, name, b"\x30\x00")])
        state.signature_counter = n
        locked.save(state)
        signed.append(n)

    inst.store.run_locked(tss, one)
    return signed[0]


def test_two_first_views_with_a_signature_between_list_each_log_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    inst = Installation.open(data)
    app = create_app(inst, ServerConfig(data_dir=data))
    ctx = app.state.ctx
    try:
        with serving_in_thread(app) as base, httpx.Client(base_url=base, timeout=60) as web:
            key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
            tss, _ = setup_tss(web, api_login(web, key), "KASSE-1")
        setup = [log.signature_counter for log in inst.service.logs(tss)]
        logs = ExportLogs()  # nothing kept: both views are first views
        early, late = _HeldBeforeReading(inst.service), _HeldBeforeReading(inst.service)
        views = [threading.Thread(target=logs.first, args=(held, tss)) for held in (early, late)]
        views[0].start()  # takes the TSE's counter, then waits before reading
        assert early.reading.wait(60)
        update = _sign_update_time(inst, tss)
        views[1].start()  # takes the higher counter, nothing kept yet, waits
        assert late.reading.wait(60)
        early.go.set()
        views[0].join(60)  # the earlier view keeps what it read
        late.go.set()
        views[1].join(60)  # the later one adds what it read
        assert not any(view.is_alive() for view in views)
        first = [e.counter for e in logs.first(inst.service, tss)]
        assert first == [*setup, update], first
        latest = [e.counter for e in logs.latest(inst.service, tss)]
        assert latest == [*setup, update], latest
    finally:
        inst.close()
