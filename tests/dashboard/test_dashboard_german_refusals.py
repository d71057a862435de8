"""Refusals on German pages in German, with their code: the export form's refusals
by the API a shop owner meets, and hand-edited addresses (``?tss=zzz``,
``?page=abc``, a bad date) answered with a 400 page saying which parameter, never
silently ignored. Against a served shop."""

from __future__ import annotations

import uuid
from pathlib import Path

from dashboard_support import api_login, csrf_of, dashboard_login, served_shop


def test_the_export_form_refuses_a_tse_not_initialized_in_german(tmp_path: Path) -> None:
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss = str(uuid.uuid4())
        assert web.put(f"/api/v2/tss/{tss}", json={}, headers=h).status_code == 200
        assert dashboard_login(web, key).status_code == 303
        form = web.get("/dashboard/exports", params={"lang": "de"})
        posted = web.post("/dashboard/exports", data={"csrf": csrf_of(form.text), "tss_id": tss})
        assert posted.status_code == 409
        assert "Diese TSE kann noch nicht exportiert werden: sie ist angelegt." in posted.text
        assert "E_TSS_ILLEGAL_STATE_TO_PERFORM_EXPORT" in posted.text
        assert "the TSS is" not in posted.text
        form = web.get("/dashboard/exports", params={"lang": "en"})
        posted = web.post("/dashboard/exports", data={"csrf": csrf_of(form.text), "tss_id": tss})
        assert posted.status_code == 409 and "the TSS is CREATED" in posted.text
