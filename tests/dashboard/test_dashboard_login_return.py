"""A dashboard page opened without a session (a bookmarked search, a link to a
receipt, a session that ran out after its 8 hours) is shown again after the login;
the login always went to the TSE list, and the receipt had to be searched anew.
Only the dashboard's own pages are returned to: never another site."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from dashboard_support import csrf_of, served_shop


def test_the_login_returns_to_the_page_asked_for(tmp_path: Path) -> None:
    with served_shop(tmp_path) as (web, key):
        asked = web.get("/dashboard/tx?amount=12,50&register=KASSE-01")
        assert asked.status_code == 303
        login = asked.headers["location"]
        assert urlsplit(login).path == "/dashboard/login"
        wanted = parse_qs(urlsplit(login).query)["next"][0]
        assert wanted == "/dashboard/tx?amount=12,50&register=KASSE-01"
        form = web.get(login)
        assert f'name="next" value="{wanted.replace("&", "&amp;")}"' in form.text
        done = web.post(
            "/dashboard/login",
            data={"csrf": csrf_of(form.text), "next": wanted, **key},
        )
        assert done.status_code == 303 and done.headers["location"] == wanted
        back = web.get(wanted)  # the search asked for (this shop has no KASSE-01: refused)
        assert back.status_code == 400 and 'value="12,50"' in back.text
        # logged in, the login page sends there at once
        again = web.get("/dashboard/login", params={"next": "/dashboard/exports"})
        assert again.headers["location"] == "/dashboard/exports"


def test_the_login_never_sends_to_another_site(tmp_path: Path) -> None:
    with served_shop(tmp_path) as (web, key):
        assert web.get("/dashboard/").headers["location"] == "/dashboard/login"
        for evil in (
            "https://evil.example/dashboard/tx",
            "//evil.example/dashboard/tx",
            "/dashboard//evil.example",
            "/dashboard/\\evil.example",
            "/api/v2/tss",
            "/dashboard/login?next=/dashboard/tx",
            "",
        ):
            web.cookies.clear()
            form = web.get("/dashboard/login", params={"next": evil})
            assert 'name="next" value="/dashboard/tss"' in form.text, evil
            done = web.post(
                "/dashboard/login", data={"csrf": csrf_of(form.text), "next": evil, **key}
            )
            assert done.headers["location"] == "/dashboard/tss", evil
