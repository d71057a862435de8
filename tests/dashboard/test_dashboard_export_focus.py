"""The export page while its export runs, in Debian's Chromium (Playwright). The page
reloaded itself every second (meta refresh) until the export was finished and
verified: a keyboard or screen-reader user was thrown back to the top of the page
each time. Now only its status line (a live region) changes, and the result part
comes in when the export is done; without JavaScript a link reloads the page.

The TSE gets 12,000 system logs through its store, so the export runs (and is
verified) for a few seconds; their content is no valid log, which the check
reports, as it should."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_support import api_login, csrf_of, dashboard_login, setup_tss

from opentse.engine.ports import LockedTSE, StoredLog
from opentse.installation import Installation
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.testing.serving import serving_in_thread
from opentse.tr03151.oids import LogType

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOGS = 12_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed (run scripts/ensure-chromium as root)",
    ),
]


def _sign_system_logs(inst: Installation, tss: str, count: int) -> None:
    now = int(time.time())

    def batch(locked: LockedTSE) -> None:
        state = locked.load()
        first = state.signature_counter + 1
        locked.append(
            [
                StoredLog(tss, n, LogType.SYSTEM, "updateTime", now,
                          f"Unixt_{now}_Sig-{n}_Log-Sys_updateTime.log", b"\x30\x00")
                for n in range(first, first + count)
            ]
        )  # fmt: skip
        state.signature_counter = first + count - 1
        locked.save(state)

    inst.store.run_locked(tss, batch)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("focus") / "data"
    inst = Installation.open(data)
    app = create_app(inst, ServerConfig(data_dir=data))
    try:
        with serving_in_thread(app) as base, httpx.Client(base_url=base, timeout=60) as api:
            ctx = app.state.ctx
            key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
            tss, _ = setup_tss(api, api_login(api, key), "KASSE-1")
            _sign_system_logs(inst, tss, LOGS)
            yield {"base": base, "key": key, "tss": tss}
    finally:
        inst.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def _start_export(shop: dict[str, Any]) -> str:
    """An export of the whole TSE, started through the dashboard's form: its page."""
    with httpx.Client(base_url=shop["base"], timeout=60) as web:
        assert dashboard_login(web, shop["key"]).status_code == 303
        form = web.get("/dashboard/exports")
        fields = dict.fromkeys(("client_id", "start_date", "end_date"), "")
        fields |= dict.fromkeys(("start_transaction_number", "end_transaction_number"), "")
        fields |= {"csrf": csrf_of(form.text), "tss_id": shop["tss"]}
        started = web.post("/dashboard/exports", data=fields)
        assert started.status_code == 303, started.text
        return str(started.headers["location"])


