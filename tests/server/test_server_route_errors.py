"""An unknown API route or a method a route does not take: fiskaly's problem body
with a message that names the route and the methods it takes. It said only 'Not
Found' or 'Method Not Allowed', and a POS developer had to guess which part of the
request was wrong. Outside /api/ the messages stay as they were."""

from __future__ import annotations

import uuid

from server_support import AppClient, login, new_key, setup_tss


def test_route_errors_name_the_route(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))
    tss, _ = setup_tss(app_client, h)
    tx = f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}"
    for method, path, allowed in (
        ("POST", tx, "GET, HEAD, PUT"),
        ("DELETE", f"/api/v2/tss/{tss}", "GET, HEAD, PATCH, PUT"),
        ("PUT", "/api/v2/auth", "POST"),
    ):
        r = app_client.request(method, path, json={}, headers=h)
        assert r.status_code == 405, (method, path, r.text)
        assert r.json() == {
            "status_code": 405,
            "error": "Method Not Allowed",
            "code": "E_METHOD_NOT_ALLOWED",
            "message": f"{method} is not allowed on {path}; it takes {allowed}",
        }
        assert sorted(m.strip() for m in r.headers["allow"].split(",")) == allowed.split(", ")
    for path in ("/api/v2/tss/x/nothing", "/api/v3/tss", "/api/v2/transactions"):
        r = app_client.get(path, headers=h)
        assert r.status_code == 404, r.text
        assert r.json() == {
            "status_code": 404,
            "error": "Not Found",
            "code": "E_NOT_FOUND",
            "message": f"no API route {path}",
        }
    r = app_client.get("/nothing")
    assert (r.status_code, r.json()["message"]) == (404, "Not Found")
