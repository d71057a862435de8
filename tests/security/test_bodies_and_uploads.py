"""Hostile request bodies and hostile TARs.

Bodies: over 1 MB (declared or streamed without a length) -> 413; deeply nested,
huge-number, duplicate-key, non-UTF-8 JSON -> 400; never a 500. TARs: path
traversal, absolute names and symlinks/hardlinks/devices are refused by the
verifier's reader with E_TAR_UNSAFE_MEMBER, through the library, ``opentse verify``
and the dashboard's upload form.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import LiveServer, new_tss

from opentse.errors import FormatError
from opentse.formats.tar import iter_members
from opentse.verify.archive import UnreadableExportError
from opentse.verify.report import verify_exports

MB = 1024 * 1024


@pytest.fixture(scope="module")
def tss(live: LiveServer) -> dict[str, Any]:
    token = live.token(live.new_key("bodies"))
    with live.client(token) as c:
        tss_id, _ = new_tss(c, live)
    return {"token": token, "tss": tss_id}


def _send(live: LiveServer, token: str, method: str, path: str, content: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    r = httpx.request(method, live.base + path, content=content, headers=headers, timeout=60)
    live.remember(r)
    return r


def test_oversized_bodies_are_413(live: LiveServer, tss: dict[str, Any]) -> None:
    big = json.dumps({"metadata": {"k": "x" * (MB + 10)}}).encode()
    tx_path = f"/tss/{tss['tss']}/tx/{uuid.uuid4()}?tx_revision=1"
    for method, path in (
        ("PATCH", f"/tss/{tss['tss']}/metadata"),
        ("POST", "/auth"),
        ("PUT", tx_path),
    ):
        r = _send(live, tss["token"], method, path, big)
        assert r.status_code == 413, (path, r.status_code, r.text[:200])
        assert r.json()["code"] == "E_REQUEST_TOO_LARGE"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        yield b'{"k": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    r = _send(live, tss["token"], "PATCH", f"/tss/{tss['tss']}/metadata", chunks())
    assert r.status_code == 413, r.text[:200]


HOSTILE = {
    "long-number": b'{"state": "ACTIVE", "client_id": ' + b"9" * 5000 + b"}",
    "huge-float": b'{"state": 1e999999}',
    "duplicate-key": b'{"state": "ACTIVE", "state": "FINISHED"}',
    "utf16": b"\xff\xfe{\x00}\x00",
    "latin1": b'{"state": "\xe4"}',
    "empty": b"",
    "null": b"null",
    "string": b'"just a string"',
    "array": b"[1, 2, 3]",
    "truncated": b'{"state": "ACT',
    "nested-200": b"[" * 200 + b"]" * 200,
}
NESTED = {
    "arrays-100k": b"[" * 100_000 + b"]" * 100_000,
    "objects-50k": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "metadata-5k": b'{"metadata": ' + b"[" * 5000 + b"]" * 5000 + b"}",
}


def _paths(tss: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("PUT", f"/tss/{tss['tss']}/tx/{uuid.uuid4()}?tx_revision=1"),
        ("PATCH", f"/tss/{tss['tss']}/metadata"),
        ("PATCH", f"/tss/{tss['tss']}"),
        ("POST", "/auth"),
    ]


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_json_never_a_500(live: LiveServer, tss: dict[str, Any], name: str) -> None:
    for method, path in _paths(tss):
        r = _send(live, tss["token"], method, path, HOSTILE[name])
        assert r.status_code < 500, (path, r.status_code, r.text[:300])
        if r.status_code >= 400:
            assert set(r.json()) == {"status_code", "error", "code", "message"}
    assert httpx.get(live.origin + "/health", timeout=30).status_code == 200


@pytest.mark.parametrize("name", sorted(NESTED))
def test_deeply_nested_json_is_400(live: LiveServer, tss: dict[str, Any], name: str) -> None:
    for method, path in _paths(tss):
        r = _send(live, tss["token"], method, path, NESTED[name])
        assert r.status_code == 400, (path, r.status_code, r.text[:300])


def test_lone_surrogate_in_metadata_is_refused(live: LiveServer) -> None:
    token = live.token(live.new_key("surrogate"))
    with live.client(token) as c:
        tss_id, _ = new_tss(c, live)
    r = _send(live, token, "PATCH", f"/tss/{tss_id}/metadata", b'{"k": "\\ud800"}')
    assert r.status_code == 400, r.text[:300]
    r = _send(live, token, "GET", f"/tss/{tss_id}/metadata", None)
    assert r.status_code == 200, r.text[:300]


# ----------------------------------------------------------------------------- TARs


def _tar(*members: tarfile.TarInfo, data: bytes = b"\x30\x00") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        ok = tarfile.TarInfo("info.csv")
        ok.size = 4
        tar.addfile(ok, io.BytesIO(b"a,b\n"))
        for m in members:
            tar.addfile(m, io.BytesIO(data) if m.isreg() else None)
    return buf.getvalue()


def _reg(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 2
    return info


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info


LOG = "Unixt_1700000000_Sig-1_Log-Tra_No-1_Start_Client-K.log"
UNSAFE = {
    "dotdot": _tar(_reg("../" + LOG)),
    "deep-dotdot": _tar(_reg("a/b/../../../../etc/" + LOG)),
    "absolute": _tar(_reg("/tmp/" + LOG)),
    "backslash-dotdot": _tar(_reg("..\\" + LOG)),
    "symlink": _tar(_link(LOG, "/etc/passwd", tarfile.SYMTYPE)),
    "symlink-dir": _tar(_link("sub", "/etc", tarfile.SYMTYPE)),
    "hardlink": _tar(_link(LOG, "info.csv", tarfile.LNKTYPE)),
    "device": _tar(_device("null.log")),
    "fifo": _tar(_link("pipe.log", "", tarfile.FIFOTYPE)),
}


@pytest.mark.parametrize("name", sorted(UNSAFE))
def test_reader_refuses_unsafe_members(name: str, tmp_path: Path) -> None:
    blob = UNSAFE[name]
    with pytest.raises(FormatError) as caught:
        list(iter_members(io.BytesIO(blob)))
    assert caught.value.code == "E_TAR_UNSAFE_MEMBER"
    path = tmp_path / f"{name}.tar"
    path.write_bytes(blob)
    try:
        report = verify_exports([path])
    except UnreadableExportError as exc:
        assert "E_TAR_UNSAFE_MEMBER" in str(exc) or exc.code == "E_TAR_UNSAFE_MEMBER"
    else:
        assert not report.ok
        assert "E_TAR_UNSAFE_MEMBER" in {f.code for f in report.findings}
    # nothing was written outside (or inside) the folder by reading it
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.tar"]


def test_verifier_refuses_windows_drive_names(tmp_path: Path) -> None:
    blob = _tar(_reg("C:\\temp\\" + LOG))
    with pytest.raises(FormatError):
        list(iter_members(io.BytesIO(blob)))
    path = tmp_path / "windows.tar"
    path.write_bytes(blob)
    try:
        report = verify_exports([path])
    except UnreadableExportError as exc:
        assert "E_TAR_UNSAFE_MEMBER" in str(exc)
    else:
        assert "E_TAR_UNSAFE_MEMBER" in {f.code for f in report.findings}


def test_opentse_verify_cli_refuses_traversal(tmp_path: Path) -> None:
    path = tmp_path / "evil.tar"
    path.write_bytes(UNSAFE["dotdot"])
    done = subprocess.run(
        [str(Path(sys.executable).parent / "opentse"), "verify", str(path), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "E_TAR_UNSAFE_MEMBER" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path.parent / LOG).exists()


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def test_dashboard_upload_refuses_symlink_and_traversal(live: LiveServer) -> None:
    key = live.new_key("upload")
    dash = live.origin + "/dashboard"
    with httpx.Client(timeout=60, follow_redirects=True) as web:
        csrf = _csrf(web.get(dash + "/login").text)
        r = web.post(dash + "/login", data={**key, "csrf": csrf})
        assert r.status_code == 200, r.text[:300]
        for name in ("dotdot", "symlink", "absolute"):
            csrf = _csrf(web.get(dash + "/verify").text)
            files = {"file": (f"{name}.tar", UNSAFE[name], "application/x-tar")}
            r = web.post(dash + "/verify", data={"csrf": csrf}, files=files)
            assert r.status_code < 500, r.text[:300]
            assert "E_TAR_UNSAFE_MEMBER" in r.text, (name, r.status_code)
    spool = live.data / "tmp"
    assert not spool.exists() or not any(spool.rglob("*.log"))
