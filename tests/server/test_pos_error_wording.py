"""What a POS developer reads in a 400 points at the part of the request that is
wrong: a transaction's ``client_id`` that is no UUID is in the body (it said
``params/client_id``, sending them to look at the path), and a body that is no
object is the body itself (it said ``body/must be of type object``). Hot route and
router alike, against a served app."""

from __future__ import annotations

import uuid

from server_support import AppClient, login, new_key, setup_tss


def test_messages_name_the_body(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))
    tss, cid = setup_tss(app_client, h)
    url = f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}"
    for route in (url, url.replace(tss, tss.upper())):  # both take the hot route
        r = app_client.put(
            route, params={"tx_revision": 1}, json={"state": "ACTIVE", "client_id": "KASSE-1"},
            headers=h,
        )  # fmt: skip
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "E_FAILED_SCHEMA_VALIDATION"
        assert r.json()["message"] == "body/client_id must be a UUID"
    # the path's own ids are still named as params
    bad_path = app_client.put(
        f"/api/v2/tss/{tss}/tx/not-a-uuid", params={"tx_revision": 1},
        json={"state": "ACTIVE", "client_id": cid}, headers=h,
    )  # fmt: skip
    assert bad_path.json()["message"] == "params/tx_id_or_number must be a UUID"

    for body in (b"[]", b"null", b"7"):
        for path in (url + "?tx_revision=1", f"/api/v2/tss/{tss}/client/{uuid.uuid4()}"):
            r = app_client.put(
                path, content=body, headers={**h, "Content-Type": "application/json"}
            )
            assert r.status_code == 400, (path, body, r.text)
            message = r.json()["message"]
            assert message.startswith("body: ") or message.startswith("body/"), message
            assert not message.startswith("body/must"), message
    r = app_client.put(url + "?tx_revision=1", content=b"[]", headers=h)
    assert r.json()["message"] == "body: must be of type object"


def test_a_state_filter_names_the_states_it_takes(app_client: AppClient) -> None:
    h = login(app_client, new_key(app_client))
    tss, _ = setup_tss(app_client, h)
    for path, allowed in (
        (f"/api/v2/tss/{tss}/tx", "ACTIVE, CANCELLED, FINISHED"),
        ("/api/v2/tx", "ACTIVE, CANCELLED, FINISHED"),
    ):
        r = app_client.get(path, params={"states[]": "DONE"}, headers=h)
        assert r.status_code == 400 and r.json()["code"] == "E_FAILED_SCHEMA_VALIDATION"
        # it read "querystring/states must be of ACTIVE, ..."
        assert r.json()["message"] == f"querystring/states must be one of {allowed}"


def test_reading_a_transaction_by_something_else_names_both_forms(app_client: AppClient) -> None:
    """The reads take a transaction number as well as a UUID; their refusal said only
    'must be a UUID', also for a number too long to be one."""
    h = login(app_client, new_key(app_client))
    tss, _ = setup_tss(app_client, h)
    for raw in ("not-a-uuid", "1" * 17, "-1", "1.5"):
        for suffix in ("", "/log", "/metadata"):
            r = app_client.get(f"/api/v2/tss/{tss}/tx/{raw}{suffix}", headers=h)
            assert r.status_code == 400, (raw, suffix, r.text)
            assert r.json()["code"] == "E_FAILED_SCHEMA_VALIDATION"
            assert r.json()["message"] == (
                "params/tx_id_or_number must be a UUID or a transaction number "
                "(0..9007199254740991)"
            )
    assert app_client.get(f"/api/v2/tss/{tss}/tx/1", headers=h).status_code == 404
