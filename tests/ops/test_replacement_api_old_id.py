"""A replacement of a TSS served over the API that began before ec2ccaf with a new id
that is no UUID ('tse replace OLD NEW1', stopped half-way) could not be finished any
more: the rerun `tse replace OLD NEW1` was refused (E_TSS_ID_INVALID: name the new TSE
with a UUID) and `tse replace OLD <uuid>` too (E_REPLACE_IN_PROGRESS: run `tse replace
OLD NEW1` again). Now the rerun finishes it and says what is left to do (replace NEW1
by a TSS with a UUID, the command named), and doing that gives the tills a TSS they
reach. The stopped run is a real process SIGKILLed after the old TSE was disabled,
running the replacement as it was before ec2ccaf (without the id check)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from http_support import login, setup_tss

from opentse.engine.service import TSEService
from opentse.ops import replacement
from opentse.ops.store import OpsContext
from opentse.testing.serving import serve_process
from opentse.verify.receipt import verify_receipt

OPENTSE = str(Path(sys.executable).parent / "opentse")
NEW_PIN = "246810"


def _opentse(*args: str, key: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if key is not None:
        env |= {"OPENTSE_API_KEY": key["api_key"], "OPENTSE_API_SECRET": key["api_secret"]}
    return subprocess.run([OPENTSE, *args], capture_output=True, text=True, env=env, timeout=120)


def _stopped_before_ec2ccaf(data: Path, old: str, new: str) -> None:
    """Run `tse replace old new` as before ec2ccaf (no check of the new id) in a forked
    process, SIGKILLed when the old TSE's disable has returned."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            ctx = OpsContext.open(data)
            # before ec2ccaf no id was checked: every id read as one the API takes
            replacement._api_tss_id = lambda tse_id: tse_id  # type: ignore[assignment]

            def hook(frame: FrameType, event: str, arg: Any) -> None:
                if event == "return" and frame.f_code is TSEService.disable.__code__:
                    os.kill(os.getpid(), signal.SIGKILL)

            sys.setprofile(hook)
            replacement.replace_tse(ctx, old, new, new_admin_pin=NEW_PIN, old_admin_pin="123456")
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


def test_a_replacement_begun_with_a_non_uuid_id_can_be_finished_and_undone(
    tmp_path: Path,
) -> None:
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
    _stopped_before_ec2ccaf(data, old, "NEW1")
    pins = ("--new-pin", NEW_PIN, "--old-pin", "123456", "--data", str(data))

    final = str(uuid.uuid4())
    other = _opentse("tse", "replace", old, final, *pins)
    assert other.returncode == 1
    text = " ".join(other.stderr.split())
    assert "E_REPLACE_IN_PROGRESS" in text, text
    assert f"`opentse tse replace {old} NEW1`" in text, text
    assert f"`opentse tse replace NEW1 {final} --old-pin" in text, text

    finished = _opentse("tse", "replace", old, "NEW1", *pins, "--json")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    body = json.loads(finished.stdout)
    assert body["resumed"] is True and body["old_state"] == "DISABLED"
    assert "opentse tse replace NEW1 " in body["next_step"], body
    assert "no UUID" in body["next_step"]

    undone = _opentse(
        "tse", "replace", "NEW1", final, "--new-pin", "135790", "--old-pin", NEW_PIN,
        "--data", str(data), "--json",
    )  # fmt: skip
    assert undone.returncode == 0, undone.stdout + undone.stderr
    after = json.loads(undone.stdout)
    assert after["next_step"] is None
    [(serial, client_uuid)] = after["api_clients"].items()
    assert serial == "KASSE-1"
    with serve_process(data) as base:
        sold = _opentse(
            "pos", "sell", "--url", base, "--tss", final, "--client", client_uuid,
            "--journal", str(tmp_path / "kasse-1.db"), "--line", "Brot:1:3.80:2",
            "--pay", "bar:5.00", "--json", key=key,
        )  # fmt: skip
    assert sold.returncode == 0, sold.stderr
    receipt = json.loads(sold.stdout)
    assert receipt["tse_failed"] is False, receipt["error"]
    assert verify_receipt(receipt["qr_code_data"]).ok
