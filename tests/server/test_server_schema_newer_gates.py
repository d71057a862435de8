"""A running ``opentse serve`` whose database a newer opentse migrated under it
(noticed by its export heartbeat) writes nothing, through every door: the API's
writes answer 503 E_SCHEMA_NEWER (test_server_schema_newer), and so do the
dashboard's export form and its logout (a page saying so), while the export workers
leave queued exports alone until the schema is known again. ``POST /api/v2/auth``
was refused too, though a login writes nothing durable (checked here against the
whole database): a register could not even log in to read. A real server process."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_support import login, new_key_in, setup_tss

from opentse.storage.nodes import schema_level
from opentse.testing.serving import serve_process

CSRF_MARK = 'name="csrf" value="'
RECEIPT = {
    "standard_v1": {
        "receipt": {
            "receipt_type": "RECEIPT",
            "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "3.00"}],
            "amounts_per_payment_type": [{"payment_type": "CASH", "amount": "3.00"}],
        }
    }
}


def _csrf(html: str) -> str:
    start = html.index(CSRF_MARK) + len(CSRF_MARK)
    return html[start : html.index('"', start)]


def _until(answer: Callable[[], httpx.Response], ok: Callable[[httpx.Response], bool]) -> Any:
    deadline = time.monotonic() + 20
    while not ok(r := answer()):
        assert time.monotonic() < deadline, r.text
        time.sleep(0.1)
    return r


def _durable(db: Path) -> list[tuple[str, list[Any]]]:
    """Every table's rows but the node heartbeat's (svc_nodes: seen_ms ticks)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as lite:
        names = [
            str(r[0])
            for r in lite.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name != 'svc_nodes'"
                " ORDER BY name"
            )
        ]
        return [(n, sorted(map(repr, lite.execute(f'SELECT * FROM "{n}"')))) for n in names]


def _sql(db: Path, statement: str, *args: Any) -> list[Any]:
    with sqlite3.connect(db, isolation_level=None) as lite:
        return lite.execute(statement, args).fetchall()


def _heartbeats(db: Path, count: int) -> None:
    """Wait until the node has stamped its heartbeat (svc_nodes.seen_ms) ``count``
    more times: observed, so a loaded machine that runs it late waits longer."""
    seen = {tuple(r) for r in _sql(db, "SELECT node, seen_ms FROM svc_nodes")}
    stamps = 0
    deadline = time.monotonic() + 30
    while stamps < count:
        assert time.monotonic() < deadline, f"{stamps} heartbeats in 30 s"
        time.sleep(0.05)
        now = {tuple(r) for r in _sql(db, "SELECT node, seen_ms FROM svc_nodes")}
        stamps += len(now - seen)
        seen = now


