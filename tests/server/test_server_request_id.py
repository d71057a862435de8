"""fiskaly "Request IDs": every answer carries a ``request-id`` header, the register's
own when it sent one, else one the server made; problem bodies keep fiskaly's four
fields. Against a served app (uvicorn), hot route and Starlette routes alike."""

from __future__ import annotations

import uuid

import httpx
from server_support import AppClient, login, new_key, setup_tss

PROBLEM_FIELDS = {"status_code", "error", "code", "message"}


def _rid(r: httpx.Response) -> str:
    values = r.headers.get_list("request-id")
    assert len(values) == 1, (r.request.method, r.request.url, r.headers)
    return values[0]


def test_every_answer_names_its_request(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, h)
    tx = str(uuid.uuid4())
    url = f"/api/v2/tss/{tss}/tx/{tx}"
    answers = [
        # the hot route: signed, replayed, refused before and after the handler
        app_client.put(
            url, params={"tx_revision": 1}, json={"state": "ACTIVE", "client_id": cid}, headers=h
        ),
        app_client.put(
            url, params={"tx_revision": 1}, json={"state": "ACTIVE", "client_id": cid}, headers=h
        ),
        app_client.put(
            url, params={"tx_revision": 5}, json={"state": "ACTIVE", "client_id": cid}, headers=h
        ),
        app_client.put(url, params={"tx_revision": 2}, json={"state": "ACTIVE", "client_id": cid}),
        app_client.put(url, params={"tx_revision": 2}, content=b"{", headers=h),
        app_client.put(url, params={"tx_revision": 2}, content=b" " * (1024 * 1024 + 1), headers=h),
        # the router's routes, answers and problems, and the dashboard
        app_client.get(f"/api/v2/tss/{tss}/tx/{tx}", headers=h),
        app_client.get(f"/api/v2/tss/{tss}", headers=h),
        app_client.get("/api/v2/tss/not-a-uuid", headers=h),
        app_client.post("/api/v2/auth", json={"api_key": "x", "api_secret": "y"}),
        app_client.get("/api/v2/no-such-route"),
        app_client.delete("/api/v2/tss"),
        app_client.get("/health"),
        app_client.head("/health"),
        app_client.get("/api/v2/openapi.json"),
        app_client.get("/"),
    ]
    statuses = [r.status_code for r in answers]
    assert statuses[:6] == [200, 200, 400, 401, 400, 413], statuses
    assert 200 in statuses[6:] and 404 in statuses[6:] and 405 in statuses[6:]
    ids = [_rid(r) for r in answers]
    assert len(set(ids)) == len(ids)  # one per request, retries included
    assert all(0 < len(i) <= 128 and i.isascii() and i.isprintable() for i in ids)
    for r in answers:
        if r.status_code >= 400 and r.request.method != "HEAD":
            # fiskaly's error schemas have these four fields and no request id
            assert r.json().keys() == PROBLEM_FIELDS, r.text


def test_the_registers_own_request_id_is_answered(app_client: AppClient) -> None:
    """fiskaly: the identifier "needs to be generated and set by the ERS"; the answer
    names it, so the register's logs and ours meet on one id."""
    h = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, h)
    tx = str(uuid.uuid4())
    url = f"/api/v2/tss/{tss}/tx/{tx}"
    mine = str(uuid.uuid4())
    signed = app_client.put(
        url,
        params={"tx_revision": 1},
        json={"state": "ACTIVE", "client_id": cid},
        headers={**h, "request-id": mine},
    )
    assert signed.status_code == 200 and _rid(signed) == mine
    refused = app_client.put(
        url,
        params={"tx_revision": 7},
        json={"state": "ACTIVE", "client_id": cid},
        headers={**h, "Request-ID": "pos-42/retry-1"},
    )
    assert refused.status_code == 400 and _rid(refused) == "pos-42/retry-1"
    read = app_client.get(url, headers={**h, "request-id": mine})
    assert read.status_code == 200 and _rid(read) == mine

    # what cannot be a header value of ours is not echoed: a new id instead
    for unusable in ("two words", "x" * 129, "tab\there"):
        r = app_client.get("/health", headers={"request-id": unusable})
        assert r.status_code == 200 and _rid(r) != unusable and " " not in _rid(r)
