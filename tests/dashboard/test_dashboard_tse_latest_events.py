"""The TSE page shows the TSE's latest system events too, not only its first 50: a
TSE in use for years signs thousands (an updateTime a day, logins, exports), and an
auditor clicking through it asks what it did lately. Before, the page listed the
first 50 (its set-up) and nothing signed after them. Kept beside the data with the
rest of what the page read, so a restart does not read the logs again."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
from dashboard_support import api_login, dashboard_login, setup_tss

from opentse.dashboard.tse_exports import LATEST_SYSTEM_LOGS, ExportLogs
from opentse.engine.ports import LockedTSE, StoredLog
from opentse.installation import Installation
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.testing.serving import serving_in_thread
from opentse.tr03151.oids import LogType


def _sign(inst: Installation, tss: str, operations: list[str]) -> list[int]:
    """System logs of ``operations``, each after 20 transaction logs, written through
    the store as the engine writes them; returns the system logs' counters."""
    now = int(time.time())
    counters: list[int] = []

    def batch(locked: LockedTSE) -> None:
        state = locked.load()
        n = state.signature_counter
        logs = []
        for op in operations:
            for _ in range(20):
                n += 1
                logs.append(StoredLog(tss, n, LogType.TRANSACTION, "FinishTransaction", now,
                                      f"Unixt_{now}_Sig-{n}_Log-Tra_No-{n}_Finish.log",
                                      b"\x30\x00", n, "KASSE-1"))  # fmt: skip
            n += 1
            counters.append(n)
            name = f"Unixt_{now}_Sig-{n}_Log-Sys_{op}.log"
            logs.append(StoredLog(tss, n, LogType.SYSTEM, op, now, name, b"\x30\x00"))
        locked.append(logs)
        state.signature_counter = n
        locked.save(state)

    inst.store.run_locked(tss, batch)
    return counters


def _events(html: str, heading: str) -> list[tuple[int, str]]:
    """(counter, operation) of the table under ``heading``."""
    part = html.split(heading, 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<td class="n">(\d+)</td><td class="t">[^<]*</td><td>([^<]*)</td>', part)
    return [(int(c), op) for c, op in rows]


def test_the_tse_page_lists_the_latest_system_events(tmp_path: Path) -> None:
    data = tmp_path / "data"
    inst = Installation.open(data)
    app = create_app(inst, ServerConfig(data_dir=data))
    ctx = app.state.ctx
    try:
        with serving_in_thread(app) as base, httpx.Client(base_url=base, timeout=60) as web:
            key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
            tss, _ = setup_tss(web, api_login(web, key), "KASSE-1")
            days = _sign(inst, tss, ["updateTime"] * 100)
            assert dashboard_login(web, key).status_code == 303
            html = web.get(f"/dashboard/tss/{tss}", params={"lang": "en"}).text
            latest = _events(html, "The latest system events")
            assert latest[0] == (days[-1], "updateTime")  # the newest first
            assert [c for c, _ in latest] == sorted(days[-LATEST_SYSTEM_LOGS:], reverse=True)
            first = _events(html, "System events signed by the TSE (the first 50)")
            assert len(first) == 50 and first[-1][0] < latest[-1][0]  # none shown twice
            # signed since the last view: read then, the newest on top
            later = _sign(inst, tss, ["authenticateUser", "logOut"])
            html = web.get(f"/dashboard/tss/{tss}", params={"lang": "en"}).text
            assert _events(html, "The latest system events")[:3] == [
                (later[1], "logOut"), (later[0], "authenticateUser"), (days[-1], "updateTime"),
            ]  # fmt: skip
        # kept beside the data: after a restart, without reading the logs again
        kept = ExportLogs(data / "export-logs")
        assert [e.counter for e in kept.latest(inst.service, tss)][-2:] == later
    finally:
        inst.close()


def test_a_tse_with_few_system_events_shows_them_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    inst = Installation.open(data)
    app = create_app(inst, ServerConfig(data_dir=data))
    ctx = app.state.ctx
    try:
        with serving_in_thread(app) as base, httpx.Client(base_url=base, timeout=60) as web:
            key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
            tss, _ = setup_tss(web, api_login(web, key), "KASSE-1")
            assert dashboard_login(web, key).status_code == 303
            html = web.get(f"/dashboard/tss/{tss}", params={"lang": "en"}).text
        assert "registerClient" in html and "The latest system events" not in html
    finally:
        inst.close()