def test_a_node_older_than_its_database_writes_through_no_door(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    db = data / "opentse.db"
    for name in ("OPENTSE_ALLOW_NEWER_SCHEMA", "OPENTSE_DATABASE", "OPENTSE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENTSE_EXPORT_RENEW_SECONDS", "0.2")
    monkeypatch.setenv("OPENTSE_EXPORT_LEASE_SECONDS", "1")
    key = new_key_in(data)
    credentials = {"api_key": key["api_key"], "api_secret": key["api_secret"]}
    with (
        serve_process(data) as origin,
        httpx.Client(base_url=origin, timeout=30) as api,
        httpx.Client(base_url=origin, timeout=30) as browser,
    ):
        h = login(api, key)
        tss, cid = setup_tss(api, h)
        done = str(uuid.uuid4())
        assert api.put(f"/api/v2/tss/{tss}/export/{done}", headers=h).status_code == 200
        _until(
            lambda: api.get(f"/api/v2/tss/{tss}/export/{done}", headers=h),
            lambda r: r.json()["state"] == "COMPLETED",
        )

        def start() -> httpx.Response:
            return api.put(
                f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}",
                params={"tx_revision": 1},
                json={"state": "ACTIVE", "client_id": cid},
                headers=h,
            )

        # a receipt indexed without its amount (as before migration 0007): the amount
        # search would fill it in from its Finish log
        sold = str(uuid.uuid4())
        for revision, body in (
            (1, {"state": "ACTIVE", "client_id": cid}),
            (2, {"state": "FINISHED", "client_id": cid, "schema": RECEIPT}),
        ):
            put = api.put(
                f"/api/v2/tss/{tss}/tx/{sold}",
                params={"tx_revision": revision},
                json=body,
                headers=h,
            )
            assert put.status_code == 200, put.text
        _until(
            lambda: httpx.Response(200, json=_sql(db, "SELECT count(*) FROM svc_transactions"
                                                  " WHERE tx_id = ? AND state = 'FINISHED'",
                                                  sold)),
            lambda r: r.json() == [[1]],
        )  # fmt: skip
        _sql(db, "UPDATE svc_transactions SET amount_cents = NULL WHERE tx_id = ?", sold)

        future = schema_level() + 1
        _sql(db, "INSERT INTO schema_migrations VALUES (?, 'later', 0)", future)
        refused = _until(start, lambda r: r.status_code == 503)
        assert refused.json()["code"] == "E_SCHEMA_NEWER"

        # a login reads the key and signs a token: let through, and nothing is written
        before = _durable(db)
        fresh = api.post("/api/v2/auth", json=credentials)
        assert fresh.status_code == 200, fresh.text
        again = api.post("/api/v2/auth", json={"refresh_token": fresh.json()["refresh_token"]})
        assert again.status_code == 200, again.text
        wrong = api.post("/api/v2/auth", json={**credentials, "api_secret": "x" * 43})
        assert wrong.status_code == 401
        reads = api.get(
            "/api/v2/tss", headers={"Authorization": f"Bearer {again.json()['access_token']}"}
        )
        assert reads.status_code == 200, reads.text
        # the dashboard's login writes nothing either
        page = browser.get("/dashboard/login")
        signed_in = browser.post("/dashboard/login", data={"csrf": _csrf(page.text), **credentials})
        assert signed_in.status_code == 303, signed_in.text
        assert _durable(db) == before

        # the dashboard's export form: a page saying why, no export stored
        form = browser.get("/dashboard/exports")
        assert form.status_code == 200
        posted = browser.post("/dashboard/exports", data={"csrf": _csrf(form.text), "tss_id": tss})
        assert posted.status_code == 503, posted.text
        assert "older than its database" in posted.text and "upgrade" in posted.text
        assert _sql(db, "SELECT count(*) FROM svc_exports") == [(1,)]

        # an export another node queued is left alone (no row update, no file) ...
        queued = str(uuid.uuid4())
        _sql(
            db,
            "INSERT INTO svc_exports(export_id, tss_id, organization_id, state, params,"
            " time_request, metadata) SELECT ?, tss_id, organization_id, 'PENDING', params,"
            " time_request, metadata FROM svc_exports WHERE export_id = ?",
            queued,
            done,
        )
        _heartbeats(db, 5)  # the node ran its export heartbeat five times meanwhile
        assert _sql(db, "SELECT state, lease_owner FROM svc_exports WHERE export_id = ?",
                    queued) == [("PENDING", None)]  # fmt: skip
        assert not list((data / "exports").glob(f"{queued}*"))

        # the amount search answers from what is indexed and fills nothing in; "read
        # them again" (it clears marks) is a page saying why
        unchanged = _durable(db)
        search = browser.get("/dashboard/tx", params={"amount": "3,00"})
        assert search.status_code == 200, search.text
        again = browser.post("/dashboard/tx/read-again", data={"csrf": _csrf(search.text)})
        assert again.status_code == 503, again.text
        assert "older than its database" in again.text and "upgrade" in again.text
        assert _durable(db) == unchanged
        assert _sql(db, "SELECT amount_cents FROM svc_transactions WHERE tx_id = ?",
                    sold) == [(None,)]  # fmt: skip

        # logging out: this browser's cookie goes, and the page says the server kept it
        tss_page = browser.get("/dashboard/tss")
        out = browser.post("/dashboard/logout", data={"csrf": _csrf(tss_page.text)})
        assert out.status_code == 503, out.text
        assert "E_SCHEMA_NEWER" in out.text and "this browser only" in out.text
        assert browser.get("/dashboard/tss").status_code == 303  # to the login

        # ... and done once the schema is known again
        _sql(db, "DELETE FROM schema_migrations WHERE version = ?", future)
        _until(start, lambda r: r.status_code == 200)
        _until(
            lambda: api.get(f"/api/v2/tss/{tss}/export/{queued}", headers=h),
            lambda r: r.json()["state"] == "COMPLETED",
        )
