"""The dashboard's pages over HTTP (uvicorn in a thread over a real installation):
login and sessions, CSRF, tenant isolation, search filters, uploads and limits."""

from __future__ import annotations

import itertools
import re
import string
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_support import api_login, csrf_of, dashboard_login, sell, setup_tss
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.dashboard import i18n, uploads
from opentse.dashboard.session import COOKIE, SESSION_SECONDS, Session, SessionCodec
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.testing.serving import serving_in_thread


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A real installation served by uvicorn on a free 127.0.0.1 port (in a thread)."""
    from opentse.installation import Installation

    data = tmp_path_factory.mktemp("pages") / "data"
    inst = Installation.open(data)
    app = create_app(inst, ServerConfig(data_dir=data))
    try:
        with serving_in_thread(app) as base:
            with httpx.Client(base_url=base, timeout=30) as api:
                ctx = app.state.ctx
                key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
                other = create_api_key(ctx.svc, org_name="other", env="TEST", now=ctx.now())
                h = api_login(api, key)
                tss, cid = setup_tss(api, h, "KASSE-01")
                tss2, cid2 = setup_tss(api, h, "KASSE-02")
                receipts = [sell(api, h, tss, cid, a) for a in ("1.00", "2.50", "2.50")]
                receipts.append(sell(api, h, tss2, cid2, "2.50", cash=False))
            yield {
                "app": app, "base": base, "key": key, "other": other, "tss": tss,
                "tss2": tss2, "receipts": receipts, "data": data,
            }  # fmt: skip
    finally:
        inst.close()


class Browsers:
    """httpx clients of one test (each with its own cookies), closed afterwards."""

    def __init__(self, shop: dict[str, Any]) -> None:
        self.shop = shop
        self.open: list[httpx.Client] = []

    def anon(self) -> httpx.Client:
        client = httpx.Client(base_url=self.shop["base"], timeout=30)
        self.open.append(client)
        return client

    def login(self, key: dict[str, str]) -> httpx.Client:
        client = self.anon()
        r = dashboard_login(client, key)
        assert r.status_code == 303 and r.headers["location"] == "/dashboard/tss"
        return client


@pytest.fixture
def web(shop: dict[str, Any]) -> Iterator[Browsers]:
    browsers = Browsers(shop)
    yield browsers
    for client in browsers.open:
        client.close()


# --- i18n and sessions (pure) -----------------------------------------------------------


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_every_text_has_both_languages_with_the_same_placeholders() -> None:
    for key, (de, en) in i18n.TEXTS.items():
        assert de.strip() and en.strip(), key
        assert _fields(de) == _fields(en), key


def test_templates_use_only_known_texts() -> None:
    folder = Path(i18n.__file__).parent / "templates"
    used = set()
    for path in folder.glob("*.html"):
        used |= set(re.findall(r"""(?<![\w.])t\(\s*["']([a-z_]+)["']\s*[,)]""", path.read_text()))
    assert used and used <= set(i18n.TEXTS), used - set(i18n.TEXTS)


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "expected"),
    [
        (None, None, None, "de"),
        (None, None, "en-US,en;q=0.9", "en"),
        (None, None, "fr-FR, en;q=0.5, de;q=0.8", "de"),
        (None, None, "de;q=0, en;q=0.1", "en"),
        (None, "en", "de-DE", "en"),
        ("de", "en", "en", "de"),
        ("xx", None, "en", "en"),
    ],
)
def test_language_choice(query: str | None, cookie: str | None, accept: str | None,
                         expected: str) -> None:  # fmt: skip
    assert i18n.pick_language(query, cookie, accept) == expected


texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=60)


@settings(max_examples=100, deadline=None)
@given(org=texts, key=texts, now=st.integers(0, 2**40), flip=st.integers(0, 10_000))
def test_session_cookie_round_trip_and_tampering(org: str, key: str, now: int, flip: int) -> None:
    codec = SessionCodec(b"k" * 32)
    session = codec.login(org or "o", key, now)
    value = codec.dump(session)
    assert codec.load(value, now) == session
    pos = flip % len(value)
    forged = value[:pos] + ("A" if value[pos] != "A" else "B") + value[pos + 1 :]
    assert codec.load(forged, now) is None
    assert SessionCodec(b"x" * 32).load(value, now) is None  # another installation
    expired = codec.load(value, now + SESSION_SECONDS)
    assert expired is not None and not expired.logged_in


