"""A finished transaction whose logs were deleted after a verified export (archive
export, archive release, tse delete-stored-data, as operations.md describes) is shown
as such: the page said "No receipt: the transaction is not finished" beside the state
FINISHED, and showed an empty log table. Real ``opentse serve`` and CLI processes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from dashboard_support import api_login, dashboard_login, opentse, sell, setup_tss

from opentse.testing.serving import serve_process


def test_a_transaction_whose_logs_were_deleted_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = json.loads(opentse("apikey", "create", "--data", str(data), "--json"))
    with serve_process(data) as base:
        with httpx.Client(base_url=base, timeout=30) as api:
            h = api_login(api, key)
            tss, cid = setup_tss(api, h, "KASSE-1")
            sell(api, h, tss, cid, "2.50")
            sell(api, h, tss, cid, "1.00")
        with httpx.Client(base_url=base, timeout=30) as browser:
            assert dashboard_login(browser, key).status_code == 303
            before = browser.get(f"/dashboard/tss/{tss}/tx/1", params={"lang": "en"}).text
            assert "Kassenbeleg-V1" in before and "deleteStoredData" not in before
            opentse("archive", "export", tss, "--data", str(data))
            opentse("archive", "release", tss, "--data", str(data))
            opentse("tse", "delete-stored-data", tss, "--pin", "123456", "--data", str(data))
            page = browser.get(f"/dashboard/tss/{tss}/tx/1", params={"lang": "en"})
            assert page.status_code == 200
            assert "FINISHED" in page.text
            assert "the transaction is not finished" not in page.text
            assert "deleted after a verified export (deleteStoredData)" in page.text
            assert '<table class="logs"' not in page.text
            # its amount is still known from the index (the search lists it with it)
            assert re.search(r"<dt>Amount \(EUR\)</dt><dd>2\.50</dd>", page.text), page.text
