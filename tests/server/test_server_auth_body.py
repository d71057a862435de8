"""A malformed POST /auth names what is wrong with the credentials the caller sent.

The body is one of two alternatives (API key and secret, or a refresh token); a
refresh token that is null or too long used to be answered "body/api_key: is
required", the first alternative's complaint, although no API key was meant."""

from __future__ import annotations

from typing import Any

import pytest
from server_support import AppClient

CASES: list[tuple[Any, str]] = [
    ({"refresh_token": None}, "body/refresh_token: must be of type string"),
    ({"refresh_token": 5}, "body/refresh_token: must be of type string"),
    ({"refresh_token": "r" * 4001}, "body/refresh_token: must have at most 4000 characters"),
    ({"refresh_token": ""}, "body/refresh_token: must have at least 1 characters"),
    ({"api_key": "k"}, "body/api_secret: is required"),
    ({"api_key": 5, "api_secret": "s"}, "body/api_key: must be of type string"),
    ({}, "body/api_key: is required"),
    ({"other": "x"}, "body/api_key: is required"),
]


@pytest.mark.parametrize(("body", "message"), CASES)
def test_the_error_is_about_the_alternative_sent(
    app_client: AppClient, body: Any, message: str
) -> None:
    r = app_client.post("/api/v2/auth", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "E_FAILED_SCHEMA_VALIDATION"
    assert r.json()["message"] == message
