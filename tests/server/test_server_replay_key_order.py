"""A retried revision whose ``standard_v1.other`` lists its members in another order
is the same request (server/replay.py): JSON object member order carries no meaning
(RFC 8259 section 4), and a POS that rebuilds its body from a dict may reorder. It
was refused 409 ``E_TX_REVISION_CONFLICT`` because the signed JSON text was compared.
The retry answers what was signed first and signs nothing; arrays keep their order,
and another value (``true`` is not ``1``) is still a change."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from server_support import AppClient, login, new_key, setup_tss

FIRST = {"zone": "B", "guest": {"name": "Ana", "seats": [2, {"row": 1, "col": 4}]}, "n": 1.5}
REORDERED = {"n": 1.5, "guest": {"seats": [2, {"col": 4, "row": 1}], "name": "Ana"}, "zone": "B"}


def _body(client_id: str, state: str, other: dict[str, Any]) -> dict[str, Any]:
    return {"state": state, "client_id": client_id, "schema": {"standard_v1": {"other": other}}}


def test_a_retry_with_reordered_object_members_is_the_same_request(
    app_client: AppClient,
) -> None:
    h = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, h)
    tx = str(uuid.uuid4())

    def put(rev: int, body: dict[str, Any]) -> Any:
        # the body's text as sent: json= keeps the dict's order
        return app_client.put(
            f"/api/v2/tss/{tss}/tx/{tx}", params={"tx_revision": rev}, json=body, headers=h
        )

    def counter() -> int:
        return int(app_client.get(f"/api/v2/tss/{tss}", headers=h).json()["signature_counter"])

    # revision 1 (the quick path: the engine finds the ref) and revision 2, a Finish
    # (the full path: the stored log)
    signed = [put(1, _body(cid, "ACTIVE", FIRST)), put(2, _body(cid, "FINISHED", FIRST))]
    assert [r.status_code for r in signed] == [200, 200], signed[-1].text
    before = counter()
    for rev, state, first in ((1, "ACTIVE", signed[0]), (2, "FINISHED", signed[1])):
        again = put(rev, _body(cid, state, REORDERED))
        assert again.status_code == 200, again.text
        answer = again.json()
        assert answer["signature"] == first.json()["signature"]
        # processData stays the text signed first, member order included
        raw = answer["schema"]["raw"]
        assert raw == first.json()["schema"]["raw"]
        assert (
            base64.b64decode(raw["process_data"])
            == json.dumps(FIRST, separators=(",", ":")).encode()
        )
    assert counter() == before  # nothing signed again

    # an array in another order, or another value, is a change
    for changed in (
        {**REORDERED, "guest": {"seats": [{"col": 4, "row": 1}, 2], "name": "Ana"}},
        {**REORDERED, "n": 1.25},
        {**REORDERED, "zone": "C"},
        {**REORDERED, "extra": None},
    ):
        r = put(2, _body(cid, "FINISHED", changed))
        assert r.status_code == 409, (changed, r.text)
        assert r.json()["code"] == "E_TX_REVISION_CONFLICT"
        assert "(schema differ)" in r.json()["message"]
    # JSON true is no 1 (Python's True == 1 must not make them equal)
    tx2 = str(uuid.uuid4())
    first = app_client.put(
        f"/api/v2/tss/{tss}/tx/{tx2}",
        params={"tx_revision": 1},
        json=_body(cid, "ACTIVE", {"paid": True}),
        headers=h,
    )
    assert first.status_code == 200, first.text
    one = app_client.put(
        f"/api/v2/tss/{tss}/tx/{tx2}",
        params={"tx_revision": 1},
        json=_body(cid, "ACTIVE", {"paid": 1}),
        headers=h,
    )
    assert one.status_code == 409, one.text
    assert counter() == before + 1
