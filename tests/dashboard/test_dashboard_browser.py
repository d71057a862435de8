"""The dashboard in Debian's Chromium (Playwright) against a real ``opentse serve``.

The POS side runs through the HTTP API with httpx (TSS set-up, receipts); the shop
owner's side through the browser: log in, TSE list, TSE detail, find a receipt by
amount, open its QR code, trigger an export, watch it finish, download it, see it
verified; upload the TAR and a photo of the QR code to the verifier. The downloaded
archive is checked again with the stdlib tarfile reader and the verifier, the QR
code on screen is read back with zxing-cpp. Every page is saved as a screenshot in
``artifacts/screenshots/``; any console error or page error fails the test.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_support import api_login, sell, setup_tss

from opentse.testing.serving import wait_until_serving

CHROMIUM = Path("/usr/bin/chromium")
OPENTSE = [str(Path(sys.executable).parent / "opentse")]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (run scripts/ensure-chromium as root)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _apikey(data: Path, org: str, env: dict[str, str]) -> dict[str, str]:
    out = subprocess.run(
        [*OPENTSE, "apikey", "create", "--data", str(data), "--org", org, "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=120,
    )
    key: dict[str, str] = json.loads(out.stdout)
    return key


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("dash") / "data"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    key = _apikey(data, "Café Müller", env)
    port = _free_port()
    proc = subprocess.Popen(
        [*OPENTSE, "serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    if not wait_until_serving(base, proc):
        proc.kill()
        output = proc.stdout.read().decode() if proc.stdout else ""
        pytest.fail(f"opentse serve did not start: {output}")
    try:
        yield {"base": base, "key": key, "data": data}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture(scope="module")
def pos(server: dict[str, Any]) -> dict[str, Any]:
    """The POS side through the API: a TSS, a register and five receipts."""
    with httpx.Client(base_url=server["base"], timeout=30) as client:
        h = api_login(client, server["key"])
        tss, cid = setup_tss(client, h, "KASSE-01")
        receipts = [sell(client, h, tss, cid, amount) for amount in ("3.20", "12.50", "7.00")]
        receipts.append(sell(client, h, tss, cid, "99.99", cash=False))
    return {"tss": tss, "client": cid, "receipts": receipts}


class Browser:
    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def test_shop_owner_flow(
    server: dict[str, Any], pos: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    base, key, tss = server["base"], server["key"], pos["tss"]
    context = browser.new_context(
        locale="de-DE", extra_http_headers={"Accept-Language": "de-DE,de;q=0.9"},
        viewport={"width": 1280, "height": 900},
    )  # fmt: skip
    context.set_default_timeout(15000)
    b = Browser(context.new_page())
    page = b.page

    # keyboard: the first Tab reaches the skip link
    page.goto(base + "/")
    assert page.url.endswith("/dashboard/login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Zum Inhalt springen"
    b.shot("01-login")

    page.get_by_label("API-Schlüssel").fill(key["api_key"])
    page.get_by_label("API-Secret").fill(key["api_secret"])
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url("**/dashboard/tss")
    expect(page.get_by_role("heading", level=1)).to_have_text("Technische Sicherheitseinrichtungen")
    row = page.locator("table.tses tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".light-text")).to_have_text("grün")
    assert row.locator("td.n").first.inner_text().replace("\u202f", "") == str(
        pos["receipts"][-1]["signature"]["counter"]
    )
    expect(row.locator("meter").first).to_have_attribute("max", "20000000")
    expect(page.get_by_text("Café Müller")).to_be_visible()
    b.shot("02-tse-list")

    # TSE detail: registers, certificate, protocol section
    row.get_by_role("link").first.click()
    page.wait_for_url(f"**/dashboard/tss/{tss}")
    expect(page.get_by_role("cell", name="KASSE-01")).to_be_visible()
    expect(page.get_by_role("heading", name="Zertifikat")).to_be_visible()
    expect(page.get_by_role("heading", name="Einrichtungsprotokoll")).to_be_visible()
    b.shot("03-tse-detail")

    # search by amount: exactly the 12.50 receipt
    page.get_by_role("link", name="Transaktionen", exact=True).click()
    page.get_by_label("Betrag (EUR)").fill("12,50")
    page.get_by_role("button", name="Suchen").click()
    results = page.locator("table.txs tbody tr")
    expect(results).to_have_count(1)
    wanted = pos["receipts"][1]
    expect(results.first.locator("td").first).to_have_text(str(wanted["number"]))
    expect(results.first.locator("td").last).to_have_text("12,50")
    b.shot("04-search")

    results.first.get_by_role("link").click()
    page.wait_for_url(f"**/tx/{wanted['number']}")
    receipt = page.locator("pre.receipt")
    expect(receipt).to_contain_text("SUMME EUR")
    expect(receipt).to_contain_text("12,50")
    expect(receipt).to_contain_text(f"TSE-Transaktion: {wanted['number']}")
    logs = page.locator("table.logs tbody tr")
    expect(logs).to_have_count(2)  # Start and Finish
    expect(logs.nth(1)).to_contain_text("FinishTransaction")
    expect(logs.nth(1)).to_contain_text("Beleg^12.50_0.00_0.00_0.00_0.00^12.50:Bar")
    b.shot("05-transaction")

    # the QR page: same text as the API's qr_code_data, verified, and readable
    page.get_by_role("link", name="QR-Code öffnen").click()
    page.wait_for_url("**/qr")
    expect(page.locator("pre.qrtext")).to_have_text(wanted["qr_code_data"])
    expect(page.locator(".verdict")).to_have_text("Beleg gültig: die Signatur passt.")
    qr_png = tmp_path / "qr.png"
    page.locator("figure.qr svg").screenshot(path=str(qr_png))
    import zxingcpp
    from PIL import Image

    decoded = zxingcpp.read_barcodes(Image.open(qr_png).convert("L"))
    assert [d.text for d in decoded] == [wanted["qr_code_data"]]
    b.shot("06-qr")

    # an export: trigger, wait (the page refreshes itself), verified, download
    page.get_by_role("link", name="Exporte").click()
    page.get_by_role("button", name="Export starten").click()
    page.wait_for_url("**/dashboard/exports/*")
    expect(page.locator(".verdict")).to_have_text(
        "Export geprüft: alle Signaturen gültig, keine Fehler.", timeout=30000
    )
    expect(page.locator("#export-state")).to_have_text("fertig")  # German, as the page
    b.shot("07-export")
    with page.expect_download() as info:
        page.get_by_role("link", name="TAR herunterladen").click()
    tar_path = tmp_path / "export.tar"
    info.value.save_as(str(tar_path))
    with tarfile.open(tar_path) as archive:
        names = archive.getnames()
    assert "info.csv" in names and sum(n.endswith(".log") for n in names) >= 10
    import hashlib

    from opentse.verify.report import verify_exports

    digest = hashlib.sha256(tar_path.read_bytes()).hexdigest()
    expect(page.get_by_text(digest)).to_be_visible()  # the page names the file we got
    report = verify_exports([tar_path], workers=1)
    assert report.ok and report.log_messages == len([n for n in names if n.endswith(".log")])

    # upload the TAR and the QR photo to the verifier
    page.get_by_role("link", name="Prüfen").click()
    page.get_by_label("Datei (TAR, PNG oder JPEG)").set_input_files(str(tar_path))
    page.get_by_role("button", name="Prüfen").click()
    expect(page.locator(".verdict")).to_have_text(
        "Export geprüft: alle Signaturen gültig, keine Fehler."
    )
    b.shot("08-verify-tar")
    jpeg = tmp_path / "receipt-photo.jpg"
    Image.open(qr_png).convert("RGB").resize((400, 400)).save(jpeg, quality=80)
    page.get_by_label("Datei (TAR, PNG oder JPEG)").set_input_files(str(jpeg))
    page.get_by_role("button", name="Prüfen").click()
    expect(page.locator(".verdict")).to_have_text("Beleg gültig: die Signatur passt.")
    b.shot("09-verify-photo")

    page.get_by_role("link", name="Ausfälle").click()
    expect(page.locator("p.empty")).to_contain_text("Keine Ausfälle erfasst")
    b.shot("10-outages")
    page.get_by_role("link", name="Warnungen").click()
    expect(page.locator("p.empty")).to_have_text("Keine Warnungen.")
    b.shot("11-warnings")

    # English, remembered across pages
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Warnings")
    page.get_by_role("link", name="TSEs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Technical security systems")
    expect(page.locator(".light-text").first).to_have_text("green")
    b.shot("12-tse-list-en")

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/dashboard/login")
    page.goto(base + "/dashboard/tss")
    assert page.url.endswith("/dashboard/login")
    context.close()
    assert b.problems == []


def test_reading_works_without_javascript(
    server: dict[str, Any], pos: dict[str, Any], browser: Any
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(java_script_enabled=False, locale="en-US")
    b = Browser(context.new_page())
    page = b.page
    page.goto(server["base"] + "/dashboard/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    page.get_by_label("API key").fill(server["key"]["api_key"])
    page.get_by_label("API secret").fill(server["key"]["api_secret"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/tss")
    page.goto(server["base"] + f"/dashboard/tx?tss={pos['tss']}&state=FINISHED")
    expect(page.locator("table.txs tbody tr")).to_have_count(len(pos["receipts"]))
    b.shot("13-search-no-js")
    context.close()
    assert b.problems == []


def test_keyboard_only_from_a_bookmark_in_german(
    server: dict[str, Any], pos: dict[str, Any], browser: Any
) -> None:
    """A bookmarked search opened without a session: log in with the keyboard alone,
    land on the search again, then today's transactions and a receipt, all by keys."""
    from playwright.sync_api import expect

    context = browser.new_context(
        locale="de-DE", extra_http_headers={"Accept-Language": "de-DE,de;q=0.9"}
    )
    context.set_default_timeout(15000)
    b = Browser(context.new_page())
    page = b.page
    page.goto(server["base"] + "/dashboard/tx?amount=12,50")
    page.wait_for_url("**/dashboard/login?next=*")
    for _ in range(4):  # skip link, brand, language, then the API key field
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "api_key"
    page.keyboard.type(server["key"]["api_key"])
    page.keyboard.press("Tab")
    page.keyboard.type(server["key"]["api_secret"])
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard/tx?amount=12,50")
    wanted = pos["receipts"][1]
    rows = page.locator("table.txs tbody tr")
    expect(rows).to_have_count(1)
    expect(page.get_by_text("1 Treffer", exact=True)).to_be_visible()
    page.get_by_role("link", name="Heute").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard/tx?from=*")
    expect(rows).to_have_count(len(pos["receipts"]))
    link = page.get_by_role("link", name=str(wanted["number"]), exact=True)
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/tx/{wanted['number']}")
    expect(page.locator("a[aria-current=page]")).to_have_text("Transaktionen")
    expect(page.locator("pre.receipt")).to_contain_text("12,50")
    b.shot("14-keyboard-bookmark-de")
    context.close()
    assert b.problems == []


