"""Two clients that both claim, in their metadata ``replaces_client``, to replace the
till's client: the till follows neither. ``opentse tse replace`` refuses a second
replacement, but an API user can still set the key on any client; the lookup took
the last of the two claims without a word, and a till that followed the wrong one
signed at the wrong TSE. Now ``pos repoint`` and the remote backend's automatic
follow (``pos sell``, ``pos status``) refuse with E_TSE_SUCCESSOR_AMBIGUOUS naming
both claims and how to remove one; once one is removed the other is followed."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.register.till_file import TillConnection, parse, render

CODE = "E_TSE_SUCCESSOR_AMBIGUOUS"


def _run(home: Path, *args: str) -> tuple[int, str, str]:
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("OPENTSE_")}
    result = CliRunner().invoke(build_app(), list(args), env={**unset, "HOME": str(home)})
    return result.exit_code, result.stdout, result.stderr


@contextmanager
def _api(origin: str, key: str, secret: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=origin + "/api/v2", timeout=30) as api:
        r = api.post("/auth", json={"api_key": key, "api_secret": secret})
        assert r.status_code == 200, r.text
        api.headers["Authorization"] = "Bearer " + r.json()["access_token"]
        yield api


def _claim(api: httpx.Client, by: dict[str, str], replaced: str | None) -> None:
    path = f"/tss/{by['tss']}/client/{by['client']}/metadata"
    r = api.patch(path, json={"replaces_client": replaced})
    assert r.status_code == 200, r.text


def test_two_claims_on_one_client_are_refused_until_one_is_removed(
    tmp_path: Path, fiskaly_tss: Callable[[str], dict[str, str]]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    old, right, wrong = (fiskaly_tss("KASSE-1") for _ in range(3))
    till = tmp_path / "kasse-1.txt"
    connection = TillConnection(
        old["origin"], old["api_key"], old["api_secret"], None, old["tss"], old["client"],
        "KASSE-1", str(tmp_path / "kasse-1.db"),
    )  # fmt: skip
    till.write_text(render(connection))
    till.chmod(0o600)
    tea = ("--line", "Tee:1:1.80:1", "--pay", "bar:1.80", "--json")
    with _api(old["origin"], old["api_key"], old["api_secret"]) as api:
        _claim(api, right, old["client"])
        _claim(api, wrong, old["client"])  # an API user set the key on another client
        r = api.patch(f"/tss/{old['tss']}", json={"state": "DISABLED"})
        assert r.status_code == 200, r.text

        code, out, err = _run(home, "pos", "repoint", "--session", str(till), "--json")
        assert code == 1 and CODE in out + err
        said = " ".join((out + err).split())
        for claim in (right, wrong):  # both claims named, and how to remove one
            assert f"client {claim['client']} at TSS {claim['tss']}" in said
        assert '{"replaces_client": null}' in said and "metadata" in said
        assert parse(till.read_text()) == connection  # the till file is left as it was

        # the remote backend's own follow: the sale is printed 'TSE ausgefallen', the
        # till is red and says why, and nothing is signed at either claimant
        code, out, err = _run(home, "pos", "sell", "--session", str(till), *tea)
        sold: dict[str, Any] = json.loads(out)
        assert sold["tse_failed"] is True and CODE in sold["error"], out + err
        assert right["client"] in sold["error"] and wrong["client"] in sold["error"]
        code, out, err = _run(home, "pos", "status", "--session", str(till), "--json")
        status = json.loads(out)
        assert status["status"] == "red" and CODE in status["message"], out
        for claim in (right, wrong):
            listed = api.get(f"/tss/{claim['tss']}/tx").json()
            assert listed["data"] == [], listed

        _claim(api, wrong, None)  # as the message says: the key removed from the wrong one
        code, out, err = _run(home, "pos", "repoint", "--session", str(till), "--json")
        assert code == 0, out + err
        moved = json.loads(out)
        assert moved["status"] == "repointed"
        assert (moved["tss"], moved["client"]) == (right["tss"], right["client"])
        code, out, err = _run(home, "pos", "sell", "--session", str(till), *tea)
        assert json.loads(out)["tse_failed"] is False, out + err
