"""RemoteBackend's HTTP behaviour without a server: retries with backoff on 5xx/429
(``Retry-After`` honoured), one re-login on 401, errors with the service's code.
httpx's MockTransport stands in for the network (not one of our components)."""

from __future__ import annotations

import json

import httpx
import pytest

from opentse.register.backends import TSEUnavailable
from opentse.register.remote import RemoteBackend, RemoteError, tx_id_for

TSS = "9b6a8f1e-0000-4000-8000-000000000001"
CLIENT = "9b6a8f1e-0000-4000-8000-000000000002"


def backend(handler: object, sleeps: list[float]) -> RemoteBackend:
    return RemoteBackend(
        "http://tse.invalid",
        "key",
        "secret",
        TSS,
        CLIENT,
        retries=3,
        backoff=0.1,
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
        sleep=sleeps.append,
    )


def auth_response(token: str) -> httpx.Response:
    body = {"access_token": token, "refresh_token": "r-" + token, "access_token_expires_in": 300}
    return httpx.Response(200, json=body)


def test_retries_5xx_and_429_with_backoff_and_retry_after() -> None:
    answers = iter([503, 429, 200])
    sleeps: list[float] = []
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/auth":
            return auth_response("t1")
        seen.append(request.headers["Authorization"])
        status = next(answers)
        headers = {"Retry-After": "2"} if status == 429 else {}
        return httpx.Response(status, json={"serial_number": "ab" * 32}, headers=headers)

    b = backend(handler, sleeps)
    assert b.serial_number() == "ab" * 32
    assert sleeps == [0.1, 2.0]  # exponential backoff, then the server's Retry-After
    assert seen == ["Bearer t1"] * 3
    b.close()


def test_gives_up_after_retries_as_unavailable() -> None:
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/auth":
            return auth_response("t1")
        raise httpx.ConnectError("refused", request=request)

    b = backend(handler, sleeps)
    with pytest.raises(TSEUnavailable) as info:
        b.serial_number()
    assert info.value.code == "E_TSE_UNAVAILABLE"
    assert sleeps == [0.1, 0.2, 0.4]
    b.close()


def test_401_logs_in_again_with_refresh_token_once() -> None:
    logins: list[dict[str, str]] = []
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/auth":
            logins.append(json.loads(request.content))
            return auth_response(f"t{len(logins)}")
        calls.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Bearer t1":
            return httpx.Response(401, json={"code": "E_UNAUTHORIZED", "message": "expired"})
        return httpx.Response(200, json={"serial_number": "cd" * 32})

    b = backend(handler, [])
    assert b.serial_number() == "cd" * 32
    assert logins == [{"api_key": "key", "api_secret": "secret"}, {"refresh_token": "r-t1"}]
    assert calls == ["Bearer t1", "Bearer t2"]
    assert "secret" not in repr(b)
    b.close()


def test_client_errors_keep_the_service_code() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/auth":
            return auth_response("t1")
        body = {"status_code": 409, "code": "E_TX_ILLEGAL_TYPE_CHANGE", "message": "no"}
        return httpx.Response(409, json=body)

    b = backend(handler, [])
    with pytest.raises(RemoteError) as info:
        b.start("KASSE", "Kassenbeleg-V1", ref="abc:start")
    assert info.value.code == "E_TX_ILLEGAL_TYPE_CHANGE" and info.value.http_status == 409
    b.close()


def test_transaction_ids_follow_the_receipt_ref() -> None:
    assert tx_id_for("r-1:start") == tx_id_for("r-1:finish") != tx_id_for("r-2:start")