def test_csrf_token_is_bound_to_the_session() -> None:
    codec = SessionCodec(b"k" * 32)
    a, b = codec.anonymous(), codec.anonymous()
    assert codec.check_csrf(a, codec.csrf_token(a))
    assert not codec.check_csrf(b, codec.csrf_token(a))
    assert not codec.check_csrf(a, "") and not codec.check_csrf(Session("n"), None)


def test_upload_kind_is_sniffed_from_content() -> None:
    from opentse.register.render_qr import render_qr_png

    assert uploads.kind_of(render_qr_png("V0;x")) == "png"
    assert uploads.kind_of(b"\xff\xd8\xff\xe0rest") == "jpeg"
    assert uploads.kind_of(b"\0" * 257 + b"ustar\x0000") == "tar"
    assert uploads.kind_of(b"PK\x03\x04 zip") is None


# --- pages -------------------------------------------------------------------------------


def test_login_sets_a_strict_http_only_cookie_and_security_headers(
    shop: dict[str, Any], web: Browsers
) -> None:
    client = web.anon()
    page = client.get("/dashboard/login")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    r = client.post(
        "/dashboard/login",
        data={"csrf": csrf_of(page.text), "api_key": shop["key"]["api_key"],
              "api_secret": shop["key"]["api_secret"]},
    )  # fmt: skip
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/dashboard" in cookie
    assert client.get("/dashboard/tss").status_code == 200


def test_wrong_secret_and_missing_csrf_are_refused(shop: dict[str, Any], web: Browsers) -> None:
    client = web.anon()
    page = client.get("/dashboard/login", headers={"accept-language": "en"})
    r = client.post(
        "/dashboard/login",
        data={"csrf": csrf_of(page.text), "api_key": shop["key"]["api_key"], "api_secret": "x"},
        headers={"accept-language": "en"},
    )
    assert r.status_code == 401 and "Login failed." in r.text
    r = client.post(
        "/dashboard/login",
        data={"api_key": shop["key"]["api_key"], "api_secret": shop["key"]["api_secret"]},
    )
    assert r.status_code == 403
    assert client.get("/dashboard/tss").headers["location"] == "/dashboard/login"


def test_forged_cookie_and_disabled_key_log_out(shop: dict[str, Any], web: Browsers) -> None:
    client = web.anon()
    client.cookies.set(COOKIE, "eyJuIjoieCJ9.forged", domain="127.0.0.1", path="/dashboard")
    assert client.get("/dashboard/tss").status_code == 303
    ctx = shop["app"].state.ctx
    spare = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
    client = web.login(spare)
    assert client.get("/dashboard/tss").status_code == 200
    with shop["app"].state.ops.db.tx() as c:
        c.execute("UPDATE svc_api_keys SET disabled=1 WHERE api_key=?", (spare["api_key"],))
    assert client.get("/dashboard/tss").headers["location"] == "/dashboard/login"


def test_other_organizations_see_nothing_of_the_shop(shop: dict[str, Any], web: Browsers) -> None:
    owner = web.login(shop["key"])
    tss, number = shop["tss"], shop["receipts"][0]["number"]
    r = owner.get("/dashboard/exports")
    r = owner.post("/dashboard/exports", data={"csrf": csrf_of(r.text), "tss_id": tss})
    export_url = r.headers["location"]
    urls = [
        f"/dashboard/tss/{tss}",
        f"/dashboard/tss/{tss}/tx/{number}",
        f"/dashboard/tss/{tss}/tx/{number}/qr",
        f"/dashboard/tss/{tss}/tx/{number}/log/1",
        export_url,
        export_url + "/file",
        export_url + "/status",
    ]
    for url in urls[:3]:
        assert owner.get(url).status_code == 200, url
    stranger = web.login(shop["other"])
    for url in urls:
        assert stranger.get(url).status_code == 404, url
    listing = stranger.get("/dashboard/tss")
    assert tss not in listing.text and 'p class="empty"' in listing.text
    found = stranger.get("/dashboard/tx", params={"tss": tss, "number": str(number)})
    assert f"/tss/{tss}/tx/" not in found.text and '<table class="txs"' not in found.text
    assert shop["tss"] not in stranger.get("/dashboard/exports").text
    page = stranger.get("/dashboard/exports")
    r = stranger.post("/dashboard/exports", data={"csrf": csrf_of(page.text), "tss_id": tss})
    assert r.status_code == 404 and "E_TSS_NOT_FOUND" not in r.headers.get("location", "")


