"""Replacing a TSE served over the API, as a shop with ``opentse pos --url`` tills does
it: the registers get client entries at the new TSS, and ``tse replace`` says which
(the register's ``--client`` is that UUID from now on). It printed only the register
serials, so the till's new client UUID had to be dug out of the API by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
from http_support import login, setup_tss

from opentse.testing.serving import serve_process
from opentse.verify.receipt import verify_receipt

OPENTSE = str(Path(sys.executable).parent / "opentse")


def _opentse(*args: str, key: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if key is not None:
        env |= {"OPENTSE_API_KEY": key["api_key"], "OPENTSE_API_SECRET": key["api_secret"]}
    return subprocess.run([OPENTSE, *args], capture_output=True, text=True, env=env, timeout=120)


def test_replace_names_each_registers_client_at_the_new_tss(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = _opentse("apikey", "create", "--data", str(data), "--org", "shop", "--json")
    key = json.loads(created.stdout)
    with serve_process(data) as base, httpx.Client(base_url=base, timeout=30) as client:
        old = setup_tss(client, login(client, key["api_key"], key["api_secret"]), "KASSE-1")
    where = ("--data", str(data), "--json")
    org = json.loads(_opentse("site", "org-create", "Bäckerei Müller GmbH", *where).stdout)
    loc = json.loads(
        _opentse(
            "site", "create", org["id"], "Filiale", "--street", "Hauptstraße 5",
            "--postal-code", "10115", "--city", "Berlin", *where,
        ).stdout
    )  # fmt: skip
    assert _opentse("site", "assign-tse", old, loc["id"], "--data", str(data)).returncode == 0
    new = str(uuid.uuid4())
    done = _opentse(
        "tse", "replace", old, new, "--new-pin", "246810", "--old-pin", "123456",
        "--data", str(data), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    [(serial, client_uuid)] = json.loads(done.stdout)["api_clients"].items()
    assert serial == "KASSE-1" and str(uuid.UUID(client_uuid)) == client_uuid
    with serve_process(data) as base:
        sold = _opentse(
            "pos", "sell", "--url", base, "--tss", new, "--client", client_uuid,
            "--journal", str(tmp_path / "kasse-1.db"), "--line", "Brot:1:3.80:2",
            "--pay", "bar:5.00", "--json", key=key,
        )  # fmt: skip
    assert sold.returncode == 0, sold.stderr
    body = json.loads(sold.stdout)
    assert body["tse_failed"] is False, body["error"]
    assert "Kassen-Seriennummer: KASSE-1" in body["receipt_text"]
    assert verify_receipt(body["qr_code_data"]).ok


def test_new_id_of_a_tss_served_over_the_api_must_be_a_uuid(tmp_path: Path) -> None:
    """`tse replace OLD NEW1` of a TSS served over the API made a TSS 'NEW1', moved
    the registers to it and disabled the old one: every till then failed with
    'params/tss_id must be a UUID' (E_FAILED_SCHEMA_VALIDATION), its receipts 'TSE
    ausgefallen'. The API reads a UUID in lower case, so an upper-case one would not
    be found either. Refused before the first step now, naming a usable id."""
    data = tmp_path / "data"
    created = _opentse("apikey", "create", "--data", str(data), "--org", "shop", "--json")
    key = json.loads(created.stdout)
    with serve_process(data) as base, httpx.Client(base_url=base, timeout=30) as client:
        old = setup_tss(client, login(client, key["api_key"], key["api_secret"]), "KASSE-1")
    where = ("--data", str(data), "--json")
    org = json.loads(_opentse("site", "org-create", "Laden GmbH", *where).stdout)
    loc = json.loads(
        _opentse(
            "site", "create", org["id"], "Laden", "--street", "Weg 1",
            "--postal-code", "10115", "--city", "Berlin", *where,
        ).stdout
    )  # fmt: skip
    assert _opentse("site", "assign-tse", old, loc["id"], "--data", str(data)).returncode == 0
    upper = str(uuid.uuid4()).upper()
    for new in ("NEW1", upper):
        refused = _opentse(
            "tse", "replace", old, new, "--new-pin", "246810", "--old-pin", "123456",
            "--data", str(data),
        )  # fmt: skip
        assert refused.returncode == 1, refused.stdout + refused.stderr
        text = " ".join(refused.stderr.split())
        assert "E_TSS_ID_INVALID" in text and "served over the API" in text, text
        assert "a UUID" in text and f"{new!r} is not one" in text, text
    assert f"e.g. {upper.lower()}" in text  # the id the API would read
    # nothing was done: no new TSE, no replacement step, the old TSS still serves
    listed = json.loads(_opentse("tse", "list", *where).stdout)
    assert sorted(t["id"] for t in listed) == [old], listed
    steps = json.loads(_opentse("tse", "protocol", "--data", str(data), "--json").stdout)
    kinds = [e["kind"] for e in steps]
    assert "tse.assigned" in kinds and not [k for k in kinds if k.startswith("replace.")], kinds
    assert not (data / "PUK-NEW1.txt").exists()
