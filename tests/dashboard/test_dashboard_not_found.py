"""A mistyped dashboard address answers the dashboard's own 404 page in the
visitor's language: it answered the API's JSON problem
(``{"code": "E_NOT_FOUND", ...}``), a page no shop owner can read, with no way back."""

from __future__ import annotations

from pathlib import Path

from dashboard_support import dashboard_login, served_shop


def test_unknown_dashboard_addresses_get_the_dashboards_404_page(tmp_path: Path) -> None:
    with served_shop(tmp_path) as (web, key):
        de = {"accept-language": "de"}
        before = web.get("/dashboard/transaktionen", headers=de)
        assert before.status_code == 404 and "text/html" in before.headers["content-type"]
        assert "Nicht gefunden." in before.text
        assert dashboard_login(web, key).status_code == 303
        for path in ("/dashboard/transaktionen", "/dashboard/tss/x/tx/abc", "/dashboard/tx/x"):
            page = web.get(path, headers={"accept-language": "en"})
            assert page.status_code == 404, path
            assert "text/html" in page.headers["content-type"] and "Not found." in page.text
            assert 'href="/dashboard/tx"' in page.text  # the navigation is there
        slash = web.get("/dashboard/tx/?amount=5")  # as before: to the page without it
        assert slash.status_code == 307 and slash.headers["location"] == "/dashboard/tx?amount=5"
        assert web.get("/dashboard/tx").status_code == 200
        assert web.get("/dashboard", follow_redirects=True).url.path == "/dashboard/tss"
        assert web.get("/dashboard/static/dashboard.css").status_code == 200
        assert web.get("/dashboard/static/nothing.css").status_code == 404
        api = web.get("/api/v2/nothing")  # the API keeps its problem documents
        assert api.status_code == 404 and api.json()["code"] == "E_NOT_FOUND"


def test_the_navigation_marks_the_section_of_the_page(tmp_path: Path) -> None:
    """A transaction's page (/tss/<id>/tx/<n>) was marked as the TSEs section."""
    import re

    from dashboard_support import api_login, sell, setup_tss

    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h)
        number = sell(web, h, tss, cid, "1.00")["number"]
        assert dashboard_login(web, key).status_code == 303
        for path, section in (
            (f"/dashboard/tss/{tss}/tx/{number}", "/dashboard/tx"),
            (f"/dashboard/tss/{tss}/tx/{number}/qr", "/dashboard/tx"),
            ("/dashboard/tx?amount=1", "/dashboard/tx"),
            (f"/dashboard/tss/{tss}", "/dashboard/tss"),
            ("/dashboard/tss", "/dashboard/tss"),
            ("/dashboard/exports", "/dashboard/exports"),
            ("/dashboard/warnings", "/dashboard/warnings"),
        ):
            html = web.get(path).text
            assert re.findall(r'<a href="([^"]+)" aria-current="page">', html) == [section], path
