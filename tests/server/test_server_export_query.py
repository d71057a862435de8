"""triggerExport's numeric filters refuse what is no whole number >= 0 with a message
that says so (it was "must be a number", also for -1, which is one)."""

from __future__ import annotations

import uuid

import pytest
from server_support import AppClient, login, new_key, setup_tss


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("start_date", "-1"),
        ("end_date", "1.5"),
        ("transaction_number", "abc"),
        ("start_signature_counter", "1" * 17),
        ("maximum_number_records", "+5"),
    ],
)
def test_a_filter_that_is_no_whole_number_says_what_is_wanted(
    app_client: AppClient, name: str, value: str
) -> None:
    h = login(app_client, new_key(app_client))
    tss, _ = setup_tss(app_client, h)
    r = app_client.put(f"/api/v2/tss/{tss}/export/{uuid.uuid4()}", params={name: value}, headers=h)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "E_FAILED_SCHEMA_VALIDATION"
    assert r.json()["message"] == (
        f"querystring/{name} must be a whole number >= 0 (at most 16 digits)"
    )


@pytest.mark.parametrize(
    ("params", "what"),
    [
        ({"start_transaction_number": "9", "end_transaction_number": "3"}, "transaction number"),
        ({"start_date": "1700000100", "end_date": "1700000000"}, "date"),
        ({"start_signature_counter": "50", "end_signature_counter": "2"}, "signature counter"),
    ],
)
def test_a_range_that_ends_before_it_starts_is_refused_at_once(
    app_client: AppClient, params: dict[str, str], what: str
) -> None:
    """It was accepted (200, PENDING) and the job then ended ERROR E_BAD_REQUEST with
    no word on why; now 400 at the trigger, and no export exists."""
    h = login(app_client, new_key(app_client))
    tss, _ = setup_tss(app_client, h)
    export = f"/api/v2/tss/{tss}/export/{uuid.uuid4()}"
    r = app_client.put(export, params=params, headers=h)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "E_PARAMETER_MISMATCH"
    assert r.json()["message"] == f"{what} range starts after it ends"
    assert app_client.get(export, headers=h).status_code == 404
