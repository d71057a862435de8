"""Stored export check reports (``<data>/export-checks/<id>.json``) over the real app:
a restart keeps the report of a completed export and shows it without verifying
again, and removes the reports of exports that are gone or never completed (and
temporary files of a report write that died); a report written meanwhile stays."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from dashboard_support import api_login, dashboard_login, sell, setup_tss

from opentse.installation import Installation
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.server.service_store import ExportRow
from opentse.testing.serving import serving_in_thread


def _report_page(client: httpx.Client, export_id: str) -> str:
    """The export's page once its check is shown (it refreshes while verifying)."""
    deadline = time.monotonic() + 60
    while True:
        page = client.get(f"/dashboard/exports/{export_id}")
        assert page.status_code == 200, page.text
        if 'class="verdict' in page.text:
            return page.text
        assert time.monotonic() < deadline, "the export was never verified"
        time.sleep(0.2)


def _first_run(data: Path) -> dict[str, Any]:
    """A shop exports once and looks at the export in the dashboard (which stores
    its check); returns the ids and the key."""
    with Installation.open(data) as inst:
        app = create_app(inst, ServerConfig(data_dir=data))
        with serving_in_thread(app) as base, httpx.Client(base_url=base, timeout=30) as api:
            ctx = app.state.ctx
            key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
            h = api_login(api, key)
            tss, cid = setup_tss(api, h)
            sell(api, h, tss, cid, "4.20")
            export_id = str(uuid.uuid4())
            r = api.put(f"/api/v2/tss/{tss}/export/{export_id}", headers=h)
            assert r.status_code == 200, r.text
            deadline = time.monotonic() + 60
            while (state := ctx.svc.get_export(export_id).state) != "COMPLETED":
                assert time.monotonic() < deadline, state
                time.sleep(0.05)
            with httpx.Client(base_url=base, timeout=30) as browser:
                assert dashboard_login(browser, key).status_code == 303
                assert 'class="verdict ok"' in _report_page(browser, export_id)
            # an export that ended without a file (the API's DELETE cancels)
            cancelled = str(uuid.uuid4())
            row = ExportRow(
                cancelled, tss, key["organization_id"], "CANCELLED", {}, None, 1, 2, None,
                None, None, {},
            )  # fmt: skip
            assert ctx.svc.add_export(row, 10)
    return {"key": key, "export_id": export_id, "cancelled": cancelled}


def test_a_restart_removes_the_reports_of_exports_that_are_gone_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run = _first_run(data)
    checks = data / "export-checks"
    kept = checks / f"{run['export_id']}.json"
    stored = kept.read_bytes()
    report = json.loads(stored)["report"]
    assert report["ok"] is True and report["sha256"]
    # reports of an export no database row knows (deleted, or a database restored
    # from before it) and of the cancelled one; a temporary file of a write that
    # died an hour ago and one of a write going on now (another node's)
    gone = checks / f"{uuid.uuid4()}.json"
    gone.write_bytes(stored)
    cancelled = checks / f"{run['cancelled']}.json"
    cancelled.write_bytes(stored)
    dead_part = checks / f"{gone.name}.123.456.part"
    dead_part.write_bytes(b"{")
    an_hour_ago = time.time() - 3700
    os.utime(dead_part, (an_hour_ago, an_hour_ago))
    live_part = checks / f"{kept.name}.124.457.part"
    live_part.write_bytes(b"{")
    other = checks / "notes.txt"  # not a report: left alone
    other.write_text("x")
    with Installation.open(data) as inst:
        app = create_app(inst, ServerConfig(data_dir=data))  # the start-up
        assert sorted(p.name for p in checks.iterdir()) == sorted(
            [kept.name, live_part.name, other.name]
        )
        with serving_in_thread(app) as base, httpx.Client(base_url=base, timeout=30) as browser:
            assert dashboard_login(browser, run["key"]).status_code == 303
            page = _report_page(browser, run["export_id"])
            assert report["sha256"] in page
            # shown from the kept report, not verified (and written) again
            assert kept.read_bytes() == stored
            assert browser.get(f"/dashboard/exports/{run['cancelled']}").status_code == 200
        assert sorted(p.name for p in checks.iterdir()) == sorted(
            [kept.name, live_part.name, other.name]
        )


def test_a_first_start_without_a_checks_folder_is_fine(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Installation.open(data) as inst:
        app = create_app(inst, ServerConfig(data_dir=data))
        assert app.state.dashboard.checks.prune(app.state.ctx.svc.export_files) == 0
        assert not (data / "export-checks").exists()
        app.state.ctx.close()


def test_an_export_whose_file_is_gone_says_so(tmp_path: Path) -> None:
    """The page of a completed export whose TAR was deleted (or moved) offered the
    download button, which led to "Not found." with no word why."""
    data = tmp_path / "data"
    with Installation.open(data) as inst:
        app = create_app(inst, ServerConfig(data_dir=data))
        with serving_in_thread(app) as base, httpx.Client(base_url=base, timeout=30) as web:
            ctx = app.state.ctx
            key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
            h = api_login(web, key)
            tss, cid = setup_tss(web, h)
            sell(web, h, tss, cid, "4.20")
            export_id = str(uuid.uuid4())
            assert web.put(f"/api/v2/tss/{tss}/export/{export_id}", headers=h).status_code == 200
            deadline = time.monotonic() + 60
            while (row := ctx.svc.get_export(export_id)).state != "COMPLETED":
                assert time.monotonic() < deadline, row.state
                time.sleep(0.05)
            Path(row.file_path).unlink()
            assert dashboard_login(web, key).status_code == 303
            page = web.get(f"/dashboard/exports/{export_id}", headers={"accept-language": "en"})
            assert page.status_code == 200
            assert "The file of this export is no longer there" in page.text
            assert f"/dashboard/exports/{export_id}/file" not in page.text