def _numbers(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'/tx/(\d+)">', html)]


def test_search_filters(shop: dict[str, Any], web: Browsers) -> None:
    client = web.login(shop["key"])
    r = shop["receipts"]
    tss, tss2 = shop["tss"], shop["tss2"]

    def search(**params: str) -> list[int]:
        page = client.get("/dashboard/tx", params=params)
        assert page.status_code == 200
        return sorted(_numbers(page.text))

    assert search(amount="2,50") == sorted([r[1]["number"], r[2]["number"], r[3]["number"]])
    assert search(amount="2.50", tss=tss) == sorted([r[1]["number"], r[2]["number"]])
    assert search(register="KASSE-02") == [r[3]["number"]]
    assert search(number=str(r[0]["number"]), tss=tss) == [r[0]["number"]]
    assert search(state="ACTIVE") == []
    assert len(search(state="FINISHED")) == 4
    assert search(tss=tss2) == [r[3]["number"]]
    assert search(**{"from": "2001-01-01", "to": "2001-12-31"}) == []
    page = client.get("/dashboard/tx", params={"amount": "abc", "from": "31.13.2020"},
                      headers={"accept-language": "en"})  # fmt: skip
    assert "Invalid amount." in page.text and "Invalid date: Date from (" in page.text
    assert page.status_code == 400


