"""Client lists filter on fiskaly's ``state``, and take no ``states[]``, as fiskaly.

A review found that ``states[]`` filters the transaction lists and not the client
lists. fiskaly's contract (OpenAPI v2.1.35, listClients and listAllClients) gives the
client lists one ``state`` (REGISTERED or DEREGISTERED) and no ``states``; a query
parameter an operation does not declare is not read, by fiskaly nor here. So a
client list with ``states[]`` answers what it answers without it (a POS that sends
the transaction lists' ``states[]=ACTIVE`` to every list is not refused), and
``state`` filters. Pinned here, with the served OpenAPI document saying the same."""

from __future__ import annotations

import uuid

from server_support import AppClient, login, new_key, setup_tss


def test_client_lists_take_state_and_not_states(app_client: AppClient) -> None:
    c = app_client
    h = login(c, new_key(c))
    tss, first = setup_tss(c, h)  # KASSE-1, the admin logged in
    gone = str(uuid.uuid4())
    r = c.put(f"/api/v2/tss/{tss}/client/{gone}", json={"serial_number": "KASSE-2"}, headers=h)
    assert r.status_code == 200, r.text
    r = c.patch(f"/api/v2/tss/{tss}/client/{gone}", json={"state": "DEREGISTERED"}, headers=h)
    assert r.status_code == 200 and r.json()["state"] == "DEREGISTERED", r.text

    def listed(path: str, **query: str) -> tuple[int, list[str]]:
        r = c.get(path, params=query, headers=h)
        assert r.status_code == 200, r.text
        return r.json()["count"], sorted(x["_id"] for x in r.json()["data"])

    both = (2, sorted([first, gone]))
    for path in (f"/api/v2/tss/{tss}/client", "/api/v2/client"):
        assert listed(path) == both
        assert listed(path, state="DEREGISTERED") == (1, [gone])
        assert listed(path, state="REGISTERED") == (1, [first])
        for states in ("DEREGISTERED", "REGISTERED", "ACTIVE"):
            assert listed(path, **{"states[]": states}) == both, (path, states)
            assert listed(path, **{"states[0]": states}) == both, (path, states)
        r = c.get(path, params={"state": "ACTIVE"}, headers=h)
        assert (r.status_code, r.json()["code"]) == (400, "E_FAILED_SCHEMA_VALIDATION")

    document = c.get("/api/v2/openapi.json").json()
    for path in ("/api/v2/tss/{tss_id}/client", "/api/v2/client"):
        names = {p["name"] for p in document["paths"][path]["get"]["parameters"]}
        assert "state" in names and "states" not in names, (path, names)
    tx_list = document["paths"]["/api/v2/tss/{tss_id}/tx"]["get"]["parameters"]
    assert "states" in {p["name"] for p in tx_list}
