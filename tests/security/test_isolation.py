"""An organization cannot read or change another's anything.

Organization A builds one of everything (TSS, client, finished transaction, export,
metadata on each); organization B then calls EVERY operation of the server's own
OpenAPI document with A's ids and a body that would be valid for A. Each answer must
be 404 (fiskaly: not 403, so B learns nothing about what exists); list endpoints
answer 200 without any of A's ids. Afterwards A's resources are unchanged.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from live_server import PIN, LiveServer, download_export, finished_tx, new_tss, ok

ALL_IDS: list[str] = []


@pytest.fixture(scope="module")
def world(live: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    a = live.token(live.new_key("iso-a"))
    b = live.token(live.new_key("iso-b"))
    with live.client(a) as c:
        tss, puk = new_tss(c, live)
        client = str(uuid.uuid4())
        ok(c.put(f"/tss/{tss}/client/{client}", json={"serial_number": "ISO-A-1"}))
        tx = finished_tx(c, tss, client)
        ok(c.patch(f"/tss/{tss}/metadata", json={"owner": "a"}))
        ok(c.patch(f"/tss/{tss}/client/{client}/metadata", json={"owner": "a"}))
        ok(c.patch(f"/tss/{tss}/tx/{tx}/metadata", json={"owner": "a"}))
        download_export(c, tss, tmp_path_factory.mktemp("iso") / "a.tar")
        exports = ok(c.get(f"/tss/{tss}/export"))["data"]
        export = exports[0]["_id"]
        ok(c.patch(f"/tss/{tss}/export/{export}/metadata", json={"owner": "a"}))
        snapshot = _snapshot(c, tss, client, tx, export)
    return {
        "a": a, "b": b, "tss": tss, "puk": puk, "client": client, "tx": tx,
        "export": export, "snapshot": snapshot,
    }  # fmt: skip


def _snapshot(c: httpx.Client, tss: str, client: str, tx: str, export: str) -> dict[str, Any]:
    views = {
        "tss": ok(c.get(f"/tss/{tss}")),
        "tss_md": ok(c.get(f"/tss/{tss}/metadata")),
        "client": ok(c.get(f"/tss/{tss}/client/{client}")),
        "client_md": ok(c.get(f"/tss/{tss}/client/{client}/metadata")),
        "tx": ok(c.get(f"/tss/{tss}/tx/{tx}")),
        "tx_md": ok(c.get(f"/tss/{tss}/tx/{tx}/metadata")),
        "txs": ok(c.get(f"/tss/{tss}/tx"))["count"],
        "clients": ok(c.get(f"/tss/{tss}/client"))["count"],
        "export": ok(c.get(f"/tss/{tss}/export/{export}"))["state"],
        "export_md": ok(c.get(f"/tss/{tss}/export/{export}/metadata")),
    }
    # the admin session and the signature counter change with logins; compare the rest
    for volatile in ("signature_counter", "transaction_counter", "_version"):
        views["tss"].pop(volatile, None)
    return views


def _body(op_id: str, w: dict[str, Any]) -> Any:
    receipt = {"state": "ACTIVE", "client_id": w["client"]}
    return {
        "authenticateAdmin": {"admin_pin": PIN},
        "logoutAdmin": {},
        "createTss": {},
        "updateTss": {"state": "DISABLED"},
        "changeAdminPin": {"admin_puk": w["puk"], "new_admin_pin": "Taken-over-1"},
        "updateTssMetadata": {"owner": "b"},
        "createClient": {"serial_number": "ISO-B-1"},
        "updateClient": {"state": "DEREGISTERED"},
        "updateClientMetadata": {"owner": "b"},
        "upsertTransaction": receipt,
        "updateTransactionMetadata": {"owner": "b"},
        "triggerExport": {},
        "updateExportMetadata": {"owner": "b"},
    }.get(op_id)


def _fill(path: str, w: dict[str, Any], variant: str) -> str:
    values = {
        "tss_id": w["tss"],
        "client_id": w["client"] if variant == "existing" else str(uuid.uuid4()),
        "tx_id_or_number": w["tx"] if variant == "existing" else "1",
        "export_id": w["export"] if variant == "existing" else str(uuid.uuid4()),
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def test_every_operation_with_another_organizations_ids_is_404(
    live: LiveServer, world: dict[str, Any]
) -> None:
    doc = httpx.get(live.base + "/openapi.json", timeout=30).json()
    walked: set[tuple[str, str]] = set()
    leaks: list[str] = []
    secrets = [world[k] for k in ("tss", "client", "tx", "export")]
    with live.client(world["b"]) as b:
        for full, item in doc["paths"].items():
            path = full.removeprefix("/api/v2")
            for method, op in item.items():
                if method not in ("get", "put", "patch", "post", "delete"):
                    continue
                if path == "/auth":
                    continue
                walked.add((method.upper(), path))
                if op["operationId"] == "createTss":
                    continue  # free or foreign: see test_create_tss_with_a_foreign_id_...
                for variant in ("existing", "other"):
                    url = _fill(path, world, variant)
                    params = {"tx_revision": 3} if "/tx/" in path and method == "put" else None
                    body = _body(op["operationId"], world)
                    r = b.request(method.upper(), url, json=body, params=params)
                    if "{" not in path:  # a list: allowed, but without A's things
                        if r.status_code != 200 or any(s in r.text for s in secrets):
                            leaks.append(f"{method} {path}: {r.status_code} {r.text[:200]}")
                    elif r.status_code != 404:
                        leaks.append(f"{method} {url}: {r.status_code} {r.text[:200]}")
                    elif r.json().get("code", "") in ("", "E_INTERNAL"):
                        leaks.append(f"{method} {url}: 404 without a fiskaly code")
        for extra in ("/ops/status", "/ops/warnings"):
            r = b.get(extra)
            if r.status_code != 200 or world["tss"] in r.text:
                leaks.append(f"GET {extra}: {r.status_code} {r.text[:200]}")
    assert leaks == []
    assert len(walked) >= 30  # every operation of the document (33 today, minus /auth)
    with live.client(world["a"]) as a:
        after = _snapshot(a, world["tss"], world["client"], world["tx"], world["export"])
        assert after == world["snapshot"]
        # A's admin PIN still works: B's PUK attempt changed nothing
        ok(a.post(f"/tss/{world['tss']}/admin/auth", json={"admin_pin": PIN}))


def test_metrics_do_not_name_tss_without_authentication(
    live: LiveServer, world: dict[str, Any]
) -> None:
    r = httpx.get(live.origin + "/metrics", timeout=30)
    assert r.status_code in (401, 404) or world["tss"] not in r.text


def test_create_tss_with_a_foreign_id_does_not_confirm_it(
    live: LiveServer, world: dict[str, Any]
) -> None:
    with live.client(world["b"]) as b:
        r = b.put(f"/tss/{world['tss']}", json={})
    assert r.status_code == 404, r.text
