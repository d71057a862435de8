"""Gaps an adversarial review found in the dashboard, over a served app: hostile
input answers a page (404 / 200 with the form's error), never a 500; logout ends the
session on the server, not only in the browser that logged out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
from dashboard_support import (
    api_login,
    csrf_of,
    dashboard_login,
    sell,
    served_shop,
    setup_tss,
)

from opentse.dashboard.session import COOKIE
from opentse.installation import Installation
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.testing.serving import serving_in_thread

HUGE = "9" * 30  # beyond SQLite's 64-bit INTEGER


def test_huge_numbers_and_amounts_are_not_a_500(tmp_path: Path) -> None:
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h)
        number = sell(web, h, tss, cid, "1.00")["number"]
        assert dashboard_login(web, key).status_code == 303
        for url in (
            f"/dashboard/tss/{tss}/tx/{HUGE}",
            f"/dashboard/tss/{tss}/tx/{HUGE}/qr",
            f"/dashboard/tss/{tss}/tx/{number}/log/{HUGE}",
        ):
            r = web.get(url, headers={"Connection": "close"})
            assert r.status_code == 404, (url, r.status_code)
        assert web.get(f"/dashboard/tss/{tss}/tx/{number}").status_code == 200
        for amount in ("1e999999", "1" * 5000, "9" * 40):
            r = web.get("/dashboard/tx", params={"amount": amount}, headers={"Connection": "close"})
            assert r.status_code == 400, (amount[:10], r.status_code)  # refused, not a 500
            assert 'role="alert"' in r.text, amount[:10]  # the form's "bad amount"
        r = web.get("/dashboard/tx", params={"amount": "1,00"})
        assert r.status_code == 200 and f"/tx/{number}" in r.text


def test_logout_ends_the_session_for_a_copied_cookie_too(tmp_path: Path) -> None:
    """A stolen or kept copy of the session cookie stops working at logout, also
    after a restart (before: valid until its 8 hours ran out)."""
    data = tmp_path / "data"
    copied = ""
    for run in range(2):
        inst = Installation.open(data)
        app = create_app(inst, ServerConfig(data_dir=data))
        try:
            with serving_in_thread(app) as base, httpx.Client(base_url=base, timeout=30) as web:
                if run == 0:
                    ctx = app.state.ctx
                    key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
                    assert dashboard_login(web, key).status_code == 303
                    copied = web.cookies[COOKIE]
                    with httpx.Client(base_url=base, timeout=30) as second:
                        other_cookie = dashboard_login(second, key).cookies[COOKIE]
                    page = web.get("/dashboard/tss")
                    assert page.status_code == 200
                    r = web.post("/dashboard/logout", data={"csrf": csrf_of(page.text)})
                    assert r.status_code == 303
                    # another login of the same key keeps its session
                    r = httpx.get(base + "/dashboard/tss", cookies={COOKIE: other_cookie})
                    assert r.status_code == 200
                r = httpx.get(base + "/dashboard/tss", cookies={COOKIE: copied})
                assert (r.status_code, r.headers.get("location")) == (303, "/dashboard/login")
        finally:
            inst.close()


def test_forms_before_login_take_no_files_and_no_large_fields(tmp_path: Path) -> None:
    """/dashboard/login and /logout parse their form before anybody is logged in (the
    CSRF check needs it): a file part there was spooled to disk whatever its size,
    and fields could be 1 MB each, 1000 of them."""
    with served_shop(tmp_path) as (web, key):
        csrf = csrf_of(web.get("/dashboard/login").text)
        for path in ("/dashboard/login", "/dashboard/logout"):
            r = web.post(
                path,
                data={"csrf": csrf},
                files={"file": ("big.bin", b"\0" * (4 * 2**20))},
                headers={"Connection": "close"},
            )
            assert r.status_code == 400, (path, r.status_code)
            r = web.post(
                path,
                data={"csrf": csrf, "api_key": "k" * (200 * 1024)},
                headers={"Connection": "close"},
            )
            assert r.status_code == 400, (path, r.status_code)
            many = {f"f{i}": "x" for i in range(100)}
            r = web.post(path, data={"csrf": csrf, **many}, headers={"Connection": "close"})
            assert r.status_code == 400, (path, r.status_code)
        # the ordinary login form still works
        assert dashboard_login(web, key).status_code == 303


def test_verify_upload_without_a_length_is_refused_before_it_is_stored(tmp_path: Path) -> None:
    """The upload's size was checked against Content-Length only when one was sent;
    a chunked body was spooled to disk by the form parser whatever its size before
    the 200 MB check ran. Browsers always send the length."""
    with served_shop(tmp_path) as (web, key):
        assert dashboard_login(web, key).status_code == 303
        csrf = csrf_of(web.get("/dashboard/verify").text)
        boundary = "b0undary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="x.tar"\r\nContent-Type: application/x-tar\r\n\r\n'
        ).encode()

        def chunks() -> Iterator[bytes]:
            yield head
            for _ in range(8):
                yield b"\0" * 65536
            yield f"\r\n--{boundary}--\r\n".encode()

        r = web.post(
            "/dashboard/verify",
            content=chunks(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert r.status_code == 411, r.status_code
        assert 'role="alert"' in r.text
        r = web.post("/dashboard/verify", data={"csrf": csrf, "qr_text": "V0;x"})
        assert r.status_code == 200  # an ordinary form post still works


def test_session_cookie_is_secure_behind_a_tls_proxy(tmp_path: Path) -> None:
    """opentse serve runs uvicorn with proxy_headers=False, so behind a TLS-terminating
    proxy the app sees http and the session cookie went out without Secure. The
    proxy's X-Forwarded-Proto can only add the flag (a forged one makes the sender's
    own cookie stricter, nothing else)."""
    data = tmp_path / "data"
    inst = Installation.open(data)
    app = create_app(inst, ServerConfig(data_dir=data))
    try:
        # as `opentse serve` runs it
        with serving_in_thread(app, proxy_headers=False) as base:
            ctx = app.state.ctx
            key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
            proxied = {"X-Forwarded-Proto": "https"}
            page = httpx.get(base + "/dashboard/login", headers=proxied)
            assert "; secure" in page.headers["set-cookie"].lower()
            cookie = page.headers["set-cookie"].split(";")[0]
            r = httpx.post(
                base + "/dashboard/login",
                data={"csrf": csrf_of(page.text), "api_key": key["api_key"],
                      "api_secret": key["api_secret"]},
                headers={**proxied, "Cookie": cookie},
            )  # fmt: skip
            assert r.status_code == 303
            assert "; secure" in r.headers["set-cookie"].lower()
            # plain http without a proxy (127.0.0.1): no Secure, or the browser drops it
            plain = httpx.get(base + "/dashboard/login")
            assert "secure" not in plain.headers["set-cookie"].lower()
    finally:
        inst.close()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels (tiny file, one empty IDAT)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_image_claiming_too_many_pixels_is_a_finding_not_a_500(tmp_path: Path) -> None:
    """Pillow refuses images beyond its decompression-bomb limit with an error the
    upload check did not expect (a 500), and decodes those just below it (~89-178
    million pixels, hundreds of MB) with only a warning."""
    with served_shop(tmp_path) as (web, key):
        assert dashboard_login(web, key).status_code == 303
        for width, height in ((100_000, 100_000), (10_000, 10_000)):
            csrf = csrf_of(web.get("/dashboard/verify").text)
            png = _png_header_only(width, height)
            r = web.post(
                "/dashboard/verify",
                data={"csrf": csrf},
                files={"file": ("bomb.png", png, "image/png")},
                headers={"accept-language": "en", "Connection": "close"},
            )
            assert r.status_code == 200, (width, r.status_code)
            assert "E_QR_IMAGE_TOO_LARGE" in r.text, width