def test_on_a_phone_only_the_tables_scroll_sideways(
    server: dict[str, Any], pos: dict[str, Any], browser: Any
) -> None:
    """On a 390 px wide phone the whole page scrolled sideways under the transaction
    list (its amount column off the screen) and the receipt's rules wrapped."""
    context = browser.new_context(
        locale="de-DE", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    b = Browser(context.new_page())
    page = b.page
    page.goto(server["base"] + "/dashboard/login")
    page.get_by_label("API-Schlüssel").fill(server["key"]["api_key"])
    page.get_by_label("API-Secret").fill(server["key"]["api_secret"])
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url("**/dashboard/tss")
    receipt = pos["receipts"][1]
    for path in (
        "/dashboard/tss",
        f"/dashboard/tss/{pos['tss']}",
        f"/dashboard/tx?tss={pos['tss']}",
        f"/dashboard/tss/{pos['tss']}/tx/{receipt['number']}",
    ):
        page.goto(server["base"] + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
    page.goto(server["base"] + f"/dashboard/tx?tss={pos['tss']}")
    table = page.locator("div.scroll").first
    assert table.evaluate("e => e.scrollWidth > e.clientWidth")  # it scrolls, by itself
    page.goto(server["base"] + f"/dashboard/tss/{pos['tss']}/tx/{receipt['number']}")
    shown = page.locator("pre.receipt").evaluate(
        "e => { const s = getComputedStyle(e); const pad = parseFloat(s.paddingTop)"
        " + parseFloat(s.paddingBottom); return (e.clientHeight - pad)"
        " / parseFloat(s.lineHeight) }"
    )
    lines = page.locator("pre.receipt").inner_text().rstrip("\n").count("\n") + 1
    assert abs(shown - lines) < 1, (shown, lines)  # no rule or line wrapped in two
    b.shot("15-phone-receipt")
    context.close()
    assert b.problems == []


@pytest.mark.parametrize(
    "viewport", [{"width": 768, "height": 1024}, {"width": 390, "height": 844}], ids=str
)
def test_a_tablet_and_a_phone_reach_everything(
    server: dict[str, Any], pos: dict[str, Any], browser: Any, viewport: dict[str, int]
) -> None:
    """A Kassen-Nachschau on a tablet (768x1024) or a phone (390x844): on every page
    no horizontal page scroll, every link, button and field inside the screen or in a
    table that scrolls by itself, each at least 24x24 CSS px, no table column squeezed
    into a strip of letters (tests/dashboard/layout_audit.py). The menu links were 19
    px tall, a receipt number 10 px wide; a file name or time broke into a column of
    fragments ("2026-" above "11-22"), the public key into twelve characters a line."""
    import uuid

    from layout_audit import audit

    base, tss = server["base"], pos["tss"]
    with httpx.Client(base_url=base, timeout=30) as api:  # an export to look at
        h = api_login(api, server["key"])
        export_id = str(uuid.uuid4())
        assert api.put(f"/api/v2/tss/{tss}/export/{export_id}", headers=h).status_code == 200
    context = browser.new_context(
        locale="de-DE", viewport=viewport, is_mobile=True, has_touch=True,
        extra_http_headers={"Accept-Language": "de-DE,de;q=0.9"},
    )  # fmt: skip
    context.set_default_timeout(15000)
    b = Browser(context.new_page())
    page = b.page
    seen: dict[str, list[str]] = {}

    def look(name: str) -> None:
        found = audit(page)
        assert found["targets"] > 0
        problems = list(found["problems"])
        if found["scrollWidth"] > viewport["width"]:
            problems.append(f"page scrolls sideways: {found['scrollWidth']} px")
        if problems:
            seen[name] = problems

    page.goto(base + "/dashboard/login")
    look("login")
    page.get_by_label("API-Schlüssel").fill(server["key"]["api_key"])
    page.get_by_label("API-Secret").fill(server["key"]["api_secret"])
    page.get_by_role("button", name="Anmelden").tap()
    page.wait_for_url("**/dashboard/tss")
    receipt = pos["receipts"][1]
    tx = f"/dashboard/tss/{tss}/tx/{receipt['number']}"
    for path in (
        "/dashboard/tss",
        f"/dashboard/tss/{tss}",
        "/dashboard/tx?amount=12,50",
        f"/dashboard/tx?tss={tss}",
        "/dashboard/tx?amount=zwölf&from=31.02.2026",
        tx,
        tx + "/qr",
        "/dashboard/exports",
        f"/dashboard/exports/{export_id}",
        "/dashboard/verify",
        "/dashboard/outages",
        "/dashboard/warnings",
    ):
        before = len(b.problems)
        page.goto(base + path)
        look(path)
        if "zwölf" in path:  # refused: a 400 page, which Chromium logs as a failed load
            refused = "Failed to load resource: the server responded with a status of 400"
            new = b.problems[before:]
            assert new and all(refused in p for p in new), new
            del b.problems[before:]
    assert seen == {}, seen

    # the hits scroll sideways inside their box; the receipt number stays in sight
    page.goto(base + f"/dashboard/tx?tss={tss}")
    box = page.locator("div.scroll").first
    box.evaluate("e => { e.scrollLeft = e.scrollWidth }")
    link = page.locator("table.txs tbody tr").first.get_by_role("link")
    shown, inside = link.bounding_box(), box.bounding_box()
    assert shown is not None and inside is not None
    assert (
        inside["x"] <= shown["x"] and shown["x"] + shown["width"] <= inside["x"] + inside["width"]
    )
    link.tap()
    page.wait_for_url("**/tx/*")
    b.shot(f"16-{viewport['width']}-receipt")
    context.close()
    assert b.problems == []


def test_a_german_shop_owner_checks_a_tampered_receipt(
    server: dict[str, Any], pos: dict[str, Any], browser: Any
) -> None:
    """Pasting a receipt's QR text whose signature counter was changed, in German:
    the findings are German with their code, the verifier's own words open on a
    click, no command-line option is named, and the key's TSE is this shop's, with
    its transaction one click away."""
    from playwright.sync_api import expect

    context = browser.new_context(locale="de-DE")
    b = Browser(context.new_page())
    page = b.page
    page.goto(server["base"] + "/dashboard/login")
    page.get_by_label("API-Schlüssel").fill(server["key"]["api_key"])
    page.get_by_label("API-Secret").fill(server["key"]["api_secret"])
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url("**/dashboard/tss")
    receipt = pos["receipts"][2]
    fields = receipt["qr_code_data"].split(";")
    fields[5] = str(int(fields[5]) + 1)
    page.goto(server["base"] + "/dashboard/verify")
    page.get_by_label("oder QR-Text").fill(";".join(fields))
    page.locator("main form").get_by_role("button", name="Prüfen").click()
    expect(page.get_by_role("status")).to_have_text("Beleg ungültig.")
    row = page.locator("table.findings tr", has_text="E_RECEIPT_FIELD")
    expect(row).to_contain_text("Das Feld signatureCounter des QR-Codes ist falsch")
    original = row.locator("details.original p")
    expect(original).to_be_hidden()
    row.get_by_text("Meldung des Prüfprogramms (englisch)").click()
    expect(original).to_contain_text(f"signatureCounter = {int(fields[5]) - 1}")
    signature = page.locator("table.findings tr", has_text="E_RECEIPT_SIGNATURE")
    expect(signature).to_contain_text("Die Signatur passt nicht")
    assert "--tse-export" not in page.locator("main").inner_text()
    b.shot("17-verify-tampered-de")
    page.get_by_role("link", name=f"Transaktion {receipt['number']} öffnen").click()
    page.wait_for_url(f"**/dashboard/tss/{pos['tss']}/tx/{receipt['number']}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Transaktion {receipt['number']}")
    context.close()
    assert b.problems == []
