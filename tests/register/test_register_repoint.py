"""A till set up with ``opentse pos setup --out`` on ``opentse serve`` after the shop
replaced the TSS (``opentse tse replace``): ``pos repoint`` points the till file at
the TSS and client that replace its own, and the till goes on in its register file
(receipt numbers, closings). There was no such command: the till file kept the old
TSS and client, and every sale was 'TSE ausgefallen: E_TSS_DISABLED'."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.register.till_file import parse
from opentse.testing.serving import serve_process
from opentse.verify.receipt import verify_receipt

ENV = {k: v for k, v in os.environ.items() if not k.startswith("OPENTSE_")}


def _run(home: Path, *args: str) -> tuple[int, str, str]:
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("OPENTSE_")}
    result = CliRunner().invoke(build_app(), list(args), env={**unset, "HOME": str(home)})
    return result.exit_code, result.stdout, result.stderr


def _json(home: Path, *args: str) -> dict[str, Any]:
    code, out, err = _run(home, *args, "--json")
    assert code == 0, out + err
    body: dict[str, Any] = json.loads(out)
    return body


@pytest.fixture(autouse=True)
def _in_a_folder_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # pos setup keeps a PUK file in the current folder


def test_repoint_moves_a_till_file_to_the_replacing_tss(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    key = _json(home, "apikey", "create", "--data", str(data))
    till = tmp_path / "kasse-1.txt"
    tea = ("--line", "Tee:1:1.80:1", "--pay", "bar:1.80")
    with serve_process(data, env=ENV) as base:
        made = _json(home, "pos", "setup", "--url", base, "--api-key", key["api_key"],
                     "--api-secret", key["api_secret"], "--serial", "KASSE-1",
                     "--out", str(till))  # fmt: skip
        old_tss, old_client = made["tss"], made["client"]
        assert _json(home, "pos", "sell", "--session", str(till), *tea)["tse_failed"] is False
        # in service: nothing to change
        same = _json(home, "pos", "repoint", "--session", str(till))
        assert same["status"] == "unchanged" and parse(till.read_text()).tss == old_tss
    where = ("--data", str(data), "--json")
    org = _json(home, "site", "org-create", "Laden GmbH", *where[:2])["id"]
    loc = _json(home, "site", "create", org, "Laden", "--street", "Hauptstraße 5",
                "--postal-code", "10115", "--city", "Berlin", *where[:2])["id"]  # fmt: skip
    assert _run(home, "site", "assign-tse", old_tss, loc, *where[:2])[0] == 0
    new_tss = str(uuid.uuid4())
    done = _json(home, "tse", "replace", old_tss, new_tss, "--new-pin", "24681012",
                 "--old-pin", made["admin_pin"], *where[:2])  # fmt: skip
    new_client = done["api_clients"]["KASSE-1"]
    with serve_process(data, env=ENV) as base:
        # the same service, restarted on another free port (serve_process picks one)
        text = till.read_text().replace(str(parse(till.read_text()).url), base)
        till.write_text(text)
        sold = _json(home, "pos", "sell", "--session", str(till), *tea)
        assert sold["tse_failed"] is True  # the till file still names the old TSS
        assert f"replaced by {new_tss}" in sold["error"] and "pos repoint" in sold["error"]
        status = _json(home, "pos", "status", "--session", str(till))
        assert status["status"] == "red" and f"--client {new_client}" in status["message"]
        # run by another user (sudo: another home): its register file is not found
        # there; said, not silent (it wrote a till file without it and said nothing)
        other_home, copy = tmp_path / "other-home", tmp_path / "copy.txt"
        other_home.mkdir()
        copy.write_text(till.read_text())
        copy.chmod(0o600)
        elsewhere = _json(other_home, "pos", "repoint", "--session", str(copy))
        assert elsewhere["status"] == "repointed" and elsewhere["journal"] is None
        assert f"no register file of client {old_client}" in elsewhere["warning"]
        assert "--journal" in elsewhere["warning"]
        moved = _json(home, "pos", "repoint", "--session", str(till))
        assert moved["status"] == "repointed" and moved["old_state"] == "DISABLED"
        assert moved["warning"] is None
        assert (moved["tss"], moved["client"]) == (new_tss, new_client)
        kept = parse(till.read_text())
        assert (kept.tss, kept.client, kept.serial_number) == (new_tss, new_client, "KASSE-1")
        assert kept.api_secret == key["api_secret"] and oct(till.stat().st_mode)[-3:] == "600"
        assert kept.journal == str(home / ".opentse" / "pos" / f"{old_client}.db")
        sold = _json(home, "pos", "sell", "--session", str(till), *tea)
        assert sold["tse_failed"] is False and verify_receipt(sold["qr_code_data"]).ok
        assert sold["receipt_number"] == "3"  # the same books: no second receipt 1
        again = _json(home, "pos", "repoint", "--session", str(till))
        assert again["status"] == "unchanged" and parse(till.read_text()) == kept
    assert not (home / ".opentse" / "pos" / f"{new_client}.db").exists()
