"""Helpers of the dashboard tests: set up a TSS through the HTTP API as a POS does
(auth, PUT tss, UNINITIALIZED, admin PIN with the PUK, admin auth, INITIALIZED,
PUT client) and sign receipts, with any httpx-compatible client."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from opentse.installation import Installation
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.testing.serving import serving_in_thread

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def api_login(client: httpx.Client, key: dict[str, str]) -> dict[str, str]:
    r = client.post(
        "/api/v2/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def setup_tss(
    client: httpx.Client, h: dict[str, str], register: str = "KASSE-01"
) -> tuple[str, str]:
    tss = str(uuid.uuid4())
    r = client.put(f"/api/v2/tss/{tss}", json={}, headers=h)
    assert r.status_code == 200, r.text
    puk = r.json()["admin_puk"]
    r = client.patch(f"/api/v2/tss/{tss}", json={"state": "UNINITIALIZED"}, headers=h)
    assert r.status_code == 200, r.text
    r = client.patch(
        f"/api/v2/tss/{tss}/admin", json={"admin_puk": puk, "new_admin_pin": "123456"}, headers=h
    )
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v2/tss/{tss}/admin/auth", json={"admin_pin": "123456"}, headers=h)
    assert r.status_code == 200, r.text
    r = client.patch(f"/api/v2/tss/{tss}", json={"state": "INITIALIZED"}, headers=h)
    assert r.status_code == 200 and r.json()["state"] == "INITIALIZED", r.text
    cid = str(uuid.uuid4())
    r = client.put(f"/api/v2/tss/{tss}/client/{cid}", json={"serial_number": register}, headers=h)
    assert r.status_code == 200, r.text
    return tss, cid


def sell(
    client: httpx.Client, h: dict[str, str], tss: str, cid: str, amount: str, cash: bool = True
) -> dict[str, Any]:
    """One receipt: revision 1 ACTIVE, revision 2 FINISHED with standard_v1.receipt."""
    tx = str(uuid.uuid4())
    r = client.put(
        f"/api/v2/tss/{tss}/tx/{tx}",
        params={"tx_revision": 1},
        json={"state": "ACTIVE", "client_id": cid},
        headers=h,
    )
    assert r.status_code == 200, r.text
    receipt = {
        "receipt_type": "RECEIPT",
        "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": amount}],
        "amounts_per_payment_type": [
            {"payment_type": "CASH" if cash else "NON_CASH", "amount": amount}
        ],
    }
    r = client.put(
        f"/api/v2/tss/{tss}/tx/{tx}",
        params={"tx_revision": 2},
        json={
            "state": "FINISHED",
            "client_id": cid,
            "schema": {"standard_v1": {"receipt": receipt}},
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "page has no CSRF token"
    return found.group(1)


def dashboard_login(client: httpx.Client, key: dict[str, str]) -> httpx.Response:
    page = client.get("/dashboard/login")
    assert page.status_code == 200
    return client.post(
        "/dashboard/login",
        data={
            "csrf": csrf_of(page.text),
            "api_key": key["api_key"],
            "api_secret": key["api_secret"],
        },
    )


@contextmanager
def served_shop(tmp_path: Path) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """A served app (uvicorn on loopback) with one organization's API key, and a client
    of it that is not logged in yet."""
    data = tmp_path / "data"
    inst = Installation.open(data)
    app = create_app(inst, ServerConfig(data_dir=data))
    try:
        with serving_in_thread(app) as base, httpx.Client(base_url=base, timeout=60) as web:
            ctx = app.state.ctx
            yield web, create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
    finally:
        inst.close()


OPENTSE = str(Path(sys.executable).parent / "opentse")


def opentse(*args: str) -> str:
    """Run the ``opentse`` console script; it must succeed. Its stdout."""
    done = subprocess.run(
        [OPENTSE, *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def export_rows(html: str) -> list[str]:
    """The export rows of the TSE page, as text (tags stripped)."""
    section = html.split('id="exps"', 1)[1]
    rows = re.findall(r'<tr class="export-[a-z]+">(.*?)</tr>', section, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", r).split()) for r in rows]
