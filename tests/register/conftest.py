"""Fixtures more than one register test module uses."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opentse.testing import FrozenClock


@pytest.fixture
def tse_clock() -> FrozenClock:
    """The TSE's (and the API's) clock; a module overrides it to pin its own time."""
    return FrozenClock(1_700_000_000)


@pytest.fixture
def fiskaly_tss(
    tmp_path: Path, tse_clock: FrozenClock
) -> Iterator[Callable[[str], dict[str, str]]]:
    """``opentse serve`` (the real app, in a thread) on ``tse_clock``; called with a
    client serial number it makes an initialized TSS with that client registered and
    returns what a RemoteBackend needs: origin, tss, client (uuid), api_key,
    api_secret."""
    from opentse.testing.serving import served_installation

    with (
        served_installation(tmp_path / "data", tse_clock) as (_, origin, key),
        httpx.Client(base_url=origin, timeout=30) as api,
    ):
        credentials = {"api_key": key["api_key"], "api_secret": key["api_secret"]}
        r = api.post("/api/v2/auth", json=credentials)
        assert r.status_code == 200, r.text
        api.headers["Authorization"] = "Bearer " + r.json()["access_token"]

        def ok(response: httpx.Response) -> Any:
            assert response.status_code == 200, response.text
            return response.json()

        def new_tss(serial: str) -> dict[str, str]:
            tss, client = str(uuid.uuid4()), str(uuid.uuid4())
            puk = ok(api.put(f"/api/v2/tss/{tss}", json={}))["admin_puk"]
            ok(api.patch(f"/api/v2/tss/{tss}", json={"state": "UNINITIALIZED"}))
            body = {"admin_puk": puk, "new_admin_pin": "246810"}
            ok(api.patch(f"/api/v2/tss/{tss}/admin", json=body))
            ok(api.post(f"/api/v2/tss/{tss}/admin/auth", json={"admin_pin": "246810"}))
            ok(api.patch(f"/api/v2/tss/{tss}", json={"state": "INITIALIZED"}))
            ok(api.put(f"/api/v2/tss/{tss}/client/{client}", json={"serial_number": serial}))
            return {"origin": origin, "tss": tss, "client": client, **credentials}

        yield new_tss
