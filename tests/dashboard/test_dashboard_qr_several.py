"""The dashboard's verifier checks every receipt QR code in an uploaded picture: a
photo of a good receipt beside an altered one said "verified" (only the first code
was read), as ``opentse verify-receipt --image`` did before."""

from __future__ import annotations

from pathlib import Path

import httpx
import segno
from dashboard_support import api_login, csrf_of, dashboard_login, sell, served_shop, setup_tss
from PIL import Image


def picture(tmp_path: Path, texts: list[str]) -> bytes:
    """The QR codes side by side in one PNG, as a phone photographs two receipts."""
    parts = []
    for index, text in enumerate(texts):
        part = tmp_path / f"part{index}.png"
        segno.make(text, error="m").save(str(part), scale=4, border=4)
        parts.append(Image.open(part).convert("L"))
    width = sum(p.width for p in parts) + 40 * (len(parts) - 1)
    both = Image.new("L", (width, max(p.height for p in parts)), 255)
    x = 0
    for part in parts:
        both.paste(part, (x, 0))
        x += part.width + 40
    path = tmp_path / "photo.png"
    both.save(path)
    return path.read_bytes()


def upload(web: httpx.Client, png: bytes) -> str:
    csrf = csrf_of(web.get("/dashboard/verify").text)
    r = web.post(
        "/dashboard/verify",
        data={"csrf": csrf},
        files={"file": ("receipts.png", png, "image/png")},
        headers={"accept-language": "en"},
    )
    assert r.status_code == 200, r.text
    return r.text


def test_every_receipt_in_a_picture_is_checked(tmp_path: Path) -> None:
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h)
        good = [str(sell(web, h, tss, cid, amount)["qr_code_data"]) for amount in ("4.20", "9.90")]
        fields = good[1].split(";")
        assert "9.90" in fields[3]
        fields[3] = fields[3].replace("9.90", "1.90")  # cheaper, same signature
        altered = ";".join(fields)
        assert dashboard_login(web, key).status_code == 303

        page = upload(web, picture(tmp_path, [good[0], altered]))
        assert "E_QR_SEVERAL_FAILED" in page
        assert "the picture holds 2 receipt QR codes: 1 verified" in page
        assert "I_QR_SEVERAL" not in page

        page = upload(web, picture(tmp_path, good))
        assert "I_QR_SEVERAL" in page and "all verified" in page
        assert "E_QR_SEVERAL_FAILED" not in page

        page = upload(web, picture(tmp_path, good[:1]))  # one code: as before
        assert "QR_SEVERAL" not in page


def test_a_photo_without_a_readable_qr_code_is_no_invalid_receipt(tmp_path: Path) -> None:
    """A blank or blurred photo, a cut-off file, or a QR code of something else said
    "Receipt invalid." in red, as if the receipt were forged, though nothing was
    checked; the finding named the server's spool file ('upload.png')."""
    blank = tmp_path / "blank.png"
    Image.new("L", (300, 300), 255).save(blank)
    website = picture(tmp_path, ["https://cafe-mueller.example/"])
    with served_shop(tmp_path) as (web, key):
        assert dashboard_login(web, key).status_code == 303
        for name, data in (
            ("Kassenbon.png", blank.read_bytes()),
            ("Kassenbon.png", blank.read_bytes()[:120]),  # cut off while uploading
        ):
            page = upload_as(web, name, data)
            assert "No QR code read" in page and "Receipt invalid." not in page
            assert 'class="verdict warn"' in page
            assert "Kassenbon.png" in page and "upload.png" not in page
        page = upload_as(web, "Gutschein.png", website)
        assert "This is not a TSE receipt QR code" in page and "Receipt invalid." not in page
        german = web.post(
            "/dashboard/verify",
            data={"csrf": csrf_of(web.get("/dashboard/verify").text), "qr_text": "Hallo"},
            headers={"accept-language": "de"},
        ).text
        assert "kein Beleg-QR-Code einer TSE" in german and "Beleg ungültig." not in german


def upload_as(web: httpx.Client, name: str, data: bytes) -> str:
    csrf = csrf_of(web.get("/dashboard/verify").text)
    r = web.post(
        "/dashboard/verify",
        data={"csrf": csrf},
        files={"file": (name, data, "image/png")},
        headers={"accept-language": "en"},
    )
    assert r.status_code == 200, r.text
    return r.text


def test_severities_are_in_the_pages_language(tmp_path: Path) -> None:
    """The findings table of a German page said error/warning/info."""
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h)
        good = str(sell(web, h, tss, cid, "4.20")["qr_code_data"])
        assert dashboard_login(web, key).status_code == 303
        csrf = csrf_of(web.get("/dashboard/verify").text)
        page = web.post(
            "/dashboard/verify",
            data={"csrf": csrf, "qr_text": good},
            headers={"accept-language": "de"},
        ).text
        assert '<tr class="sev-info"><td>Hinweis</td>' in page
        bad = good.replace("4.20", "1.20")
        page = web.post(
            "/dashboard/verify",
            data={"csrf": csrf, "qr_text": bad},
            headers={"accept-language": "de"},
        ).text
        assert '<tr class="sev-error"><td>Fehler</td>' in page
