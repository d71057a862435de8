"""Fixtures: an installation in a tmp folder and an in-process app over it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.server.protocol import CoalescingHttpToolsProtocol
from opentse.testing.clock import FrozenClock
from opentse.testing.serving import serving_in_thread


def open_installation(data_dir: Path, clock: Any, database_url: str | None = None) -> Any:
    from opentse.installation import Installation

    return Installation.open(data_dir, clock=clock, database_url=database_url)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1_700_000_000)


class AppClient(httpx.Client):
    ctx: Any
    app: Any


@pytest.fixture
def app_client(tmp_path: Path, clock: FrozenClock) -> Iterator[AppClient]:
    """The app served by uvicorn in a thread on a free 127.0.0.1 port."""
    with serve_app(tmp_path / "data", clock) as client:
        yield client


@contextlib.contextmanager
def serve_app(
    data: Path, clock: Any, database_url: str | None = None, **settings: Any
) -> Iterator[AppClient]:
    """An installation in ``data`` (its store on ``database_url`` when given) served by
    uvicorn in a thread (``settings``: more ServerConfig fields)."""
    inst = open_installation(data, clock, database_url)
    app = create_app(inst, ServerConfig(data_dir=data, **settings), clock=clock)
    try:
        # the HTTP protocol as `opentse serve` runs it
        with (
            serving_in_thread(app, http=CoalescingHttpToolsProtocol) as origin,
            AppClient(base_url=origin, timeout=30) as client,
        ):
            client.ctx = app.state.ctx
            client.app = app
            yield client
    finally:
        inst.close()


def new_key(client: AppClient, org: str = "shop") -> dict[str, str]:
    ctx = client.ctx
    return create_api_key(ctx.svc, org_name=org, env="TEST", now=ctx.now())


def login(client: httpx.Client, key: dict[str, str]) -> dict[str, str]:
    r = client.post(
        "/api/v2/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def setup_tss(client: httpx.Client, h: dict[str, str]) -> tuple[str, str]:
    tss = str(uuid.uuid4())
    r = client.put(f"/api/v2/tss/{tss}", json={}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "CREATED" and len(body["admin_puk"]) >= 10
    puk = body["admin_puk"]
    r = client.patch(f"/api/v2/tss/{tss}", json={"state": "UNINITIALIZED"}, headers=h)
    assert r.status_code == 200, r.text
    r = client.patch(
        f"/api/v2/tss/{tss}/admin", json={"admin_puk": puk, "new_admin_pin": "123456"}, headers=h
    )
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v2/tss/{tss}/admin/auth", json={"admin_pin": "123456"}, headers=h)
    assert r.status_code == 200, r.text
    r = client.patch(f"/api/v2/tss/{tss}", json={"state": "INITIALIZED"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "INITIALIZED"
    cid = str(uuid.uuid4())
    r = client.put(f"/api/v2/tss/{tss}/client/{cid}", json={"serial_number": "KASSE-1"}, headers=h)
    assert r.status_code == 200, r.text
    return tss, cid


def new_key_in(data: Path) -> dict[str, str]:
    """What ``opentse apikey create`` does in a data folder, without a process of its
    own (for a server the test starts as a process afterwards)."""
    from opentse.installation import Installation
    from opentse.storage.pg_service import open_service_store

    inst = Installation.open(data)
    try:
        store = open_service_store(inst, data)
        try:
            return create_api_key(store, org_name="shop", env="TEST", now=inst.service.clock.now())
        finally:
            store.close()
    finally:
        inst.close()
