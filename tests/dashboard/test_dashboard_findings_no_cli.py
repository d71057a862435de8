"""No finding on a German dashboard page is English or names a command.

The verifier words its findings for the command line: an export with a second
archive appended said "give each export as its own file (opentse verify a.tar
b.tar)", a ZIP said "use `opentse dsfinvk check`", and the dashboard kept those
words beside its German text; the receipt-match and cross-check codes had no German
at all. Every code the verifier's sources can produce, with each wording of its
source that names a command or an option, is rendered here as a German page would,
and an appended archive is uploaded to the served dashboard."""

from __future__ import annotations

import ast
import io
import re
import tarfile
import uuid
from pathlib import Path

import httpx
from dashboard_support import api_login, csrf_of, dashboard_login, sell, served_shop, setup_tss

from opentse.dashboard.findings_text import finding_text

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*sorted((ROOT / "src/opentse/verify").glob("*.py")), ROOT / "src/opentse/formats/qr.py"]
CODE = re.compile(r"^[EWI]_[A-Z0-9_]+$")
# what a dashboard user cannot run: a command of the CLI or one of its options
COMMAND = re.compile(r"opentse [a-z]|(?<![\w-])--[a-z]")


def _literals(tree: ast.AST) -> list[str]:
    """Every string of a source, f-strings with each value as 1 (a number, as the
    messages' octets and counters are)."""
    found: list[str] = []
    inner = {
        id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values
    }  # the parts of an f-string are read with it, not again
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in inner:
                found.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            found.append(
                "".join(
                    v.value if isinstance(v, ast.Constant) else "1"
                    for v in node.values
                    if not isinstance(v, ast.Constant) or isinstance(v.value, str)
                )
            )
    return found


def test_every_code_of_the_verifier_is_german_and_names_no_command() -> None:
    checked, wrong = 0, []
    for source in SOURCES:
        strings = _literals(ast.parse(source.read_text(encoding="utf-8")))
        codes = sorted({s for s in strings if CODE.match(s)})
        worded = [s for s in strings if COMMAND.search(s) and not s.startswith(("\n", " "))]
        for code in codes:
            for message in ["", *worded]:
                shown = finding_text({"code": code, "message": message}, "de")
                checked += 1
                if shown.text_lang != "de":
                    wrong.append(f"{source.name} {code}: English text {shown.text[:60]!r}")
                for part in (shown.text, shown.original):
                    if COMMAND.search(part):
                        wrong.append(f"{source.name} {code}: names a command: {part[:80]!r}")
    assert checked > 100  # the walk found the verifier's codes and their words
    assert wrong == []


def _export(web: httpx.Client, h: dict[str, str], tss: str) -> bytes:
    export = str(uuid.uuid4())
    assert web.put(f"/api/v2/tss/{tss}/export/{export}", headers=h).status_code == 200
    url = f"/api/v2/tss/{tss}/export/{export}"
    while (state := web.get(url, headers=h).json()["state"]) in ("PENDING", "WORKING"):
        pass  # until the export job has answered
    assert state == "COMPLETED"
    return web.get(url + "/file", headers=h).content


def _upload(web: httpx.Client, name: str, data: bytes, lang: str) -> str:
    page = web.get("/dashboard/verify", params={"lang": lang})
    upload = {"file": (name, data, "application/x-tar")}
    r = web.post("/dashboard/verify", data={"csrf": csrf_of(page.text)}, files=upload)
    assert r.status_code == 200, r.text
    return r.text


def test_an_appended_archive_is_said_in_the_dashboards_terms(tmp_path: Path) -> None:
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h)
        sell(web, h, tss, cid, "4.20")
        tar = _export(web, h, tss)
        with tarfile.open(fileobj=io.BytesIO(tar)) as made:  # a real TAR: it reads
            assert any("_Sig-" in m.name for m in made.getmembers())
        assert dashboard_login(web, key).status_code == 303
        german = _upload(web, "export.tar", tar + tar, "de")  # `cat a.tar b.tar`
        assert "E_EXPORT_UNREADABLE" in german
        assert "Nach den Endblöcken des TAR-Archivs" in german
        assert "jeden Export als eigene Datei hochladen" in german
        english = _upload(web, "export.tar", tar + tar, "en")
        assert "upload each export as its own file" in english
        for page in (german, english):
            assert "opentse verify" not in page and "a.tar b.tar" not in page
