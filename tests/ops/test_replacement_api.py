"""Replacing a TSE served over the API, as a shop with ``opentse pos --url`` tills does
it: the registers get client entries at the new TSS, and ``tse replace`` says which
(the register's ``--client`` is that UUID from now on). It printed only the register
serials, so the till's new client UUID had to be dug out of the API by hand."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from http_support import login, setup_tss

from opentse.testing.serving import wait_until_serving
from opentse.verify.receipt import verify_receipt

OPENTSE = str(Path(sys.executable).parent / "opentse")


def _opentse(*args: str, key: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if key is not None:
        env |= {"OPENTSE_API_KEY": key["api_key"], "OPENTSE_API_SECRET": key["api_secret"]}
    return subprocess.run([OPENTSE, *args], capture_output=True, text=True, env=env, timeout=120)


@contextmanager
def _serve(data: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [OPENTSE, "serve", "--data", str(data), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_serving(base, proc), "no server"
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_replace_names_each_registers_client_at_the_new_tss(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = _opentse("apikey", "create", "--data", str(data), "--org", "shop", "--json")
    key = json.loads(created.stdout)
    with _serve(data) as base, httpx.Client(base_url=base, timeout=30) as client:
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
    with _serve(data) as base:
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
