"""Defects a shop owner's walkthrough of the dashboard found, each checked against a
real ``opentse serve`` process and the real CLI (``tse replace``, ``pos cash``); each
test says what the page showed before."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_support import api_login, csrf_of, dashboard_login, sell, setup_tss

from opentse.testing.serving import wait_until_serving

OPENTSE = str(Path(sys.executable).parent / "opentse")
ZONE = "Asia/Tokyo"  # not the default: the page must use the shop's zone (JST)


def _opentse(*args: str, key: dict[str, str] | None = None) -> str:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if key is not None:
        env |= {"OPENTSE_API_KEY": key["api_key"], "OPENTSE_API_SECRET": key["api_secret"]}
    done = subprocess.run(
        [OPENTSE, *args], capture_output=True, text=True, env=env, timeout=120
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@contextmanager
def _serve(data: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [OPENTSE, "serve", "--data", str(data), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OPENTSE_TIMEZONE": ZONE},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_serving(base, proc), "no server"
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _finish(
    api: httpx.Client, h: dict[str, str], tss: str, cid: str, schema: dict[str, Any]
) -> int:
    tx = str(uuid.uuid4())
    url = f"/api/v2/tss/{tss}/tx/{tx}"
    r = api.put(url, params={"tx_revision": 1}, json={"state": "ACTIVE", "client_id": cid},
                headers=h)  # fmt: skip
    assert r.status_code == 200, r.text
    r = api.put(
        url, params={"tx_revision": 2},
        json={"state": "FINISHED", "client_id": cid, "schema": schema}, headers=h,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    return int(r.json()["number"])


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """TSE A (register KASSE-1, one sale) replaced by C with ``tse replace``; TSE B
    (KASSE-2) with cash movements: a fiskaly-style Kassenbeleg-V1 of payments only and
    ``opentse pos cash``. The dashboard is then served by a fresh process."""
    tmp = tmp_path_factory.mktemp("walk")
    data = tmp / "data"
    key = json.loads(_opentse("apikey", "create", "--data", str(data), "--org", "shop", "--json"))
    with _serve(data) as base, httpx.Client(base_url=base, timeout=30) as api:
        h = api_login(api, key)
        tss_a, cid_a = setup_tss(api, h, "KASSE-1")
        sell(api, h, tss_a, cid_a, "3.80")
        tss_b, cid_b = setup_tss(api, h, "KASSE-2")
        payments_only = b"Beleg^0.00_0.00_0.00_0.00_0.00^50.00:Bar"
        deposit = _finish(api, h, tss_b, cid_b, {"raw": {
            "process_type": "Kassenbeleg-V1",
            "process_data": base64.b64encode(payments_only).decode(),
        }})  # fmt: skip
        payout = _finish(api, h, tss_b, cid_b, {"standard_v1": {"receipt": {
            "receipt_type": "RECEIPT", "amounts_per_vat_rate": [],
            "amounts_per_payment_type": [{"payment_type": "CASH", "amount": "-20.00"}],
        }}})  # fmt: skip
        cash = json.loads(_opentse(
            "pos", "cash", "--type", "Auszahlung", "--amount", "-12.34", "--text", "Porto",
            "--url", base, "--tss", tss_b, "--client", cid_b,
            "--journal", str(tmp / "kasse-2.db"), "--json", key=key,
        ))  # fmt: skip
        assert cash["tse_failed"] is False
    where = ("--data", str(data), "--json")
    org = json.loads(_opentse("site", "org-create", "Bäckerei Walk GmbH", *where))
    loc = json.loads(_opentse(
        "site", "create", org["id"], "Filiale", "--street", "Hauptstraße 5",
        "--postal-code", "10115", "--city", "Berlin", *where,
    ))  # fmt: skip
    _opentse("site", "assign-tse", tss_a, loc["id"], "--data", str(data))
    tss_c = str(uuid.uuid4())
    replaced = json.loads(_opentse(
        "tse", "replace", tss_a, tss_c, "--new-pin", "246810", "--old-pin", "123456", *where,
    ))  # fmt: skip
    with _serve(data) as base, httpx.Client(base_url=base, timeout=30) as browser:
        assert dashboard_login(browser, key).status_code == 303
        yield {
            "browser": browser, "a": tss_a, "b": tss_b, "c": tss_c, "cid_a": cid_a,
            "cid_b": cid_b, "cid_c": replaced["api_clients"]["KASSE-1"],
            "deposit": deposit, "payout": payout, "cash": cash["transaction_number"],
        }  # fmt: skip


def _row_of(html: str, tss_id: str) -> str:
    link = f'href="/dashboard/tss/{tss_id}"'
    rows = [r for r in re.findall(r"<tr class=\"row-.*?</tr>", html, re.S) if link in r]
    assert len(rows) == 1, html
    return rows[0]


def test_a_replaced_tse_is_grey_and_names_its_successor(shop: dict[str, Any]) -> None:
    """A TSE taken out of service by ``opentse tse replace`` was red "außer Betrieb",
    as if broken: it is grey and names the TSE that replaced it."""
    browser = shop["browser"]
    listing = browser.get("/dashboard/tss", params={"lang": "de"}).text
    old = _row_of(listing, shop["a"])
    assert 'class="row-grey"' in old and "light-red" not in old
    assert f"ersetzt durch TSE {shop['c']}" in old and "außer Betrieb" not in old
    assert "light-green" in _row_of(listing, shop["c"])  # the new one is in use
    assert "Grau: durch eine neue TSE ersetzt" in listing  # the legend says what grey is
    assert "tse replace" not in listing  # no command line in the dashboard's legend
    detail = browser.get(f"/dashboard/tss/{shop['a']}", params={"lang": "en"}).text
    assert "light-grey" in detail and "light-red" not in detail
    assert f"replaced by TSE {shop['c']}" in detail


def _amounts(html: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for row in re.findall(r"<tr>\s*<td class=\"n\"><a href=.*?</tr>", html, re.S):
        number = re.search(r'/tx/(\d+)">', row)
        cells = re.findall(r'<td class="n">([^<]*)</td>', row)
        assert number and cells, row
        found[int(number.group(1))] = cells[-1].strip()
    return found


def test_cash_movements_show_the_money_moved(shop: dict[str, Any]) -> None:
    """Cash movements showed no amount (``pos cash``'s SonstigerVorgang) or 0,00 (a
    Kassenbeleg-V1 with only payments): they show the money moved."""
    browser = shop["browser"]
    de = {"lang": "de"}  # the language is kept in a cookie: another test may have chosen en
    listed = _amounts(browser.get("/dashboard/tx", params={"tss": shop["b"], **de}).text)
    assert listed[shop["deposit"]] == "50,00"  # Kassenbeleg-V1, payments only
    assert listed[shop["payout"]] == "-20,00"
    assert listed[shop["cash"]] == "-12,34"  # pos cash: SonstigerVorgang
    sales = _amounts(browser.get("/dashboard/tx", params={"tss": shop["a"], **de}).text)
    assert list(sales.values()) == ["3,80"]  # a sale still shows its gross total
    one = browser.get(f"/dashboard/tss/{shop['b']}/tx/{shop['cash']}", params={"lang": "en"})
    assert one.status_code == 200 and "-12.34" in one.text


def test_protocol_details_are_in_the_shops_time(shop: dict[str, Any]) -> None:
    """The protocol's details showed Unix seconds (initialized_at=1795297626): they are
    in the shop's time zone like every other time on the dashboard."""
    detail = shop["browser"].get(f"/dashboard/tss/{shop['a']}", params={"lang": "de"}).text
    protocol = detail[detail.index('id="proto"') :]
    local = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST"
    assert re.search(r"initialized_at=" + local, protocol), protocol
    # a retention end is a calendar date (31 December), not a time in the shop's zone,
    # where 23:59:59 UTC would read as 1 January of the year after
    assert re.search(r"retain_until=\d{4}-12-31(?![\d :])", protocol), protocol
    assert not re.search(r"(_at|_until)=\d{6,}", protocol), protocol
    assert "signature_counter=" in protocol  # other numbers stay numbers


