"""An API path with a trailing slash (``/api/v2/tss/``) is a 404 in fiskaly's shape.

Starlette's router answered it 307 with an absolute ``Location`` made of the Host
header and the scheme the server saw: behind a proxy that ends TLS that is plain
http, and either way a body-less answer a POS does not follow for a PUT and cannot
read as a problem. fiskaly's paths have no trailing slash; the message names the
path without it when that is a route. The dashboard keeps its own redirects.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from opentse.testing.serving import serve_process, session_fields


def _login(client: httpx.Client, key: str, secret: str) -> dict[str, str]:
    r = client.post("/api/v2/auth", json={"api_key": key, "api_secret": secret})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_trailing_slash_is_a_fiskaly_404_over_tls(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serve_process(data, lan=True) as origin:  # serve --lan: HTTPS
        assert origin.startswith("https://")
        fields = session_fields((data / "LAN-TSE-Session.txt").read_text())
        with httpx.Client(base_url=origin, verify=False, timeout=30) as c:
            h = _login(c, fields["API key"], fields["API secret"])
            tss = str(uuid.uuid4())
            tx = f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}"
            cases = [
                ("GET", "/api/v2/tss/", "/api/v2/tss"),
                ("PUT", f"/api/v2/tss/{tss}/", f"/api/v2/tss/{tss}"),
                ("PUT", tx + "/", tx),  # beside the hot route
                ("GET", "/api/v2/tx/", "/api/v2/tx"),
                ("POST", "/api/v2/auth/", "/api/v2/auth"),
                ("GET", "/api/v2/nothing/", None),
            ]
            for method, path, bare in cases:
                r = c.request(method, path, json={}, headers=h)
                assert r.status_code == 404, (method, path, r.status_code, r.headers)
                assert "location" not in r.headers
                assert r.headers["request-id"]
                body = r.json()
                assert body["code"] == "E_NOT_FOUND" and body["error"] == "Not Found", body
                assert body["status_code"] == 404 and set(body) == {
                    "status_code", "error", "code", "message"
                }  # fmt: skip
                if bare is None:
                    assert body["message"] == f"no API route {path}", body
                else:
                    assert body["message"] == (
                        f"no API route {path}; API paths have no trailing slash: {bare}"
                    ), body
            # nothing was created by the slashed PUT; the path without it works
            assert c.get(f"/api/v2/tss/{tss}", headers=h).status_code == 404
            assert c.get("/api/v2/tss", headers=h).status_code == 200
            # the dashboard (a browser) still goes to its page, relative to this origin
            r = c.get("/")
            assert r.status_code == 307 and r.headers["location"] == "/dashboard/"
