"""A POS that talks to fiskaly SIGN DE v2 from the till's browser page moves to opentse
by changing its base URL: the browser's cross-origin rules (CORS) must let it through.

Odoo's German point of sale (``l10n_de_pos_cert``, auto-installed for German
companies) signs every order from the POS page in the browser: jQuery ``$.ajax`` with
``contentType: 'application/json'`` and an ``Authorization: Bearer`` header to
``<kassensichv_url>/api/v2/auth`` and ``.../tss/{tss}/tx/{uuid}?tx_revision=1`` and
``=2``, and it logs in again when an answer's status is 401. Such a request is not a
"simple" one, so the browser first sends a preflight (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-*``) and reads no answer that lacks
``Access-Control-Allow-Origin``. fiskaly answers browsers; opentse answered the
preflight 405 without any CORS header, so every call of such a till failed in the
browser (a network error, no status to react on) and no receipt was signed.

The TSS and client are set up over plain httpx, as Odoo does on its server; the till's
part runs in Debian's Chromium on a page of another origin (same host, other port).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opentse.testing.serving import serve_process

OPENTSE = str(Path(sys.executable).parent / "opentse")
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
PIN = "1234567890"
ORIGIN = "http://odoo.example:8069"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real ``opentse serve`` with an API key, an INITIALIZED TSS and a client."""
    data = tmp_path_factory.mktemp("browser-pos") / "data"
    out = subprocess.run(
        [OPENTSE, "apikey", "create", "--data", str(data), "--org", "shop", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    key = json.loads(out.stdout)
    log = data.parent / "serve.log"
    with contextlib.ExitStack() as stack:
        origin = stack.enter_context(serve_process(data, output=log))
        api = stack.enter_context(httpx.Client(base_url=origin + "/api/v2", timeout=30))
        r = api.post("/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]})
        api.headers["Authorization"] = "Bearer " + r.json()["access_token"]
        tss, client = str(uuid.uuid4()), str(uuid.uuid4())
        puk = api.put(f"/tss/{tss}", json={}).json()["admin_puk"]
        for method, path, body in (
            ("PATCH", f"/tss/{tss}", {"state": "UNINITIALIZED"}),
            ("PATCH", f"/tss/{tss}/admin", {"admin_puk": puk, "new_admin_pin": PIN}),
            ("POST", f"/tss/{tss}/admin/auth", {"admin_pin": PIN}),
            ("PATCH", f"/tss/{tss}", {"state": "INITIALIZED"}),
            ("PUT", f"/tss/{tss}/client/{client}", {"serial_number": "ODOO-POS-1"}),
            ("POST", f"/tss/{tss}/admin/logout", {}),
        ):
            assert api.request(method, path, json=body).status_code == 200, (method, path)
        yield {"origin": origin, "key": key, "tss": tss, "client": client, "api": api}
    assert "Traceback" not in log.read_text(errors="replace")


def _preflight(origin: str, path: str, method: str, headers: str) -> httpx.Response:
    return httpx.options(
        origin + path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def _listed(value: str | None) -> set[str]:
    return {part.strip().lower() for part in (value or "").split(",") if part.strip()}


def test_preflights_and_answers_carry_what_a_browser_needs(served: dict[str, Any]) -> None:
    origin, tss, client = served["origin"], served["tss"], served["client"]
    tx = f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}?tx_revision=1"
    for path, method in (("/api/v2/auth", "POST"), (tx, "PUT"), (f"/api/v2/tss/{tss}", "GET")):
        r = _preflight(origin, path, method, "authorization,content-type")
        assert r.status_code == 204, (path, r.status_code, r.text)
        assert r.headers["access-control-allow-origin"] == "*"
        assert method in {m.strip() for m in r.headers["access-control-allow-methods"].split(",")}
        assert {"authorization", "content-type"} <= _listed(
            r.headers["access-control-allow-headers"]
        )
        assert int(r.headers["access-control-max-age"]) > 0
        assert "access-control-allow-credentials" not in r.headers  # bearer tokens only
        assert r.headers["request-id"] and r.content == b""

    key = served["key"]
    seen = {"Origin": ORIGIN}
    r = httpx.post(
        origin + "/api/v2/auth",
        json={"api_key": key["api_key"], "api_secret": key["api_secret"]},
        headers=seen,
    )
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    assert {"request-id", "retry-after"} <= _listed(r.headers["access-control-expose-headers"])
    bearer = {**seen, "Authorization": "Bearer " + r.json()["access_token"]}
    start = {"state": "ACTIVE", "client_id": client}
    r = httpx.put(origin + tx, json=start, headers=bearer)  # the hot route
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    r = httpx.put(origin + tx, json=start, headers={**seen, "Authorization": "Bearer x"})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "*"
    r = httpx.get(origin + f"/api/v2/tss/{uuid.uuid4()}", headers=bearer)  # the router
    assert r.status_code == 404 and r.headers["access-control-allow-origin"] == "*"

    # without an Origin nothing changes; the dashboard (a session cookie) stays
    # same-origin; a request's own headers are echoed only as header names
    r = httpx.get(origin + f"/api/v2/tss/{tss}", headers={"Authorization": bearer["Authorization"]})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    assert httpx.options(origin + "/api/v2/auth").status_code == 405
    r = httpx.get(origin + "/dashboard/login", headers=seen)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    r = _preflight(origin, "/dashboard/login", "POST", "content-type")
    assert "access-control-allow-origin" not in r.headers
    r = httpx.options(  # a page on the internet asking for a server on the LAN
        origin + "/api/v2/auth",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert r.headers["access-control-allow-private-network"] == "true"
    r = _preflight(origin, "/api/v2/auth", "POST", "content-type, X-Till-Id")
    assert "x-till-id" in _listed(r.headers["access-control-allow-headers"])
    r = _preflight(origin, "/api/v2/auth", "POST", "content-type, x-till; x=1")
    assert r.status_code == 204 and "x=1" not in r.headers["access-control-allow-headers"]


# the till's part of Odoo's flow, in the page (fetch instead of jQuery, same requests)
TILL_JS = """
async ([api, key, secret, tss, client]) => {
  const json = {'Content-Type': 'application/json'};
  let token = 'expired-or-unknown';
  async function call(method, path, body) {
    const r = await fetch(api + path, {method, body: JSON.stringify(body),
      headers: {...json, 'Authorization': 'Bearer ' + token}});
    if (r.status === 401) {  // Odoo: log in again and repeat
      const a = await fetch(api + '/auth', {method: 'POST', headers: json,
        body: JSON.stringify({api_key: key, api_secret: secret})});
      token = (await a.json()).access_token;
      return call(method, path, body);
    }
    return {status: r.status, rid: r.headers.get('request-id'), body: await r.json()};
  }
  const sold = crypto.randomUUID(), dropped = crypto.randomUUID();
  const start = {state: 'ACTIVE', client_id: client};
  const receipt = {receipt_type: 'RECEIPT',
    amounts_per_vat_rate: [{vat_rate: 'NORMAL', amount: '11.90'}],
    amounts_per_payment_type: [{payment_type: 'CASH', amount: '20.00'},
                               {payment_type: 'CASH', amount: '-8.10'}]};
  const out = {};
  out.start = await call('PUT', `/tss/${tss}/tx/${sold}?tx_revision=1`, start);
  out.finish = await call('PUT', `/tss/${tss}/tx/${sold}?tx_revision=2`,
    {state: 'FINISHED', client_id: client, schema: {standard_v1: {receipt}}});
  await call('PUT', `/tss/${tss}/tx/${dropped}?tx_revision=1`, start);
  out.cancel = await call('PUT', `/tss/${tss}/tx/${dropped}?tx_revision=2`,
    {state: 'CANCELLED', client_id: client, schema: {standard_v1: {receipt:
      {receipt_type: 'CANCELLATION', amounts_per_vat_rate: []}}}});
  out.refused = await call('PUT', `/tss/${tss}/tx/${sold}?tx_revision=9`, start);
  return out;
}
"""


@contextlib.contextmanager
def _till_page() -> Iterator[str]:
    """The till's page, served from another origin on the same machine (a page from
    a loopback server may call a loopback server without asking: Chromium's local
    network access rules)."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>POS</title><p>POS</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/pos"
        finally:
            server.shutdown()
            thread.join()


@pytest.mark.browser
@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (run scripts/ensure-chromium as root)",
)
def test_a_till_in_the_browser_signs_its_receipts(served: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    key = served["key"]
    args = [served["origin"] + "/api/v2", key["api_key"], key["api_secret"]]
    with _till_page() as page_url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(page_url)
            out = page.evaluate(TILL_JS, [*args, served["tss"], served["client"]])
        finally:
            browser.close()

    assert out["start"]["status"] == 200 and out["start"]["body"]["log"]["operation"] == "Start"
    done = out["finish"]["body"]
    assert out["finish"]["status"] == 200 and done["state"] == "FINISHED", done
    assert done["qr_code_data"].split(";")[3] == "Beleg^11.90_0.00_0.00_0.00_0.00^11.90:Bar"
    assert done["signature"]["value"] and out["finish"]["rid"]  # request-id is readable
    assert out["cancel"]["status"] == 200 and out["cancel"]["body"]["state"] == "CANCELLED"
    refused = out["refused"]  # a refusal's status and body reach the page
    assert refused["status"] == 400 and refused["body"]["code"] == "E_TX_UPSERT", refused
    stored = served["api"].get(f"/tss/{served['tss']}/tx/{done['_id']}").json()
    assert stored["signature"] == done["signature"]