def _register_options(html: str) -> set[str]:
    select = re.search(r'<select id="e-client".*?</select>', html, re.S)
    assert select, html
    return set(re.findall(r'<option value="([^"]+)"', select.group(0)))


def test_the_export_form_lists_the_registers_of_its_tse(shop: dict[str, Any]) -> None:
    """The export form's register list held the registers of every TSE: it lists those
    of the TSE the export is for (``?tss=``; by default a TSE in use)."""
    browser = shop["browser"]
    for tss, cid in ((shop["a"], shop["cid_a"]), (shop["b"], shop["cid_b"])):
        form = browser.get("/dashboard/exports", params={"tss": tss}).text
        assert _register_options(form) == {cid}
        assert f'name="tss_id" value="{tss}"' in form
        assert re.search(rf'<option value="{tss}" selected>', form)
    first = browser.get("/dashboard/exports").text  # no choice: a TSE in use, not A
    chosen = re.search(r'name="tss_id" value="([^"]+)"', first)
    assert chosen and chosen.group(1) in (shop["b"], shop["c"])
    wanted = {shop["b"]: shop["cid_b"], shop["c"]: shop["cid_c"]}[chosen.group(1)]
    assert _register_options(first) == {wanted}


def test_a_register_and_a_range_are_not_exported_together(shop: dict[str, Any]) -> None:
    """The API (as fiskaly's) exports a register whole and ignores a range beside it:
    the form took a register with "from/to 21.11." and exported all of its history,
    the export page listing only client_id. The form refuses the pair."""
    browser = shop["browser"]
    before = browser.get("/dashboard/exports", params={"tss": shop["b"], "lang": "de"}).text
    for fields in ({"start_date": "2026-03-01", "end_date": "2026-03-01"},
                   {"start_transaction_number": "1", "end_transaction_number": "1"}):  # fmt: skip
        r = browser.post("/dashboard/exports", data={
            "csrf": csrf_of(before), "tss_id": shop["b"], "client_id": shop["cid_b"], **fields,
        })  # fmt: skip
        assert r.status_code == 400 and "Eine Kasse wird immer ganz exportiert" in r.text
    assert "/dashboard/exports/" not in browser.get("/dashboard/exports").text  # no job
    whole = browser.post("/dashboard/exports", data={
        "csrf": csrf_of(before), "tss_id": shop["b"], "client_id": shop["cid_b"],
    })  # fmt: skip
    assert whole.status_code == 303  # a register alone is still exported
