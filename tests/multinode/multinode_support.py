"""What the multinode tests do through the API of a running node."""

from __future__ import annotations

import uuid

import httpx


def setup_tss(client: httpx.Client, h: dict[str, str], serial: str = "KASSE-1") -> tuple[str, str]:
    """The fiskaly flow: create, UNINITIALIZED, admin PIN with PUK, login, INITIALIZED,
    then one client with ``serial``; returns (tss id, client id)."""
    tss = str(uuid.uuid4())
    r = client.put(f"/api/v2/tss/{tss}", json={}, headers=h)
    assert r.status_code == 200, r.text
    puk = r.json()["admin_puk"]
    for method, path, body in (
        ("PATCH", "", {"state": "UNINITIALIZED"}),
        ("PATCH", "/admin", {"admin_puk": puk, "new_admin_pin": "123456"}),
        ("POST", "/admin/auth", {"admin_pin": "123456"}),
        ("PATCH", "", {"state": "INITIALIZED"}),
    ):
        r = client.request(method, f"/api/v2/tss/{tss}{path}", json=body, headers=h)
        assert r.status_code == 200, r.text
    client_id = str(uuid.uuid4())
    r = client.put(
        f"/api/v2/tss/{tss}/client/{client_id}", json={"serial_number": serial}, headers=h
    )
    assert r.status_code == 200, r.text
    return tss, client_id
