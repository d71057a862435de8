"""PINs and PUKs asked for (not given as options) with ``--json``: the questions go
to stderr, stdout holds the JSON only. The options' own prompts wrote 'Pin:' (and
'New PIN:Repeat for confirmation:') to stdout before the JSON, so a script piping
the PIN in could not parse the answer. Run as the installed console script with the
secrets piped to stdin, as such a script does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXE = Path(sys.executable).parent / "opentse"


def opentse(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENTSE_")}
    return subprocess.run(
        [str(EXE), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_prompted_secrets_leave_stdout_to_the_json(tmp_path: Path) -> None:
    if not EXE.exists():
        pytest.skip("console script not installed in this environment")
    data = str(tmp_path / "d")
    created = opentse("tse", "create", "t1", "--data", data, "--json")
    puk = json.loads(created.stdout)["admin_puk"]
    steps = [
        (("tse", "set-pin", "t1", "--data", data), f"{puk}\n12345678\n12345678\n", "ok"),
        (("tse", "initialize", "t1", "--data", data), "12345678\n", "state"),
        (("client", "register", "K1", "--tss", "t1", "--data", data), "12345678\n", "state"),
        (("client", "deregister", "K1", "--tss", "t1", "--data", data), "12345678\n", "state"),
        (("tse", "update-time", "t1", "--user", "admin", "--data", data), "12345678\n", "user"),
        (("tse", "disable", "t1", "--data", data), "12345678\n", "state"),
    ]
    for args, secrets, key in steps:
        proc = opentse(*args, "--json", stdin=secrets)
        assert proc.returncode == 0, proc.stderr
        assert key in json.loads(proc.stdout), proc.stdout
        assert "PIN" in proc.stderr or "PUK" in proc.stderr
        for secret in (puk, "12345678"):
            assert secret not in proc.stdout and secret not in proc.stderr
    shown = json.loads(opentse("tse", "show", "t1", "--data", data, "--json").stdout)
    assert shown["state"] == "DISABLED"


def test_two_different_new_pins_are_asked_again(tmp_path: Path) -> None:
    if not EXE.exists():
        pytest.skip("console script not installed in this environment")
    data = str(tmp_path / "d")
    puk = json.loads(opentse("tse", "create", "t1", "--data", data, "--json").stdout)["admin_puk"]
    proc = opentse(
        "tse", "set-pin", "t1", "--data", data, "--json",
        stdin=f"{puk}\n12345678\n87654321\n11112222\n11112222\n",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True and "do not match" in proc.stderr
    init = opentse("tse", "initialize", "t1", "--data", data, "--pin", "11112222", "--json")
    assert init.returncode == 0, init.stderr
