"""The TSE page lists every export of the TSE with where it was made: through the
API or the dashboard, with ``opentse archive export`` (the export archive) and with
``opentse export`` (recorded only by the exportData log the TSE signs). It listed
the API's exports only, so a shop whose exports are made by the archive cron job
or by hand on the command line looked as if it had never exported. Real
``opentse serve`` and CLI processes on one data folder."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
from dashboard_support import (
    api_login,
    csrf_of,
    dashboard_login,
    export_rows,
    opentse,
    sell,
    setup_tss,
)

from opentse.dashboard.tse_exports import ExportLog, attribute, filter_parts
from opentse.testing.serving import serve_process


def test_the_tse_page_lists_api_archive_and_cli_exports(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = json.loads(opentse("apikey", "create", "--data", str(data), "--json"))
    with (
        serve_process(data) as base,
        httpx.Client(base_url=base, timeout=30) as api,
        httpx.Client(base_url=base, timeout=30) as web,
    ):
        h = api_login(api, key)
        tss, cid = setup_tss(api, h, "KASSE-1")
        for amount in ("2.50", "1.00", "4.00"):
            sell(api, h, tss, cid, amount)
        assert dashboard_login(web, key).status_code == 303
        page = f"/dashboard/tss/{tss}"
        assert export_rows(web.get(page, params={"lang": "en"}).text) == []
        # through the dashboard (the API's export job): transactions 1-2
        form = web.get("/dashboard/exports")
        fields = dict.fromkeys(("client_id", "start_date", "end_date"), "")
        fields |= {"csrf": csrf_of(form.text), "tss_id": tss}
        fields |= {"start_transaction_number": "1", "end_transaction_number": "2"}
        started = web.post("/dashboard/exports", data=fields)
        assert started.status_code == 303, started.text
        export_id = started.headers["location"].rsplit("/", 1)[-1]
        for _ in range(100):
            done = api.get(f"/api/v2/tss/{tss}/export/{export_id}", headers=h)
            if done.json()["state"] == "COMPLETED":
                break
            time.sleep(0.1)
        assert done.json()["state"] == "COMPLETED", done.text
        time.sleep(1.1)  # the next exports are signed in a later second
        cli_out = tmp_path / "by-hand.tar"
        cli = json.loads(
            opentse("export", str(cli_out), "--tss", tss, "--from-tx", "3", "--to-tx", "3",
                     "--data", str(data), "--json")
        )  # fmt: skip
        archived = json.loads(opentse("archive", "export", tss, "--data", str(data), "--json"))
        html = web.get(page, params={"lang": "en"}).text
        rows = export_rows(html)
        assert len(rows) == 3, rows
        newest, by_hand, api_made = rows
        assert newest.startswith(tuple("0123456789")) and "Archive (opentse archive)" in newest
        assert "everything" in newest and "verified" in newest
        assert Path(archived["path"]).name in newest
        assert "Command line (opentse export)" in by_hand
        assert "Transactions 3–3" in by_hand and "signed" in by_hand
        assert by_hand.endswith(str(cli["export_log_signature_counter"]))
        assert "API / dashboard" in api_made and "Transactions 1–2" in api_made
        assert "COMPLETED" in api_made
        assert f'href="/dashboard/exports/{export_id}"' in html
        # the Exports page (its list is the API's) points to them
        listed = web.get("/dashboard/exports", params={"lang": "en"}).text
        assert "2 export(s) made with &#39;opentse archive&#39; or &#39;opentse export&#39;" in (
            listed
        )
        assert f'href="/dashboard/tss/{tss}#exps"' in listed
        # German, and read again (only logs signed since the last look are read)
        de = export_rows(web.get(page, params={"lang": "de"}).text)
        assert ["Archiv" in de[0], "Kommandozeile" in de[1], "API" in de[2]] == [True] * 3


def _api(export_id: str, params: dict[str, int], start: int, end: int | None) -> SimpleNamespace:
    return SimpleNamespace(
        export_id=export_id, params=params, state="COMPLETED" if end else "ERROR",
        time_request=start, time_start=start, time_end=end, time_error=None if end else start,
    )  # fmt: skip


def test_each_export_log_goes_to_one_export() -> None:
    logs = [
        ExportLog(10, 100, "transactionNumber=1-2"),  # the API export's
        ExportLog(20, 100, "transactionNumber=1-2"),  # a CLI export with the same filter
        ExportLog(30, 200, ""),  # the archive's (after its last counter 29)
        ExportLog(31, 200, ""),  # a CLI export of everything right after
    ]
    api = [
        _api("a", {"start_transaction_number": 1, "end_transaction_number": 2}, 100, 100),
        _api("failed", {}, 150, None),  # failed before signing: claims no log
    ]
    archived = [
        SimpleNamespace(
            id="z", created_at=190, last_counter=29, verified_ok=True, records=29,
            path="/srv/data/archive/t/20261121T000000Z_z.tar",
        ),
        SimpleNamespace(  # a defective TSE's export signs no log
            id="w", created_at=300, last_counter=40, verified_ok=False, records=40,
            path="/srv/data/archive/t/w.tar",
        ),
    ]  # fmt: skip
    got = [(e.source, e.export_id, e.counter) for e in attribute(api, archived, logs)]
    assert got == [
        ("archive", "w", None),
        ("cli", "", 31),
        ("archive", "z", 30),
        ("api", "failed", None),
        ("cli", "", 20),
        ("api", "a", 10),
    ]


def test_an_export_filter_is_read_in_parts() -> None:
    assert filter_parts("") == []
    assert filter_parts("transactionNumber=5-9 clientId=KASSE-1") == [
        ("transactionNumber", "5", "9"), ("clientId", "KASSE-1", ""),
    ]  # fmt: skip
    assert filter_parts("date=1577833200-1578005999 signatureCounter=-40") == [
        ("date", "1577833200", "1578005999"), ("signatureCounter", "", "40"),
    ]  # fmt: skip
    # another vendor's or a later version's text: shown as signed
    assert filter_parts("date=2020-01-01 fancy=1 transactionNumber=x-1") == [
        ("other", "date=2020-01-01", ""), ("other", "fancy=1", ""),
        ("other", "transactionNumber=x-1", ""),
    ]  # fmt: skip
