"""An uploaded export the verifier cannot read is named on the page by the name the
visitor gave it, never by the server's temporary upload path: the message said
'E_EXPORT_UNREADABLE: /srv/opentse/data/tmp/tmpk2j4/januar.tar: not a readable TAR
archive', a server-side path on a shop owner's page (an info leak, and useless to
them)."""

from __future__ import annotations

import html
import io
import tarfile
from pathlib import Path

import pytest
from dashboard_support import csrf_of, dashboard_login, served_shop

from opentse.dashboard import uploads


def _cut_tar() -> bytes:
    """A TAR cut inside its second member's data (a copy not finished)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for n in range(3):
            info = tarfile.TarInfo(f"member{n}.log")
            info.size = 1000
            tar.addfile(info, io.BytesIO(b"x" * 1000))
    return buf.getvalue()[:1500]


@pytest.mark.parametrize("lang", ["en", "de"])
def test_an_unreadable_upload_is_named_by_its_own_name(tmp_path: Path, lang: str) -> None:
    with served_shop(tmp_path) as (web, key):
        assert dashboard_login(web, key).status_code == 303
        page = web.get("/dashboard/verify", params={"lang": lang})
        upload = {"file": ("januar.tar", _cut_tar(), "application/x-tar")}
        r = web.post("/dashboard/verify", data={"csrf": csrf_of(page.text)}, files=upload)
        assert r.status_code == 200, r.text
        text = html.unescape(r.text)
        assert "E_EXPORT_UNREADABLE" in text
        assert "januar.tar" in text
        for server_side in (str(tmp_path), "/tmp/", "upload.tar"):
            assert server_side not in text, (
                server_side,
                text[text.find("UNREADABLE") - 300 :][:900],
            )


def test_the_name_is_put_in_once_however_often_it_is_named(tmp_path: Path) -> None:
    """An uploaded file name that holds the server's own name for it (kasse1-upload.tar
    around upload.tar), named twice (verify_tar, then the upload handler): the finding
    said kasse1-kasse1-kasse1-upload.tar (review of 1f01bf0)."""
    folder = tmp_path / "tmpX"
    folder.mkdir()
    path = folder / "upload.tar"
    path.write_bytes(b"not a tar archive" * 40)
    report = uploads.verify_tar(path, "kasse1-upload.tar")
    findings = report["findings"]
    uploads.own_name(findings, path, "kasse1-upload.tar")  # the handler names it again
    text = " ".join(f"{f['message']} {f['file']}" for f in findings)
    assert "kasse1-upload.tar" in text, text
    assert "kasse1-kasse1" not in text and str(folder) not in text, text
