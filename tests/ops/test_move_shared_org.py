"""Moving one TSE of an organization that serves several: the rotation disables the
organization's old keys, so the registers of its other TSEs need the new key too.

Before: ``tse move`` listed only the moved TSE's registers, so an operator updated
those and the other sites' registers were locked out without a word.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from http_support import login, setup_tss

from opentse.testing.serving import serve_process

OPENTSE = str(Path(sys.executable).parent / "opentse")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([OPENTSE, *args], capture_output=True, text=True, env=env, timeout=120)


def test_move_names_the_registers_of_the_organizations_other_tses(tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = json.loads(
        _run("apikey", "create", "--data", str(data), "--org", "chain", "--json").stdout
    )
    with serve_process(data) as base, httpx.Client(base_url=base, timeout=30) as client:
        h = login(client, key["api_key"], key["api_secret"])
        berlin = setup_tss(client, h, "KASSE-B1")
        leipzig = setup_tss(client, h, "KASSE-L1")
    moved = _run(
        "tse", "move", leipzig, "--host", "10.0.0.7", "--port", "4433", "--no-test",
        "--data", str(data), "--json",
    )  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    conn = json.loads(moved.stdout)
    assert conn["registers"] == ["KASSE-L1"]
    assert conn["also_affected"] == {berlin: ["KASSE-B1"]}
    text = Path(conn["file"]).read_text(encoding="utf-8")
    assert f"TSE {berlin}: KASSE-B1" in text
    plain = _run(
        "tse", "move", leipzig, "--host", "10.0.0.8", "--port", "4433", "--no-test",
        "--data", str(data),
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert f"registers of TSE {berlin} (KASSE-B1) need the new key" in plain.stdout
