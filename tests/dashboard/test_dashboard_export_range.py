"""The dashboard's export form refuses an empty range ("from" after "to", numbers or
dates) with a message in the page's language: it started an export job that failed a
moment later with nothing but E_BAD_REQUEST. A real ``opentse serve`` process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from dashboard_support import api_login, csrf_of, dashboard_login, sell, setup_tss

from opentse.testing.serving import serve_process

OPENTSE = str(Path(sys.executable).parent / "opentse")


@pytest.mark.parametrize(
    ("lang", "fields", "message"),
    [
        (
            "de",
            {"start_transaction_number": "5", "end_transaction_number": "2"},
            "Bereich ist leer",
        ),
        ("en", {"start_date": "2026-03-02", "end_date": "2026-03-01"}, "range is empty"),
    ],
)
def test_an_empty_export_range_is_refused_by_the_form(
    tmp_path: Path, lang: str, fields: dict[str, str], message: str
) -> None:
    data = tmp_path / "data"
    created = subprocess.run(
        [OPENTSE, "apikey", "create", "--data", str(data), "--json"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    key = json.loads(created.stdout)
    with serve_process(data) as base:
        with httpx.Client(base_url=base, timeout=30) as api:
            h = api_login(api, key)
            tss, cid = setup_tss(api, h, "KASSE-1")
            sell(api, h, tss, cid, "2.50")
        with httpx.Client(base_url=base, timeout=30) as browser:
            assert dashboard_login(browser, key).status_code == 303
            form = browser.get("/dashboard/exports", params={"lang": lang})
            empty = dict.fromkeys(
                ("client_id", "start_transaction_number", "end_transaction_number",
                 "start_date", "end_date"), "",
            )  # fmt: skip
            body = {**empty, "csrf": csrf_of(form.text), "tss_id": tss, **fields}
            r = browser.post("/dashboard/exports", data=body)
            assert r.status_code == 400 and message in r.text
            listed = browser.get("/dashboard/exports").text
            assert "/dashboard/exports/" not in listed  # no export job was started
        with httpx.Client(base_url=base, timeout=30) as api:
            listing = api.get("/api/v2/export", headers=api_login(api, key))
        assert listing.status_code == 200 and listing.json()["count"] == 0
