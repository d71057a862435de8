"""Every answer says ``X-Content-Type-Options: nosniff``, and the dashboard's export
download answers ``Range`` as the API's does. Against a real ``opentse serve``.

Without nosniff a browser may sniff a JSON problem body or an export TAR as HTML:
only the dashboard's pages carried it, not the API (the hot route writes its head
itself). The dashboard's download was Starlette's FileResponse: 400 for a Range it
could not read, a text/plain 416; the API's (ExportFileResponse) ignores the one and
answers the other with ``E_RANGE_NOT_SATISFIABLE`` and ``Content-Range: bytes */size``.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import LiveServer, download_export, new_tss, ok


@pytest.fixture(scope="module")
def shop(live: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    key = live.new_key("nosniff")
    token = live.token(key)
    with live.client(token) as c:
        tss, _ = new_tss(c, live)
        client = str(uuid.uuid4())
        ok(c.put(f"/tss/{tss}/client/{client}", json={"serial_number": "till-nosniff"}))
        tar = download_export(c, tss, tmp_path_factory.mktemp("nosniff") / "export.tar")
        export_id = ok(c.get(f"/tss/{tss}/export"))["data"][0]["_id"]
    return {"key": key, "token": token, "tss": tss, "client": client, "tar": tar,
            "export_id": export_id}  # fmt: skip


def _nosniff(r: httpx.Response) -> None:
    assert r.headers.get_list("x-content-type-options") == ["nosniff"], r.headers


def test_api_answers_say_nosniff(live: LiveServer, shop: dict[str, Any]) -> None:
    tss, client = shop["tss"], shop["client"]
    with live.client(shop["token"]) as c:
        tx = str(uuid.uuid4())
        hot = c.put(f"/tss/{tss}/tx/{tx}", params={"tx_revision": 1},
                    json={"state": "ACTIVE", "client_id": client})  # fmt: skip
        assert hot.status_code == 200, hot.text
        _nosniff(hot)  # the hot route's own head
        hot_problem = c.put(f"/tss/{tss}/tx/{tx}", params={"tx_revision": 1}, content=b"{")
        assert hot_problem.status_code == 400
        _nosniff(hot_problem)
        listed = c.get("/tss")  # a Starlette route
        assert listed.status_code == 200
        _nosniff(listed)
        problem = c.get(f"/tss/{uuid.uuid4()}")  # a problem body
        assert problem.status_code == 404 and problem.json()["code"]
        _nosniff(problem)
    unauthorized = httpx.get(live.base + "/tss", timeout=30)
    assert unauthorized.status_code == 401
    _nosniff(unauthorized)
    _nosniff(httpx.get(live.origin + "/health", timeout=30))


@contextlib.contextmanager
def _dashboard(live: LiveServer, key: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.origin + "/dashboard", timeout=60) as web:
        page = web.get("/login")
        _nosniff(page)  # a dashboard page: its own header, not a second one
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        form = {"api_key": key["api_key"], "api_secret": key["api_secret"], "csrf": csrf[1]}
        assert web.post("/login", data=form).status_code == 303
        yield web


@pytest.mark.parametrize("rng", ["bits=0-1", "bytes=a-b", "bytes=5-2", "x"])
def test_the_dashboard_download_ignores_a_range_it_cannot_read(
    live: LiveServer, shop: dict[str, Any], rng: str
) -> None:
    whole = Path(shop["tar"]).read_bytes()
    with _dashboard(live, shop["key"]) as web:
        r = web.get(f"/exports/{shop['export_id']}/file", headers={"Range": rng})
    assert r.status_code == 200, r.text[:200]
    assert r.content == whole
    assert r.headers["cache-control"] == "no-store"
    _nosniff(r)


def test_the_dashboard_download_answers_416_as_the_api(
    live: LiveServer, shop: dict[str, Any]
) -> None:
    whole = Path(shop["tar"]).read_bytes()
    url = f"/exports/{shop['export_id']}/file"
    with _dashboard(live, shop["key"]) as web:
        r = web.get(url, headers={"Range": f"bytes={len(whole)}-"})
        part = web.get(url, headers={"Range": "bytes=512-1023"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(whole)}"
    assert r.headers["content-type"] == "application/json"
    assert r.json()["code"] == "E_RANGE_NOT_SATISFIABLE"
    _nosniff(r)
    assert part.status_code == 206 and part.content == whole[512:1024]
