"""An edited URL with a control character in a path part (``/dashboard/tss/%00``)
is a page that names nothing: 404 on SQLite and on PostgreSQL, whose text refuses a
NUL; the dashboard answered 500 there (and closed the connection). The API's path
parameters are UUIDs and answered 400 already: kept so here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_support import AppClient, login, new_key, serve_app, setup_tss

from opentse.testing.clock import FrozenClock


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppClient]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    with serve_app(tmp_path / "data", FrozenClock(1_700_000_000), url) as client:
        yield client


def test_a_control_character_in_a_path_names_nothing(served: AppClient) -> None:
    key = new_key(served)
    h = login(served, key)
    tss, _ = setup_tss(served, h)
    page = served.get("/dashboard/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    form = {"csrf": csrf.group(1), "api_key": key["api_key"], "api_secret": key["api_secret"]}
    assert served.post("/dashboard/login", data=form).status_code == 303
    for path in (
        "/dashboard/tss/%00",
        f"/dashboard/tss/{tss}%01",
        f"/dashboard/tx/{tss}/%00",
        "/dashboard/tx/%00/1",
        "/dashboard/exports/%00",
    ):
        answer = served.get(path)
        assert answer.status_code == 404, (path, answer.status_code)
        assert "text/html" in answer.headers["content-type"]
    assert served.get(f"/dashboard/tss/{tss}").status_code == 200  # the real one
    for path in ("/api/v2/tss/%00", f"/api/v2/tss/{tss}/tx/%00", f"/api/v2/tss/{tss}/client/%00"):
        answer = served.get(path, headers=h)
        assert answer.status_code == 400 and answer.json()["code"], (path, answer.text)
