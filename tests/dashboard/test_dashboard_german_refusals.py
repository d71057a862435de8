"""Refusals on German pages in German, with their code: the export form's refusals
by the API a shop owner meets, and hand-edited addresses (``?tss=zzz``,
``?page=abc``, a bad date) answered with a 400 page saying which parameter, never
silently ignored. Against a served shop."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from dashboard_support import (
    api_login,
    csrf_of,
    dashboard_login,
    export_rows,
    sell,
    served_shop,
    setup_tss,
)


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
        # a register no list offers (an edited form): German, its code kept
        setup, _ = setup_tss(web, h, "KASSE-02")
        form = web.get("/dashboard/exports")
        fields = {"csrf": csrf_of(form.text), "tss_id": setup, "client_id": "zzz"}
        posted = web.post("/dashboard/exports", data=fields)
        assert posted.status_code == 400
        assert "Diese Kasse ist keine Kasse der gewählten TSE" in posted.text
        assert "E_CLIENT_NOT_FOUND" in posted.text and "names no client" not in posted.text
        form = web.get("/dashboard/exports", params={"lang": "en"})
        posted = web.post("/dashboard/exports", data={"csrf": csrf_of(form.text), "tss_id": tss})
        assert posted.status_code == 409 and "the TSS is CREATED" in posted.text


def test_hand_edited_addresses_are_refused_in_the_pages_language(tmp_path: Path) -> None:
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h)
        sell(web, h, tss, cid, "1.00")
        assert dashboard_login(web, key).status_code == 303

        def refused(url: str, *texts: str) -> str:
            r = web.get(url)
            assert r.status_code == 400, (url, r.status_code)
            assert 'role="alert"' in r.text
            for text in texts:
                assert text in r.text, (url, text)
            assert '/tx/1">' not in r.text  # no hits listed as if nothing was asked
            return r.text

        page = refused("/dashboard/tx?tss=zzz&lang=de", "Keine TSE „zzz“ in Ihrer Organisation")
        assert 'id="f-tss" aria-invalid="true"' in page
        refused("/dashboard/tx?state=OPEN", "Unbekannter Zustand „OPEN“", "offen, abgeschlossen")
        refused("/dashboard/tx?page=abc", "Die Adresse ist verändert", "page=abc")
        refused("/dashboard/tx?page=0", "page=0")
        refused("/dashboard/tx?after=1.2", "after=1.2")
        refused("/dashboard/tx?before=x", "before=x")
        refused("/dashboard/tx?unread=yes", "unread=yes")
        page = refused("/dashboard/tx?from=2026-02-31", "Ungültiges Datum: Datum von (",
                       "„2026-02-31“")  # fmt: skip
        assert 'id="f-from" aria-invalid="true"' in page and 'id="f-to" aria-invalid' not in page
        refused("/dashboard/tx?to=morgen&lang=en", "Invalid date: Date to (", "&#39;morgen&#39;")
        refused("/dashboard/tx?tss=zzz", "Your organization has no TSE &#39;zzz&#39;")
        exports = web.get("/dashboard/exports?tss=zzz&lang=de")
        assert exports.status_code == 400
        assert "Keine TSE „zzz“ in Ihrer Organisation (Adresse: tss=zzz)" in exports.text

        # what the pages themselves link stays fine
        assert web.get(f"/dashboard/tx?tss={tss}&state=FINISHED&page=1").status_code == 200
        assert web.get(f"/dashboard/exports?tss={tss}").status_code == 200


def test_an_export_of_one_register_names_it_as_the_register_table_does(tmp_path: Path) -> None:
    """The TSE page showed an export of KASSE-01 as 'Kasse (Client-ID) KASSE-01', while
    its register table lists KASSE-01 as the serial number and a UUID as Client-ID."""
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h, "KASSE-01")
        sell(web, h, tss, cid, "1.00")
        export = str(uuid.uuid4())
        put = web.put(f"/api/v2/tss/{tss}/export/{export}", params={"client_id": cid}, headers=h)
        assert put.status_code == 200, put.text
        while (
            state := web.get(f"/api/v2/tss/{tss}/export/{export}", headers=h).json()["state"]
        ) in (
            "PENDING",
            "WORKING",
        ):
            pass  # until the export job has answered
        assert state == "COMPLETED"
        assert dashboard_login(web, key).status_code == 303
        tse_page = web.get(f"/dashboard/tss/{tss}", params={"lang": "de"}).text
        [row] = export_rows(tse_page)
        assert "Kasse KASSE-01" in row and "Client-ID" not in row
        # the export's page names its TSE by the serial number, as the TSE page does
        serial = re.search(r"<dt>Seriennummer</dt><dd><code[^>]*>([0-9a-f]{64})<", tse_page)
        assert serial, "the TSE page shows no serial number"
        export_page = web.get(f"/dashboard/exports/{export}").text
        assert re.search(rf'id="export-tse"><code class="wrap">{serial.group(1)}<', export_page)
