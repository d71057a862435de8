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