def test_verify_uploads(
    shop: dict[str, Any], web: Browsers, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentse.register.render_qr import render_qr_png

    client = web.login(shop["key"])
    qr = shop["receipts"][0]["qr_code_data"]
    en = {"accept-language": "en"}

    def post(files: Any = None, text: str = "", headers: dict[str, str] | None = None) -> Any:
        page = client.get("/dashboard/verify")
        return client.post(
            "/dashboard/verify",
            data={"csrf": csrf_of(page.text), "qr_text": text},
            files=files,
            headers={**en, **(headers or {})},
        )

    ok = post(files={"file": ("photo.png", render_qr_png(qr), "image/png")})
    assert ok.status_code == 200 and "Receipt valid: the signature verifies." in ok.text
    fields = qr.split(";")
    fields[5] = str(int(fields[5]) + 7)  # signatureCounter: signed, so the check fails
    tampered = ";".join(fields)
    bad = post(text=tampered)
    assert "Receipt invalid." in bad.text and "E_RECEIPT" in bad.text
    assert post(files={"file": ("x.zip", b"PK\x03\x04" + b"0" * 600, "application/zip")}
                ).status_code == 415  # fmt: skip
    assert post().status_code == 400
    empty_tar = post(files={"file": ("e.tar", b"\0" * 257 + b"ustar\x0000" + b"\0" * 300,
                                     "application/x-tar")})  # fmt: skip
    assert empty_tar.status_code == 200 and "Export has errors." in empty_tar.text
    tar_head = b"\0" * 257 + b"ustar\x0000" + b"\0" * 250
    monkeypatch.setattr(uploads, "MAX_TAR", 4096)  # small limits, same code paths
    big = post(files={"file": ("big.tar", tar_head + b"\0" * 8192, "application/x-tar")})
    assert big.status_code == 413 and "The file is too large." in big.text  # while copying
    huge = post(files={"file": ("huge.tar", tar_head + b"\0" * 100_000, "application/x-tar")})
    assert huge.status_code == 413 and "The file is too large." in huge.text  # by its length


def test_logout_needs_csrf_and_ends_the_session(shop: dict[str, Any], web: Browsers) -> None:
    client = web.login(shop["key"])
    assert client.post("/dashboard/logout").status_code == 403
    page = client.get("/dashboard/tss")
    r = client.post("/dashboard/logout", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303
    assert client.get("/dashboard/tss").headers["location"] == "/dashboard/login"


def test_root_redirects_and_static_files_are_local(shop: dict[str, Any], web: Browsers) -> None:
    client = web.anon()
    assert client.get("/").headers["location"] == "/dashboard/"
    css = client.get("/dashboard/static/dashboard.css")
    assert css.status_code == 200 and "http" not in css.text
    page = client.get("/dashboard/login")
    assert not re.search(r'(src|href)="https?://', page.text)


def _client_id(api: httpx.Client, h: dict[str, str], tss: str) -> str:
    clients = api.get(f"/api/v2/tss/{tss}/client", headers=h).json()["data"]
    return str(clients[0]["_id"])


def _lights(html: str) -> dict[str, str]:
    rows = re.findall(r'<tr class="row-(\w+)">.*?href="/dashboard/tss/([0-9a-f-]+)"', html, re.S)
    return {tss: light for light, tss in rows}


def test_traffic_light_warnings_and_outages(shop: dict[str, Any], web: Browsers) -> None:
    from opentse.ops.outages import record_outage

    en = {"accept-language": "en"}
    api = web.anon()
    h = api_login(api, shop["key"])
    fresh = "0b1c5a3e-0000-4000-8000-00000000f00d"
    assert api.put(f"/api/v2/tss/{fresh}", json={}, headers=h).status_code == 200
    # a POS error on the second TSS: revision 3 of a transaction that never started
    bad = api.put(
        f"/api/v2/tss/{shop['tss2']}/tx/0b1c5a3e-0000-4000-8000-00000000beef",
        params={"tx_revision": 3},
        json={"state": "ACTIVE", "client_id": shop["tss2"]},
        headers=h,
    )
    assert bad.status_code == 400
    ops = shop["app"].state.ops
    record_outage(ops, started_at=ops.now() - 600, ended_at=None, reason="USB TSE unplugged",
                  tse_id=shop["tss"])  # fmt: skip

    owner = web.login(shop["key"])
    listing = owner.get("/dashboard/tss", headers=en).text
    lights = _lights(listing)
    assert lights[fresh] == "red" and "not initialized" in listing
    assert lights[shop["tss2"]] == "yellow" and "1 failed calls in the last hour" in listing
    assert lights[shop["tss"]] == "green"
    warnings = owner.get("/dashboard/warnings", headers=en).text
    assert "1 failed calls in the last hour" in warnings
    outages = owner.get("/dashboard/outages", headers=en).text
    assert "USB TSE unplugged" in outages and "ongoing" in outages
    detail = owner.get(f"/dashboard/tss/{shop['tss']}", headers=en).text
    assert "initialize" in detail.lower() and "registerClient" in detail  # signed set-up
    created = owner.get(f"/dashboard/tss/{fresh}", headers=en)
    assert created.status_code == 200 and "CREATED" in created.text
    open_tx = api.put(
        f"/api/v2/tss/{shop['tss']}/tx/0b1c5a3e-0000-4000-8000-0000000aC71e".lower(),
        params={"tx_revision": 1},
        json={"state": "ACTIVE", "client_id": _client_id(api, h, shop["tss"])},
        headers=h,
    ).json()
    active = owner.get(f"/dashboard/tss/{shop['tss']}/tx/{open_tx['number']}", headers=en).text
    assert "No receipt: the transaction is not finished." in active
    assert "There is no QR code for this transaction." in active and "StartTransaction" in active
    assert owner.get(f"/dashboard/tss/{shop['tss']}/tx/{open_tx['number']}/qr").status_code == 404
    stranger = web.login(shop["other"])
    assert "USB TSE unplugged" not in stranger.get("/dashboard/outages").text
    assert "failed calls" not in stranger.get("/dashboard/warnings", headers=en).text


def test_a_last_log_that_does_not_verify_turns_the_light_red(
    shop: dict[str, Any], web: Browsers
) -> None:
    api = web.anon()
    h = api_login(api, shop["key"])
    tss, cid = setup_tss(api, h, "KASSE-09")
    sold = sell(api, h, tss, cid, "4.20")
    owner = web.login(shop["key"])
    en = {"accept-language": "en"}
    before = owner.get("/dashboard/tss", headers=en).text
    assert _lights(before)[tss] == "green"
    assert f"last signature (counter {sold['signature']['counter']}) checked and valid" in before
    counter = int(sold["signature"]["counter"])
    with shop["app"].state.ops.db.tx() as c:  # bit rot in the stored Finish log
        (message,) = c.execute(
            "SELECT message FROM logs WHERE tse_id=? AND signature_counter=?", (tss, counter)
        ).fetchone()
        damaged = bytes(message[:-5]) + bytes([message[-5] ^ 0x01]) + bytes(message[-4:])
        c.execute(
            "UPDATE logs SET message=? WHERE tse_id=? AND signature_counter=?",
            (damaged, tss, counter),
        )
    after = owner.get("/dashboard/tss", headers=en).text
    assert _lights(after)[tss] == "red" and "the last signature does not verify" in after
    # the Warnings page named nothing of it ("No warnings." beside a red light)
    warned = owner.get("/dashboard/warnings", headers=en).text
    assert "No warnings." not in warned
    row = re.search(rf'<tr class="sev-error">(.*?{tss[:8]}.*?)</tr>', warned, re.S)
    assert row is not None, warned
    assert "<td>critical</td>" in row.group(1) and "<td>TSE state</td>" in row.group(1)
    assert "the last signature does not verify: treat the TSE as defective" in row.group(1)
    german = owner.get("/dashboard/warnings", headers={"accept-language": "de"}).text
    assert "<td>kritisch</td>" in german and "<td>Zustand der TSE</td>" in german
    assert "die letzte Signatur ist ungültig" in german


@settings(max_examples=100, deadline=None)
@given(cents=st.integers(0, 10**12), comma=st.booleans())
def test_amounts_parse_with_comma_or_point(cents: int, comma: bool) -> None:
    from decimal import Decimal

    from opentse.dashboard.search_fields import parse_amount

    text = f"{cents // 100}.{cents % 100:02d}"
    assert parse_amount(text.replace(".", ",") if comma else text) == Decimal(cents) / 100
    for bad in ("1.2.3", "abc", "NaN", "Infinity"):
        with pytest.raises(ValueError):
            parse_amount(bad)


def test_export_filters_from_the_form(shop: dict[str, Any], web: Browsers) -> None:
    owner = web.login(shop["key"])
    en = {"accept-language": "en"}
    page = owner.get("/dashboard/exports")
    r = owner.post(
        "/dashboard/exports",
        data={"csrf": csrf_of(page.text), "tss_id": shop["tss"],
              "start_transaction_number": "2", "end_transaction_number": "3"},
    )  # fmt: skip
    assert r.status_code == 303
    row = shop["app"].state.ctx.svc.get_export(r.headers["location"].rsplit("/", 1)[1])
    assert row.params == {"start_transaction_number": 2, "end_transaction_number": 3}
    both = owner.post(
        "/dashboard/exports",
        data={"csrf": csrf_of(page.text), "tss_id": shop["tss"],
              "start_transaction_number": "2", "start_date": "2020-01-01"},
        headers=en,
    )  # fmt: skip
    assert both.status_code == 400 and "exclude each other" in both.text
    bad_date = owner.post(
        "/dashboard/exports",
        data={"csrf": csrf_of(page.text), "tss_id": shop["tss"], "end_date": "tomorrow"},
    )
    assert bad_date.status_code == 400


def test_export_checks_run_in_the_background(tmp_path: Path) -> None:
    checks = uploads.ExportChecks()
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar archive at all" * 100)
    first = checks.result("e1", junk, wait=0)
    deadline = time.monotonic() + 30
    report = first
    while report is None:
        assert time.monotonic() < deadline
        report = checks.result("e1", junk, wait=0.5)
    assert report["ok"] is False and report["findings"][0]["severity"] == "error"
    assert checks.result("e1", junk, wait=0) is report  # kept, not run again


def test_more_registers_than_one_store_page(shop: dict[str, Any], web: Browsers) -> None:
    import uuid

    api = web.anon()
    h = api_login(api, shop["key"])
    tss, _ = setup_tss(api, h, "R-000")
    last = ""
    for i in range(1, 121):
        last = str(uuid.uuid4())
        r = api.put(f"/api/v2/tss/{tss}/client/{last}", json={"serial_number": f"R-{i:03d}"},
                    headers=h)  # fmt: skip
        assert r.status_code == 200, r.text
    sold = sell(api, h, tss, last, "1.23")
    owner = web.login(shop["key"])
    detail = owner.get(f"/dashboard/tss/{tss}").text
    assert all(f">R-{i:03d}</a>" in detail for i in range(121))
    assert _numbers(owner.get("/dashboard/tx", params={"register": "R-120"}).text) == [
        sold["number"]
    ]


def test_export_download_finds_the_file_in_this_nodes_shared_folder(
    shop: dict[str, Any], web: Browsers
) -> None:
    """A file recorded by a node that mounts the shared exports folder elsewhere is
    served from this node's folder by its unique name, as the API serves it."""
    import uuid

    owner = web.login(shop["key"])
    api = web.anon()
    h = api_login(api, shop["key"])
    export_id = str(uuid.uuid4())
    r = api.put(f"/api/v2/tss/{shop['tss']}/export/{export_id}", headers=h)
    assert r.status_code == 200, r.text
    svc = shop["app"].state.ctx.svc
    deadline = time.monotonic() + 60
    while (row := svc.get_export(export_id)).state != "COMPLETED":
        assert time.monotonic() < deadline, row.state
        time.sleep(0.05)
    data = Path(row.file_path).read_bytes()
    elsewhere = f"/mnt/other-node/exports/{Path(row.file_path).name}"
    assert svc.update_export(export_id, file_path=elsewhere)
    download = owner.get(f"/dashboard/exports/{export_id}/file")
    assert download.status_code == 200 and download.content == data
    assert svc.update_export(export_id, file_path=f"/mnt/other-node/exports/{export_id}.x.tar")
    assert owner.get(f"/dashboard/exports/{export_id}/file").status_code == 404


def test_export_checks_are_kept_on_disk_for_the_same_file(tmp_path: Path) -> None:
    """A restart (a new ExportChecks on the same folder) shows the stored report of
    an unchanged file instead of verifying it again; a changed file is verified."""
    import os

    from opentse.verify.synthetic import build_export

    folder = tmp_path / "export-checks"
    export = tmp_path / "e.tar"
    build_export(export, 30)
    export_id = "0b7a2c1e-5d4f-4a3b-9c8d-7e6f5a4b3c2d"

    def report_of(checks: uploads.ExportChecks) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while (report := checks.result(export_id, export, wait=0.5)) is None:
            assert time.monotonic() < deadline
        return report

    first = report_of(uploads.ExportChecks(folder))
    assert first["ok"] is True and first["log_messages"] == 30
    assert (folder / f"{export_id}.json").is_file()
    # the same size and modification time: taken as the same file, not read again
    info = export.stat()
    export.write_bytes(b"\0" * info.st_size)
    os.utime(export, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert report_of(uploads.ExportChecks(folder)) == first
    # changed: verified again (and found to be no export any more)
    os.utime(export, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    again = report_of(uploads.ExportChecks(folder))
    assert again["ok"] is False
    in_memory_only = uploads.ExportChecks().result(export_id, export, wait=30)
    assert in_memory_only is not None and in_memory_only["ok"] is False


def _headings_and_tables(html: str) -> tuple[list[int], list[str]]:
    """The heading levels in order, and each table's accessible name (its caption,
    aria-label or the text of the element aria-labelledby names; "" for none)."""
    levels = [int(n) for n in re.findall(r"<h([1-6])[\s>]", html)]
    ids = {m[0]: re.sub(r"<[^>]+>", "", m[1]).strip()
           for m in re.findall(r'<h[1-6] id="([^"]+)">(.*?)</h[1-6]>', html)}  # fmt: skip
    names = []
    for table in re.findall(r"<table[^>]*>\s*(?:<caption[^>]*>[^<]*)?", html):
        label = re.search(r'aria-label="([^"]+)"', table)
        labelled = re.search(r'aria-labelledby="([^"]+)"', table)
        caption = re.search(r"<caption[^>]*>([^<]*)", table)
        names.append(
            label.group(1) if label else ids.get(labelled.group(1), "") if labelled
            else caption.group(1).strip() if caption else ""
        )  # fmt: skip
    return levels, names


def test_every_table_has_a_name_and_headings_do_not_skip(
    shop: dict[str, Any], web: Browsers
) -> None:
    """A screen reader lists a page's tables by name (and jumps between them): the
    registers, protocol, export list, search results, log and findings tables had
    none ("table" six times on the TSE page)."""
    owner = web.login(shop["key"])
    tss, number = shop["tss"], shop["receipts"][0]["number"]
    r = owner.get("/dashboard/exports")
    r = owner.post("/dashboard/exports", data={"csrf": csrf_of(r.text), "tss_id": tss})
    export_url = r.headers["location"]
    for _ in range(100):
        done = owner.get(export_url + "/status").json()
        if done["done"]:
            break
        time.sleep(0.1)
    assert done["state"] == "COMPLETED", done
    pages = {
        "/dashboard/tss": 1,
        f"/dashboard/tss/{tss}": 3,  # and the protocol, once it has entries
        f"/dashboard/tx?tss={tss}": 1,
        f"/dashboard/tss/{tss}/tx/{number}": 1,
        "/dashboard/exports": 1,
        export_url: 0,  # and the findings, if any
    }
    for url, tables in pages.items():
        html = owner.get(url, params={"lang": "en"}).text
        levels, names = _headings_and_tables(html)
        assert levels.count(1) == 1, url
        assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), (url, levels)
        assert len(names) >= tables and all(names), (url, names)


def _title(html: str) -> str:
    found = re.search(r"<title>(.*?)</title>", html, re.S)
    assert found, "page has no title"
    return found.group(1)


def test_a_refused_form_says_so_in_the_page_title(shop: dict[str, Any], web: Browsers) -> None:
    """The page title is the first thing a screen reader says on a new page: after a
    refused form it said only 'Log in' (or 'Transactions', 'Exports', 'Verify') as
    before sending, and the message was somewhere below."""
    en = {"accept-language": "en"}
    client = web.anon()
    page = client.get("/dashboard/login", headers=en)
    assert _title(page.text) == "Log in · opentse"
    r = client.post(
        "/dashboard/login",
        data={"csrf": csrf_of(page.text), "api_key": shop["key"]["api_key"], "api_secret": "x"},
        headers=en,
    )
    assert r.status_code == 401 and _title(r.text) == "Error: Log in · opentse"
    owner = web.login(shop["key"])
    r = owner.get("/dashboard/tx", params={"amount": "12,5x", "lang": "en"})
    assert _title(r.text).startswith("Error: ")
    assert not _title(owner.get("/dashboard/tx", params={"lang": "en"}).text).startswith("Error")
    form = owner.get("/dashboard/exports", params={"lang": "en"})
    fields = {"csrf": csrf_of(form.text), "tss_id": shop["tss"]}
    r = owner.post("/dashboard/exports", data=fields | {"start_transaction_number": "5",
                                                       "end_transaction_number": "2"})  # fmt: skip
    assert r.status_code == 400 and _title(r.text) == "Error: Exports · opentse"
    page = owner.get("/dashboard/verify", params={"lang": "en"})
    r = owner.post("/dashboard/verify", data={"csrf": csrf_of(page.text), "qr_text": "V0;x"})
    assert _title(r.text) == "Result for QR – Verify an export or a receipt · opentse"


def test_a_refused_search_field_is_marked_and_points_to_its_message(
    shop: dict[str, Any], web: Browsers
) -> None:
    """A screen reader on the search form heard nothing wrong with the amount field
    after 'Error: Transactions': the message was a paragraph of its own. The field
    now is aria-invalid and described by its message; the others are not."""
    owner = web.login(shop["key"])
    html = owner.get("/dashboard/tx", params={"amount": "12,5x", "lang": "en"}).text
    field = re.search(r'<input id="f-amount"[^>]*>', html)
    assert field and 'aria-invalid="true"' in field.group(0)
    described = re.search(r'aria-describedby="([^"]+)"', field.group(0))
    assert described
    message = re.search(rf'<p [^>]*id="{described.group(1)}"[^>]*>([^<]*)</p>', html)
    assert message and "amount" in message.group(1).lower()
    others = re.search(r'<input id="f-number"[^>]*>', html)
    assert others and "aria-invalid" not in others.group(0)
    html = owner.get("/dashboard/tx", params={"from": "2026-02-03", "to": "2026-02-01"}).text
    dates = re.findall(r'<input id="f-(?:from|to)"[^>]*>', html)
    assert len(dates) == 2 and all('aria-invalid="true"' in d for d in dates)
