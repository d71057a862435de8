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
