"""A request body nested deeper than validation.MAX_BODY_DEPTH is refused before
anything is signed.

``standard_v1.other`` is free content (``{"type": "object"}``): a body nested some
300 levels deep was signed, then its answer, which repeats ``schema``, failed 500
past orjson's recursion limit (255), and so did every retry of that revision. Both
the hot route (hotpath.ServerApp._upsert) and the Starlette route (context.endpoint)
validate with validation.validate before signing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_support import AppClient, login, new_key, serve_app, setup_tss

from opentse.server.validation import MAX_BODY_DEPTH
from opentse.testing.clock import FrozenClock

# body(1).schema(2).standard_v1(3).other(4).a(5): ``other`` members start at level 5
OUTER = 4


@pytest.fixture(params=["hot", "starlette"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppClient]:
    with serve_app(tmp_path / "data", FrozenClock(1_700_000_000)) as c:
        if request.param == "starlette":
            c.app.hot_handler = None  # upsertTransaction by the router, as behind a prefix
        yield c


def _body(cid: str, levels: int) -> str:
    """A Start whose body is nested ``levels`` deep (objects in ``other``)."""
    inner = levels - OUTER  # objects at levels 5 .. levels
    nested = '{"k":' * inner + "1" + "}" * inner
    other = '{"b":1,"a":' + nested + "}"
    schema = f'{{"standard_v1":{{"other":{other}}}}}'
    return f'{{"state":"ACTIVE","client_id":"{cid}","schema":{schema}}}'


def _counter(c: AppClient, h: dict[str, str], tss: str) -> int:
    r = c.get(f"/api/v2/tss/{tss}", headers=h)
    assert r.status_code == 200, r.text
    return int(r.json()["signature_counter"])


def test_deep_body_refused_unsigned_on_every_try(client: AppClient) -> None:
    h = {**login(client, new_key(client)), "content-type": "application/json"}
    tss, cid = setup_tss(client, h)
    before = _counter(client, h, tss)
    tx = str(uuid.uuid4())
    url = f"/api/v2/tss/{tss}/tx/{tx}"
    for levels in (MAX_BODY_DEPTH + 1, 300, 300):  # the request, its retries
        r = client.put(url, params={"tx_revision": 1}, content=_body(cid, levels), headers=h)
        assert r.status_code == 400, r.text
        problem = r.json()
        assert problem["code"] == "E_FAILED_SCHEMA_VALIDATION"
        assert problem["message"].startswith("body/schema.standard_v1.other.a.k")
        assert f"nested deeper than {MAX_BODY_DEPTH} levels" in problem["message"]
    assert _counter(client, h, tss) == before  # nothing signed
    assert client.get(url, headers=h).status_code == 404


def test_body_at_the_limit_is_signed_and_answered(client: AppClient) -> None:
    h = {**login(client, new_key(client)), "content-type": "application/json"}
    tss, cid = setup_tss(client, h)
    tx = str(uuid.uuid4())
    url = f"/api/v2/tss/{tss}/tx/{tx}"
    body = _body(cid, MAX_BODY_DEPTH)
    for _ in range(2):  # and its retry: the stored answer
        r = client.put(url, params={"tx_revision": 1}, content=body, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["number"] == 1 and r.json()["state"] == "ACTIVE"