def _log_in(page: Any, shop: dict[str, Any]) -> None:
    page.goto(shop["base"] + "/dashboard/login?lang=en")
    page.get_by_label("API key").fill(shop["key"]["api_key"])
    page.get_by_label("API secret").fill(shop["key"]["api_secret"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/tss")


def test_focus_stays_while_the_export_runs(shop: dict[str, Any], chromium: Any) -> None:
    from playwright.sync_api import expect

    context = chromium.new_context(locale="en-US")
    context.set_default_timeout(60000)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    _log_in(page, shop)
    page.goto(shop["base"] + _start_export(shop))
    status = page.get_by_role("status").first
    expect(status).to_have_text("The export is running.")
    loads = page.evaluate("performance.getEntriesByType('navigation').length")
    page.evaluate("window.sameDocument = true")
    for _ in range(4):  # skip link, brand, the first two menu entries
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Transactions"
    expect(page.locator("#export-state")).to_have_text("COMPLETED", timeout=60000)
    expect(page.locator(".verdict")).to_have_text("Export has errors.", timeout=60000)
    assert page.evaluate("window.sameDocument === true")  # never reloaded
    assert page.evaluate("document.activeElement.textContent") == "Transactions"
    expect(status).to_have_text("The export is finished; its verification result is below.")
    expect(page.get_by_role("link", name="Download TAR")).to_be_visible()
    assert page.evaluate("performance.getEntriesByType('navigation').length") == loads
    expect(page.locator("#progress")).to_have_count(0)
    expect(page.locator("#export-reload")).to_have_count(0)
    assert page.evaluate("document.activeElement.textContent") == "Transactions"
    context.close()
    assert problems == []


def test_the_running_export_shows_its_state_in_german(shop: dict[str, Any], chromium: Any) -> None:
    """The state the page takes from the status answer is the page's language's: it
    showed the API's name (COMPLETED) on a German page once the export ended."""
    from playwright.sync_api import expect

    context = chromium.new_context(locale="de-DE")
    context.set_default_timeout(60000)
    page = context.new_page()
    _log_in(page, shop)
    page.goto(shop["base"] + _start_export(shop) + "?lang=de")
    shown = page.locator("#export-state")
    assert shown.text_content() in ("wartet", "läuft"), shown.text_content()
    expect(shown).to_have_attribute("data-state", "COMPLETED", timeout=60000)
    expect(shown).to_have_text("fertig")
    expect(shown).to_have_class("state state-completed")
    expect(page.get_by_role("status").first).to_have_text(
        "Der Export ist fertig; das Prüfergebnis steht unten.", timeout=60000
    )
    context.close()


def test_without_javascript_a_link_reloads_the_running_export(
    shop: dict[str, Any], chromium: Any
) -> None:
    from playwright.sync_api import expect

    context = chromium.new_context(locale="en-US", java_script_enabled=False)
    context.set_default_timeout(60000)
    page = context.new_page()
    _log_in(page, shop)
    address = shop["base"] + _start_export(shop)
    page.goto(address)
    expect(page.get_by_role("status").first).to_have_text("The export is running.")
    assert page.locator("meta[http-equiv=refresh]").count() == 0
    for _ in range(120):
        if page.locator(".verdict").count():
            break
        time.sleep(0.5)
        page.get_by_role("link", name="Reload").click()
    expect(page.locator("#export-state")).to_have_text("COMPLETED")
    expect(page.locator(".verdict")).to_have_text("Export has errors.")
    expect(page.get_by_role("link", name="Reload")).to_have_count(0)
    status = page.request.get(address + "/status").json()
    assert status == {
        "state": "COMPLETED", "state_text": "COMPLETED", "done": True, "alert": False,
        "message": "The export is finished; its verification result is below.",
    }  # fmt: skip
    gone = page.request.get(address[: -len("0000")] + "0000/status")
    assert gone.status == 404
    context.close()


RING = """() => {
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map((v) => v / 255)
      .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const el = document.activeElement;
  if (el === document.body) { return null; }  // past the last one
  const style = getComputedStyle(el);
  let node = el.parentElement;
  let behind = "rgb(255, 255, 255)";
  while (node) {
    const bg = getComputedStyle(node).backgroundColor;
    if (bg !== "rgba(0, 0, 0, 0)" && bg !== "transparent") { behind = bg; break; }
    node = node.parentElement;
  }
  const [a, b] = [lum(rgb(style.outlineColor)), lum(rgb(behind))].sort((x, y) => y - x);
  return [el.textContent.trim().slice(0, 30), style.outlineStyle,
          Number(style.outlineWidth.replace("px", "")), (a + 0.05) / (b + 0.05)];
}"""


def test_the_keyboard_focus_ring_is_visible_everywhere(shop: dict[str, Any], chromium: Any) -> None:
    """WCAG 1.4.11: the focus ring of every element reached with Tab on the TSE page
    (the blue header bar and the white page) stands out 3:1 against what is behind
    it. The yellow ring had 1.6:1 on the white page."""
    context = chromium.new_context(locale="en-US")
    page = context.new_page()
    _log_in(page, shop)
    page.goto(shop["base"] + f"/dashboard/tss/{shop['tss']}")
    seen = []
    for _ in range(14):
        page.keyboard.press("Tab")
        if (ring := page.evaluate(RING)) is not None:
            seen.append(ring)
    context.close()
    assert len({name for name, *_ in seen}) > 10  # the header and the page
    weak = [s for s in seen if s[1] == "none" or s[2] < 2 or s[3] < 3]
    assert weak == [], weak
