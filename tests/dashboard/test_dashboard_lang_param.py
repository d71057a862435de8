"""``?lang=`` as a shop owner types it (dashboard/i18n.py, routes.py).

``?lang=EN`` or ``?lang=en-GB`` (a tag as the browser writes it) was ignored: the page
stayed German. A language the dashboard does not have (``?lang=fr``) was ignored
without a word. It is a display preference, not a filter: unlike a search field (a
400 page, as a wrong filter would list other receipts), the page is still shown, in
the language the cookie or the browser picks, with a note naming the languages
there are, and nothing is remembered."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from dashboard_support import dashboard_login, served_shop

from opentse.dashboard import i18n
from opentse.dashboard.session import LANG_COOKIE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("en", "en"),
        ("EN", "en"),
        (" de ", "de"),
        ("en-GB", "en"),
        ("de_AT", "de"),
        ("De-de", "de"),
        ("fr", None),
        ("", None),
        (None, None),
        ("english", None),
        ("en-", "en"),
        ("-en", None),
    ],
)
def test_query_language(value: str | None, expected: str | None) -> None:
    assert i18n.query_language(value) == expected


def test_the_lang_parameter_as_typed(tmp_path: Path) -> None:
    with served_shop(tmp_path) as (web, key):
        # any letter case and a region: the page in that language, remembered
        page = web.get("/dashboard/login", params={"lang": "EN"})
        assert page.status_code == 200
        assert '<html lang="en">' in page.text and "Log in" in page.text
        assert web.cookies.get(LANG_COOKIE) == "en"
        assert "lang_unknown" not in page.text and 'class="note" role="status"' not in page.text
        web.cookies.clear()
        page = web.get("/dashboard/login", params={"lang": "de-AT"})
        assert '<html lang="de">' in page.text and web.cookies.get(LANG_COOKIE) == "de"

        # a language there is none of: the page as without it (cookie: German), a note
        french = web.get("/dashboard/login", params={"lang": "fr"})
        assert french.status_code == 200
        assert '<html lang="de">' in french.text
        assert "Die Sprache „fr“ gibt es hier nicht" in french.text
        assert "Deutsch (de)" in french.text and "English (en)" in french.text
        assert web.cookies.get(LANG_COOKIE) == "de"  # unchanged, not "fr"
        # the browser's language still counts, and the note follows the page
        web.cookies.clear()
        english = web.get(
            "/dashboard/login", params={"lang": "fr"}, headers={"accept-language": "en"}
        )
        assert '<html lang="en">' in english.text
        assert "There is no language 'fr' here" in html.unescape(english.text)
        assert web.cookies.get(LANG_COOKIE) is None
        # what was typed is shown escaped and cut short
        odd = web.get("/dashboard/login", params={"lang": "<b>" + "x" * 200})
        assert odd.status_code == 200 and "<b>x" not in odd.text
        assert "„&lt;b&gt;" + "x" * 17 + "“" in odd.text  # 20 characters

        # logged in, on a page behind the login, the same
        web.cookies.clear()
        assert dashboard_login(web, key).status_code == 303
        tses = web.get("/dashboard/tss", params={"lang": "xx"})
        assert tses.status_code == 200 and "Die Sprache „xx“ gibt es hier nicht" in tses.text
        assert web.get("/dashboard/tss").text.count('class="note" role="status"') == 0
