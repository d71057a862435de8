"""The transaction page of a long order (Bestellung-V1 carries every line, so its QR
text outgrows the largest QR code, 2,331 octets at level M) answered 500: the
dashboard drew the QR code without asking whether one holds the text
(register.render_qr.fits_qr). Now both the transaction page and its QR page show the
note the receipts print instead ("Kein QR-Code: TSE-Daten zu lang"), in German and
English, and a short order keeps its picture. Against the served app."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import httpx
from dashboard_support import api_login, dashboard_login, served_shop, setup_tss

from opentse.register.render_qr import fits_qr
from opentse.register.render_text import NO_QR_TEXT


def _order(web: httpx.Client, h: dict[str, str], tss: str, cid: str, lines: int) -> dict[str, Any]:
    """An order of ``lines`` lines, signed through the API's raw schema."""
    data = "\r".join(f'1;"Artikel {i} Kürbis-Gemüse-Suppe";1.10' for i in range(lines))
    tx = str(uuid.uuid4())
    r = web.put(
        f"/api/v2/tss/{tss}/tx/{tx}", params={"tx_revision": 1},
        json={"state": "ACTIVE", "client_id": cid}, headers=h,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    raw = {
        "process_type": "Bestellung-V1",
        "process_data": base64.b64encode(data.encode()).decode(),
    }
    r = web.put(
        f"/api/v2/tss/{tss}/tx/{tx}", params={"tx_revision": 2},
        json={"state": "FINISHED", "client_id": cid, "schema": {"raw": raw}}, headers=h,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_long_orders_pages_say_no_qr_code_holds_it(tmp_path: Path) -> None:
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h, "KASSE-01")
        long, short = _order(web, h, tss, cid, 100), _order(web, h, tss, cid, 2)
        assert long["qr_code_data"] and not fits_qr(long["qr_code_data"])
        assert dashboard_login(web, key).status_code == 303
        for lang, note in (("de", NO_QR_TEXT), ("en", "No QR code: TSE data too long")):
            for path in ("", "/qr"):
                r = web.get(f"/dashboard/tss/{tss}/tx/{long['number']}{path}?lang={lang}")
                assert r.status_code == 200, r.text
                assert note in r.text
                assert "<svg" not in r.text
            page = web.get(f"/dashboard/tss/{tss}/tx/{long['number']}/qr?lang={lang}").text
            assert long["qr_code_data"].split(";")[0] in page  # the text is still shown
        r = web.get(f"/dashboard/tss/{tss}/tx/{short['number']}?lang=en")
        assert r.status_code == 200 and "<svg" in r.text
        assert "No QR code: TSE data too long" not in r.text
