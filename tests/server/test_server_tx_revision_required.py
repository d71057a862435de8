"""upsertTransaction without ``tx_revision``: fiskaly's 400, nothing signed.

fiskaly's text for upsertTransaction: "The query string for this endpoint must
include the tx_revision parameter". opentse took a missing one as the next revision,
so a PUT retried after a lost answer signed a second revision (an Update log the
register never meant). Now 400 ``E_TX_UPSERT`` with fiskaly's error body.
"""

from __future__ import annotations

import uuid

import pytest
from server_support import AppClient, login, new_key, setup_tss


@pytest.mark.parametrize("query", ["", "?tx_revision="])
def test_a_put_without_tx_revision_is_refused_and_signs_nothing(
    app_client: AppClient, query: str
) -> None:
    h = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, h)
    api = f"/api/v2/tss/{tss}"
    counter = app_client.get(api, headers=h).json()["signature_counter"]
    active = {"state": "ACTIVE", "client_id": cid}

    new = f"{api}/tx/{uuid.uuid4()}"
    r = app_client.put(new + query, json=active, headers=h)
    assert r.status_code == 400, r.text
    assert r.json() == {
        "status_code": 400,
        "error": "Bad Request",
        "code": "E_TX_UPSERT",
        "message": "the query string must include tx_revision: 1 to start a transaction, "
        "then one more on each call (1 is next)",
    }
    assert app_client.get(new, headers=h).status_code == 404
    assert app_client.get(api, headers=h).json()["signature_counter"] == counter

    started = f"{api}/tx/{uuid.uuid4()}"
    assert app_client.put(started + "?tx_revision=1", json=active, headers=h).status_code == 200
    r = app_client.put(started + query, json=active, headers=h)  # a retry, say
    assert r.status_code == 400 and r.json()["code"] == "E_TX_UPSERT", r.text
    assert r.json()["message"].endswith("(2 is next)")
    assert app_client.get(started, headers=h).json()["latest_revision"] == 1
