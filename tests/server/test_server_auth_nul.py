"""POST /auth with a NUL in ``api_key`` is 401 ``invalid credentials``, as any key
that does not exist. On PostgreSQL it was a 500 (its text refuses a NUL: the key
lookup failed) and uvicorn dropped the connection, so the register's next request
on it failed too. SQLite and PostgreSQL answer the same now."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_support import AppClient, login, new_key, serve_app

from opentse.testing.clock import FrozenClock

REFUSED = {
    "status_code": 401,
    "error": "Unauthorized",
    "code": "E_UNAUTHORIZED",
    "message": "invalid credentials",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppClient]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    with serve_app(tmp_path / "data", FrozenClock(1_700_000_000), url) as client:
        yield client


def test_a_nul_in_the_api_key_is_an_unknown_key(served: AppClient) -> None:
    key = new_key(served)
    for name in ("key_\x00", key["api_key"] + "\x00", "\x00"):
        r = served.post("/api/v2/auth", json={"api_key": name, "api_secret": key["api_secret"]})
        assert (r.status_code, r.json()) == (401, REFUSED), r.text
    # the same connection goes on: the right key logs in and reads
    h = login(served, key)
    assert served.get("/api/v2/tss", headers=h).status_code == 200
