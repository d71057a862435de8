"""A node older than its database (a newer opentse migrated it under the running
server: ``ctx.stale_schema``, noticed by its heartbeat) writes nothing through the
dashboard either. The gate is the route wrapper's (``Dashboard.page(writes=True)``):
"Read them again" answers a 503 page saying why before its handler runs; the amount
search answers from what is indexed without filling amounts in; the export form is
refused by the API's own gate and shows why beside the form. Once the schema is
known again, all of them write. In-process server, its own heartbeat."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from dashboard_support import api_login, csrf_of, dashboard_login, sell, setup_tss

from opentse.installation import Installation
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.storage.nodes import schema_level
from opentse.testing.serving import serving_in_thread


def _sql(db: Path, statement: str, *args: Any) -> list[Any]:
    with sqlite3.connect(db, isolation_level=None) as lite:
        return lite.execute(statement, args).fetchall()


def _observed(happened: Callable[[], bool]) -> None:
    """Until the node's heartbeat has noticed (it runs every 0.1 s here)."""
    deadline = time.monotonic() + 30
    while not happened():
        assert time.monotonic() < deadline, "the heartbeat never noticed"
        time.sleep(0.02)


def test_the_dashboard_writes_nothing_at_a_node_older_than_its_database(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    inst = Installation.open(data)
    app = create_app(inst, ServerConfig(data_dir=data, export_renew=0.1))
    ctx = app.state.ctx
    db = ctx.svc._path
    try:
        with serving_in_thread(app) as base, httpx.Client(base_url=base, timeout=60) as web:
            key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
            h = api_login(web, key)
            tss, cid = setup_tss(web, h, "KASSE-1")
            marked = sell(web, h, tss, cid, "4.00")["_id"]
            missing = sell(web, h, tss, cid, "3.00")["_id"]
            ctx.svc.flush()
            # one receipt whose amount could not be read, one indexed without its amount
            _sql(db, "UPDATE svc_transactions SET amount_cents = NULL, amount_unread = 'gone'"
                     " WHERE tx_id = ?", marked)  # fmt: skip
            _sql(db, "UPDATE svc_transactions SET amount_cents = NULL WHERE tx_id = ?", missing)
            assert dashboard_login(web, key).status_code == 303

            future = schema_level() + 1
            _sql(db, "INSERT INTO schema_migrations VALUES (?, 'later', 0)", future)
            _observed(lambda: ctx.stale_schema is not None)

            search = web.get("/dashboard/tx", params={"amount": "3,00", "lang": "en"})
            assert search.status_code == 200, search.text
            assert _sql(db, "SELECT amount_cents FROM svc_transactions WHERE tx_id = ?",
                        missing) == [(None,)]  # fmt: skip
            again = web.post("/dashboard/tx/read-again", data={"csrf": csrf_of(search.text)})
            assert again.status_code == 503, again.text
            assert "E_SCHEMA_NEWER" in again.text and "older than its database" in again.text
            assert _sql(db, "SELECT amount_unread FROM svc_transactions WHERE tx_id = ?",
                        marked) == [("gone",)]  # fmt: skip
            form = web.get("/dashboard/exports")
            posted = web.post("/dashboard/exports", data={"csrf": csrf_of(form.text),
                                                          "tss_id": tss})  # fmt: skip
            assert posted.status_code == 503 and 'id="e-tss"' in posted.text  # the form
            assert "older than its database" in posted.text
            assert _sql(db, "SELECT count(*) FROM svc_exports") == [(0,)]

            _sql(db, "DELETE FROM schema_migrations WHERE version = ?", future)
            _observed(lambda: ctx.stale_schema is None)
            again = web.post(
                "/dashboard/tx/read-again", data={"csrf": csrf_of(search.text), "amount": "3,00"}
            )
            assert again.status_code == 303, again.text
            assert _sql(db, "SELECT amount_unread FROM svc_transactions WHERE tx_id = ?",
                        marked) == [(None,)]  # fmt: skip
            found = web.get(again.headers["location"])
            assert found.status_code == 200
            assert _sql(db, "SELECT amount_cents FROM svc_transactions WHERE tx_id = ?",
                        missing) == [(300,)]  # fmt: skip
    finally:
        inst.close()


def _only_folded(english: str, html: str) -> bool:
    """``english`` is on the page only inside the folded server message."""
    shown, _, folded = html.partition('<details class="original">')
    return english not in shown and english in folded.split("</details>", 1)[0]


def test_a_german_page_says_in_german_why_nothing_is_written(tmp_path: Path) -> None:
    """The refusals of a node older than its database on German pages: read again,
    the export form and the logout say it in German, with the code and the unknown
    migration's number (they showed the API's English, which is kept beside the
    German, folded: operators grep their logs for it)."""
    data = tmp_path / "data"
    inst = Installation.open(data)
    app = create_app(inst, ServerConfig(data_dir=data, export_renew=0.1))
    ctx = app.state.ctx
    db = ctx.svc._path
    try:
        with serving_in_thread(app) as base, httpx.Client(base_url=base, timeout=60) as web:
            key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
            h = api_login(web, key)
            tss, _ = setup_tss(web, h, "KASSE-1")
            assert dashboard_login(web, key).status_code == 303
            future = schema_level() + 1
            _sql(db, "INSERT INTO schema_migrations VALUES (?, 'later', 0)", future)
            _observed(lambda: ctx.stale_schema is not None)
            german = "Dieser Server ist älter als seine Datenbank"

            search = web.get("/dashboard/tx", params={"lang": "de"})
            again = web.post("/dashboard/tx/read-again", data={"csrf": csrf_of(search.text)})
            assert again.status_code == 503
            assert german in again.text and f"Migrationen {future:04d}" in again.text
            assert "E_SCHEMA_NEWER" in again.text
            assert _only_folded("older than its database", again.text)
            form = web.get("/dashboard/exports")
            posted = web.post("/dashboard/exports", data={"csrf": csrf_of(form.text),
                                                          "tss_id": tss})  # fmt: skip
            assert posted.status_code == 503 and 'id="e-tss"' in posted.text
            assert german in posted.text and _only_folded("older than its database", posted.text)
            out = web.post("/dashboard/logout", data={"csrf": csrf_of(form.text)})
            assert out.status_code == 503
            assert german in out.text and "Nur in diesem Browser abgemeldet" in out.text
            assert _only_folded("this browser only", out.text)
    finally:
        inst.close()
