"""``Range`` on the export download (GET /tss/{id}/export/{id}/file) of a real server.

A resuming download client sends ``Range``; one it cannot parse is ignored (RFC 9110,
section 14.2: a range unit not understood MUST be ignored, an invalid range set may
be) and the whole TAR comes back, and a range past the end is 416 with
``Content-Range: bytes */<size>`` and a fiskaly-style JSON body
(``E_RANGE_NOT_SATISFIABLE``), as every other error of the API. Starlette's own
answers were 400 and 416 text/plain bodies without a code.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import LiveServer, download_export, finished_tx, new_tss, ok


@pytest.fixture(scope="module")
def export(live: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    token = live.token(live.new_key("range"))
    with live.client(token) as c:
        tss, _ = new_tss(c, live)
        client = str(uuid.uuid4())
        ok(c.put(f"/tss/{tss}/client/{client}", json={"serial_number": "till-range"}))
        finished_tx(c, tss, client)
        tar = download_export(c, tss, tmp_path_factory.mktemp("range") / "export.tar")
        export_id = ok(c.get(f"/tss/{tss}/export"))["data"][0]["_id"]
    return {"token": token, "url": f"/tss/{tss}/export/{export_id}/file", "tar": tar}


def _get(live: LiveServer, export: dict[str, Any], rng: str, method: str = "GET") -> httpx.Response:
    with live.client(export["token"]) as c:
        return c.request(method, export["url"], headers={"Range": rng})


@pytest.mark.parametrize(
    "rng",
    ["bits=0-1", "items=0-5", "bytes=a-b", "bytes=5-2", "bytes", "bytes=", "bytes=-", "x"],
)
def test_a_range_not_understood_is_ignored(
    live: LiveServer, export: dict[str, Any], rng: str
) -> None:
    whole = Path(export["tar"]).read_bytes()
    r = _get(live, export, rng)
    assert r.status_code == 200, r.text[:200]
    assert r.content == whole
    assert _get(live, export, rng, "HEAD").status_code == 200


def test_a_range_past_the_end_is_416_with_a_problem_body(
    live: LiveServer, export: dict[str, Any]
) -> None:
    size = Path(export["tar"]).stat().st_size
    r = _get(live, export, f"bytes={size}-")
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{size}"
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["code"] == "E_RANGE_NOT_SATISFIABLE"
    assert body["status_code"] == 416
    assert str(size) in body["message"]


def test_a_good_range_is_still_served(live: LiveServer, export: dict[str, Any]) -> None:
    whole = Path(export["tar"]).read_bytes()
    r = _get(live, export, "bytes=512-1023")
    assert r.status_code == 206
    assert r.content == whole[512:1024]
    assert r.headers["content-range"] == f"bytes 512-1023/{len(whole)}"


def test_a_set_with_one_range_past_the_end_serves_the_others(
    live: LiveServer, export: dict[str, Any]
) -> None:
    """RFC 9110 14.2: a range that starts past the end is left out of the set; 416 only
    when none is left (it was 416 for 0-9 beside one past the end; review C)."""
    whole = Path(export["tar"]).read_bytes()
    r = _get(live, export, f"bytes=0-9,{len(whole) + 100}-")
    assert r.status_code == 206, r.text
    assert r.content == whole[:10]
    assert r.headers["content-range"] == f"bytes 0-9/{len(whole)}"
    r = _get(live, export, f"bytes={len(whole)}-,{len(whole) + 5}-")
    assert r.status_code == 416 and r.json()["code"] == "E_RANGE_NOT_SATISFIABLE"


def test_the_export_file_is_kept_in_no_cache(live: LiveServer, export: dict[str, Any]) -> None:
    """Receipts of an organization: with Last-Modified and no Cache-Control a browser
    till may answer a later download from its disk cache (as the dashboard: no-store)."""
    with live.client(export["token"]) as c:
        r = c.get(export["url"])
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
