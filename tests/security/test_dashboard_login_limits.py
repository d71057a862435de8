"""The dashboard's login form takes what ``POST /api/v2/auth`` takes, no more.

The form reads fields of up to 16 KB (``forms.FORM_FIELD_BYTES``), the API at most
200 characters of key and secret (its AuthRequest schema). The login went on to the
failure limiter with whatever came: each key name it counts is kept for the window,
up to ``auth_limiter_entries`` (10,000) of them, so keys of 16 KB from many addresses
held about 160 MB, and each hashed a secret of any length. Now the form is held to
the API's schema first: 400 "Login failed", nothing counted, nothing hashed, as the
API answers such a body.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from live_server import LiveServer


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m is not None, html[:300]
    return m.group(1)


def test_oversized_login_fields_are_refused_before_the_limiter(tmp_path: Path) -> None:
    live = LiveServer(tmp_path / "data", tmp_path / "server.log")
    key = live.new_key_cli("limits")
    live.start()
    try:
        dash = live.origin + "/dashboard"
        with httpx.Client(timeout=60) as web:
            en = {"accept-language": "en"}
            for field, value in [("api_key", "key_" + "0" * 300), ("api_secret", "s" * 5000)] * 6:
                csrf = _csrf(web.get(dash + "/login").text)
                form = {**key, field: value, "csrf": csrf}
                r = web.post(dash + "/login", data=form, headers=en)
                assert r.status_code == 400, (field, r.status_code)
                assert "Login failed." in r.text
            # twelve refusals, none counted: the address may still log in (10 failures
            # a minute would have answered 429 now, even to the right secret)
            csrf = _csrf(web.get(dash + "/login").text)
            r = web.post(dash + "/login", data={**key, "csrf": csrf})
            assert r.status_code == 303, r.text[:300]
            assert r.headers["location"] == "/dashboard/tss"
    finally:
        live.stop()
