"""The states of TSEs, transactions, registers and exports are shown in the page's
language: the German pages showed the API's names (INITIALIZED, FINISHED,
COMPLETED ...) to shop owners and auditors who read German. The English pages keep
the API's names, which an integrator finds in the API's answers."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from dashboard_support import api_login, dashboard_login, sell, served_shop, setup_tss

from opentse.dashboard import i18n
from opentse.server import schemas

API_NAMES = re.compile(r"\b(" + "|".join(i18n.STATES) + r")\b")


def _text(html: str) -> str:
    """What the page shows: without tags and attribute values (CSS classes, links and
    form values keep the API's names)."""
    body = html.split("<main", 1)[1]
    return " ".join(re.sub(r"<[^>]*>", " ", body).split())


def _states(html: str) -> list[str]:
    return re.findall(r'<span class="state state-[a-z]+[^"]*"[^>]*>([^<]*)</span>', html)


def test_every_api_state_has_a_name_in_both_languages() -> None:
    every = {*schemas.TSS_STATES, *schemas.TX_STATES, *schemas.EXPORT_STATES}
    assert every | set(schemas.CLIENT_STATES) <= set(i18n.STATES)
    for api, (de, en) in i18n.STATES.items():
        assert en == api and de.strip() and not API_NAMES.search(de), api
    german, english = i18n.state_namer("de"), i18n.state_namer("en")
    assert german("FINISHED") == "abgeschlossen" and english("FINISHED") == "FINISHED"
    assert german("SOMETHING_NEW") == "SOMETHING_NEW"  # a newer API's: as it is named


def test_state_names_in_german_and_english(tmp_path: Path) -> None:
    with served_shop(tmp_path) as (web, key):
        h = api_login(web, key)
        tss, cid = setup_tss(web, h, "KASSE-1")
        sold = sell(web, h, tss, cid, "12.30")
        open_tx = str(uuid.uuid4())
        r = web.put(f"/api/v2/tss/{tss}/tx/{open_tx}", params={"tx_revision": 1},
                    json={"state": "ACTIVE", "client_id": cid}, headers=h)  # fmt: skip
        assert r.status_code == 200, r.text
        r = web.put(f"/api/v2/tss/{tss}/export/{uuid.uuid4()}", headers=h)
        assert r.status_code == 200, r.text
        assert dashboard_login(web, key).status_code == 303

        def page(path: str, lang: str, **params: str) -> str:
            answer = web.get(f"/dashboard{path}", params={"lang": lang, **params})
            assert answer.status_code == 200, answer.text
            return answer.text

        pages = {
            lang: {
                "list": page("/tss", lang),
                "tse": page(f"/tss/{tss}", lang),
                "search": page("/tx", lang, tss=tss),
                "receipt": page(f"/tss/{tss}/tx/{sold['number']}", lang),
                "exports": page("/exports", lang),
            }
            for lang in ("de", "en")
        }
        de, en = pages["de"], pages["en"]
        assert _states(de["list"]) == ["initialisiert"] == _states(de["tse"])
        assert _states(en["list"]) == ["INITIALIZED"] == _states(en["tse"])
        assert "<td>angemeldet</td>" in de["tse"] and "<td>REGISTERED</td>" in en["tse"]
        assert _states(de["search"]) == ["offen", "abgeschlossen"]
        assert _states(en["search"]) == ["ACTIVE", "FINISHED"]
        options = r'<option value="(\w+)"(?: selected)?>([^<]*)</option>'
        assert re.findall(options, de["search"].split('id="f-state"', 1)[1])[:3] == [
            ("ACTIVE", "offen"), ("FINISHED", "abgeschlossen"), ("CANCELLED", "abgebrochen"),
        ]  # fmt: skip
        assert _states(de["receipt"]) == ["abgeschlossen"]
        assert _states(en["receipt"]) == ["FINISHED"]
        (shown,) = _states(de["exports"])
        assert shown in ("wartet", "läuft", "fertig"), shown
        assert "(initialisiert)" in de["exports"] and "(INITIALIZED)" in en["exports"]
        for name, html in de.items():  # no API name left in what a German page shows
            assert not API_NAMES.findall(_text(html)), (name, API_NAMES.findall(_text(html)))
