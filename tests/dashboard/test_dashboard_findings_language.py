"""The verifier's findings on the dashboard's pages: German on German pages by the
finding's code (the code stays visible, the verifier's own English kept beside it),
and what to do in the dashboard's terms, never a command-line option such as
``--tse-export``. Against a served shop, receipts signed through the API."""

from __future__ import annotations

import io
import re
import tarfile
import uuid
from html import unescape
from pathlib import Path

import httpx
from dashboard_support import api_login, csrf_of, dashboard_login, sell, served_shop, setup_tss

from opentse.dashboard.findings_text import TEXTS

ROOT = Path(__file__).resolve().parents[2]


def _cells(html: str) -> list[str]:
    """The findings' message cells as text (tags stripped)."""
    table = html.split('class="findings"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr class=\"sev-[a-z]+\">(.*?)</tr>", table, re.S)
    return [unescape(" ".join(re.sub(r"<[^>]+>", " ", r).split())) for r in rows]


def _verify(web: httpx.Client, text: str, lang: str) -> str:
    page = web.get("/dashboard/verify", params={"lang": lang})
    r = web.post("/dashboard/verify", data={"csrf": csrf_of(page.text), "qr_text": text})
    assert r.status_code == 200, r.text
    return r.text


def test_receipt_findings_are_german_with_their_code_and_name_no_cli_option(
    tmp_path: Path,
) -> None:
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h)
        receipt = sell(web, h, tss, cid, "12.30")
        qr = receipt["qr_code_data"]
        assert dashboard_login(web, key).status_code == 303

        good = _verify(web, qr, "de")
        assert "Beleg gültig" in good
        [cell] = _cells(good)
        assert "I_RECEIPT_OK" in cell  # the code stays visible
        assert "Die Signatur passt zum öffentlichen Schlüssel im QR-Code" in cell
        assert "--tse-export" not in good and "verifies with the public key" not in good
        number = receipt["number"]
        assert "Der Schlüssel im QR-Code ist der der TSE" in good
        link = f'href="/dashboard/tss/{tss}/tx/{number}" id="open-tx"'
        assert link in good  # what the text says to do, one click away
        assert web.get(f"/dashboard/tss/{tss}/tx/{number}").status_code == 200
        # the transaction's own QR page says whose key it is, without a link to itself
        own = web.get(f"/dashboard/tss/{tss}/tx/{number}/qr")
        assert "Der Schlüssel im QR-Code ist der der TSE" in own.text
        assert 'id="open-tx"' not in own.text

        fields = qr.split(";")
        fields[5] = str(int(fields[5]) + 1)  # signatureCounter, which the signature covers
        bad = _verify(web, ";".join(fields), "de")
        cells = _cells(bad)
        signature = next(c for c in cells if "E_RECEIPT_SIGNATURE" in c)
        assert "Die Signatur passt nicht" in signature and "Prüfen" in signature
        field = next(c for c in cells if "E_RECEIPT_FIELD" in c)
        right = int(fields[5]) - 1  # which field, which value: in German, at first sight
        assert (
            f"Das Feld signatureCounter des QR-Codes ist falsch: mit signatureCounter = {right}"
            in field
        )
        # the verifier's own words, for an auditor who quotes them: which field, which value
        assert f"signatureCounter = {int(fields[5]) - 1}" in field
        assert "Meldung des Prüfprogramms (englisch)" in field
        assert "--tse-export" not in bad

        english = _verify(web, qr, "en")  # the dashboard's terms in English too
        [cell] = _cells(english)
        assert "I_RECEIPT_OK" in cell and "uploaded here under 'Verify'" in cell
        assert "--tse-export" not in english


def test_every_code_the_dashboard_can_show_has_a_german_text() -> None:
    """A new code of the verifier (exports, receipts) shows English on German pages
    until it is added here: this names it."""
    sources = sorted((ROOT / "src/opentse/verify").glob("*.py"))
    sources.append(ROOT / "src/opentse/formats/qr.py")
    missing = {}
    for source in sources:  # also the codes only the command line reports today
        codes = set(re.findall(r'"([EWI]_[A-Z0-9_]+)"', source.read_text(encoding="utf-8")))
        if codes - set(TEXTS):
            missing[source.name] = sorted(codes - set(TEXTS))
    assert missing == {}
    for code, (german, english) in TEXTS.items():
        assert "--" not in german and "--" not in (english or ""), code


def test_a_receipt_of_another_shops_tse_is_not_linked_to_a_transaction_here(
    tmp_path: Path,
) -> None:
    """A valid receipt signed by a TSE of no TSE of this organization: the page says
    so, and links no transaction of this shop that merely has the same number."""
    with served_shop(tmp_path / "other") as (other, other_key):
        h = api_login(other, other_key)
        tss, cid = setup_tss(other, h)
        foreign = sell(other, h, tss, cid, "5.00")["qr_code_data"]
    with served_shop(tmp_path / "here") as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h)
        sell(web, h, tss, cid, "5.00")  # transaction 1 here too
        assert dashboard_login(web, key).status_code == 303
        page = _verify(web, foreign, "de")
        assert "Beleg gültig" in page
        assert "gehört zu keiner TSE Ihrer Organisation" in page
        assert "/tx/1" not in page and 'id="open-tx"' not in page


def test_an_uploaded_export_with_a_gap_names_counters_and_transactions_in_german(
    tmp_path: Path,
) -> None:
    """An export the API made, one log taken out (counter 8) and one altered: the
    German findings name the missing counter, the transaction without its Start log
    and the open one, as the verifier's English does (which stays beside them)."""
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h)
        for amount in ("1.00", "2.00", "3.00"):
            sell(web, h, tss, cid, amount)
        started = web.put(f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}", params={"tx_revision": 1},
                          json={"state": "ACTIVE", "client_id": cid}, headers=h)  # fmt: skip
        assert started.status_code == 200, started.text
        export = str(uuid.uuid4())
        assert web.put(f"/api/v2/tss/{tss}/export/{export}", headers=h).status_code == 200
        url = f"/api/v2/tss/{tss}/export/{export}"
        while (state := web.get(url, headers=h).json()["state"]) in ("PENDING", "WORKING"):
            pass  # until the export job has answered
        assert state == "COMPLETED"
        file = io.BytesIO(web.get(url + "/file", headers=h).content)
        edited = io.BytesIO()
        with (
            tarfile.open(fileobj=file) as made,
            tarfile.open(fileobj=edited, mode="w", format=tarfile.USTAR_FORMAT) as out,
        ):
            for member in made.getmembers():
                if "_Sig-8_" not in member.name:
                    out.addfile(member, made.extractfile(member))
        assert dashboard_login(web, key).status_code == 303
        page = web.get("/dashboard/verify", params={"lang": "de"})
        upload = {"file": ("export.tar", edited.getvalue(), "application/x-tar")}
        r = web.post("/dashboard/verify", data={"csrf": csrf_of(page.text)}, files=upload)
        assert r.status_code == 200 and "Export fehlerhaft." in r.text
        cells = _cells(r.text)
        gap = next(c for c in cells if "E_COUNTER_GAP" in c)
        assert "Signaturzähler 8 fehlen (1 Log-Nachricht(en))" in gap
        assert "signature counter(s) 8 missing" in gap  # the verifier's words, folded
        assert any("Zu Transaktion 2 fehlt der Start-Log" in c for c in cells)
        assert any("Transaktion 4 ist am Ende des Exports noch offen" in c for c in cells)
