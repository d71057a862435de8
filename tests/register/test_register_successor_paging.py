"""RemoteBackend's successor lookup reads every page of listClients. It read the first
100 clients of the till's serial number only, so once a serial had more (the same till
id at many TSSs, or replaced again and again) the client replacing the till's was not
seen: the till on a disabled TSS was a plain outage instead of naming its successor."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from opentse.register.backends import TSEReplaced
from opentse.register.remote import RemoteBackend
from opentse.server.service_store import ClientRow
from opentse.testing import FrozenClock
from opentse.testing.serving import served_installation

SERIAL = "KASSE-P"


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _tss_with_client(api: httpx.Client) -> tuple[str, str]:
    """A TSS made and initialized through the API, with a client of SERIAL."""
    tss, client = str(uuid.uuid4()), str(uuid.uuid4())
    puk = _ok(api.put(f"/tss/{tss}", json={}))["admin_puk"]
    _ok(api.patch(f"/tss/{tss}", json={"state": "UNINITIALIZED"}))
    _ok(api.patch(f"/tss/{tss}/admin", json={"admin_puk": puk, "new_admin_pin": "246810"}))
    _ok(api.post(f"/tss/{tss}/admin/auth", json={"admin_pin": "246810"}))
    _ok(api.patch(f"/tss/{tss}", json={"state": "INITIALIZED"}))
    _ok(api.put(f"/tss/{tss}/client/{client}", json={"serial_number": SERIAL}))
    return tss, client


def test_a_successor_after_the_first_page_of_clients_is_found(tmp_path: Path) -> None:
    clock = FrozenClock(1_700_000_000)
    with (
        served_installation(tmp_path / "data", clock) as (app, origin, key),
        httpx.Client(base_url=origin + "/api/v2", timeout=30) as api,
    ):
        credentials = {"api_key": key["api_key"], "api_secret": key["api_secret"]}
        api.headers["Authorization"] = (
            "Bearer " + _ok(api.post("/auth", json=credentials))["access_token"]
        )
        old_tss, old_client = _tss_with_client(api)
        # 100 more clients of the serial, listed before the successor: rows of the
        # service's own store, as a service with the till id at 100 other TSSs holds
        # them (made through the API, 100 TSSs take half a minute)
        svc, now = app.state.ctx.svc, clock.now()
        for _ in range(100):
            svc.add_client(
                ClientRow(
                    str(uuid.uuid4()), str(uuid.uuid4()), key["organization_id"], SERIAL,
                    "DEREGISTERED", {}, now, now,
                )
            )  # fmt: skip
        clock.advance(1)
        new_tss, new_client = _tss_with_client(api)  # the 102nd client: on the second page
        listed = _ok(api.get("/client", params={"serial_number": SERIAL, "limit": 100}))
        assert listed["count"] == 102 and new_client not in {c["_id"] for c in listed["data"]}
        path = f"/tss/{new_tss}/client/{new_client}/metadata"
        _ok(api.patch(path, json={"replaces_client": old_client}))
        _ok(api.patch(f"/tss/{old_tss}", json={"state": "DISABLED"}))
        backend = RemoteBackend(origin, key["api_key"], key["api_secret"], old_tss, old_client)
        try:
            with pytest.raises(TSEReplaced) as replaced:
                backend.check(SERIAL)
            assert replaced.value.successor == new_tss
            assert new_client in str(replaced.value)
        finally:
            backend.close()


@pytest.mark.parametrize("count", ["total", "page"])
def test_every_page_is_read_whatever_count_means(count: str) -> None:
    """fiskaly's list ``count`` may be the total or the number on the page; a page of
    150 clients is read to its end either way (stopping on a short page), and a
    service that ignores ``offset`` is not asked for ever."""
    clients = [{"_id": f"c{i:03d}", "serial_number": "K1"} for i in range(150)]

    def service(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth"):
            return httpx.Response(200, json={"access_token": "t", "refresh_token": "r"})
        offset = int(request.url.params.get("offset", "0"))
        limit = int(request.url.params.get("limit", "100"))
        page = clients[offset : offset + limit]
        shown = len(clients) if count == "total" else len(page)
        return httpx.Response(200, json={"data": page, "count": shown})

    backend = RemoteBackend(
        "http://vendor.invalid", "key", "secret", "tss", "client",
        transport=httpx.MockTransport(service),
    )  # fmt: skip
    try:
        found = backend._all_clients("K1")
    finally:
        backend.close()
    assert [c["_id"] for c in found] == [c["_id"] for c in clients]

    def ignores_offset(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth"):
            return httpx.Response(200, json={"access_token": "t", "refresh_token": "r"})
        return httpx.Response(200, json={"data": clients[:100], "count": 150})

    stubborn = RemoteBackend(
        "http://vendor.invalid", "key", "secret", "tss", "client",
        transport=httpx.MockTransport(ignores_offset),
    )  # fmt: skip
    try:
        assert len(stubborn._all_clients("K1")) == 100
    finally:
        stubborn.close()
