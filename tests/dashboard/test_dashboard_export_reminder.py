"""An overdue archived export, as the shop owner sees it: the light turns yellow and
the Warnings page says what to do. It said "take and archive an export", and the
owner took one on the dashboard's Export page, which archives nothing, and the
warning stayed. A served app on a clock that moves on; the archive export is the
ops library's own (what ``opentse archive export`` runs)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from dashboard_support import api_login, dashboard_login, sell, setup_tss

from opentse.installation import Installation
from opentse.ops import archive
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.testing.clock import FrozenClock
from opentse.testing.serving import serving_in_thread

START = 1_700_000_000
DAY = 86400


def test_an_overdue_export_says_how_to_archive_one(tmp_path: Path) -> None:
    clock = FrozenClock(START)
    data = tmp_path / "data"
    inst = Installation.open(data, clock=clock)
    app = create_app(inst, ServerConfig(data_dir=data), clock=clock)
    try:
        with serving_in_thread(app) as base, httpx.Client(base_url=base, timeout=30) as web:
            ctx, ops = app.state.ctx, app.state.ops
            key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
            h = api_login(web, key)
            tss, cid = setup_tss(web, h)
            sell(web, h, tss, cid, "4.20")
            clock.set(START + 31 * DAY)
            assert dashboard_login(web, key).status_code == 303
            en = {"accept-language": "en"}
            listed = web.get("/dashboard/tss", headers=en).text
            assert re.search(r'<tr class="row-yellow">', listed) and "export overdue" in listed
            warned = web.get("/dashboard/warnings", headers=en).text
            assert "no archived export for 31 days: whoever runs the server" in warned
            assert "an export from this dashboard is not archived" in warned
            german = web.get("/dashboard/warnings", headers={"accept-language": "de"}).text
            assert "wer den Server betreibt, exportiert, prüft und archiviert" in german
            # a shop owner cannot run a command from the dashboard: the page names who
            # can and where it is described, not the command line
            assert "opentse archive" not in german and "opentse archive" not in warned
            assert "operations.md" in german
            page = web.get(f"/dashboard/tss/{tss}", headers={"accept-language": "de"}).text
            assert "Keine Protokolleinträge: sie entstehen, wenn auf dem Server" in page
            assert "opentse site" not in page and "tse replace" not in page
            archive.archive_export(ops, tss)
            assert "No warnings." in web.get("/dashboard/warnings", headers=en).text
            assert 'class="row-green"' in web.get("/dashboard/tss", headers=en).text
    finally:
        inst.close()
