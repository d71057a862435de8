"""``opentse apikey disable`` said the disabled key's tokens stop "within N s on
every server node", N being OPENTSE_KEY_RECHECK_SECONDS of the shell it ran in: the
nodes read their own environment (another machine, a service unit), which the
command cannot see. It names the setting and its default now, and in JSON the bound
every node is held to (3600 s), not a number it does not know; and a value in its
own environment that a node would refuse no longer stops the command
(E_SERVE_SETTING, the key left enabled)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from server_support import new_key_in

OPENTSE = str(Path(sys.executable).parent / "opentse")


def _disable(data: Path, key: str, recheck: str, *more: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENTSE_DATABASE")}
    env["OPENTSE_KEY_RECHECK_SECONDS"] = recheck  # this shell's, not the nodes'
    return subprocess.run(
        [OPENTSE, "apikey", "disable", key, "--data", str(data), *more],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip


def test_disable_names_the_nodes_setting_not_its_own(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first, second = new_key_in(data)["api_key"], new_key_in(data)["api_key"]
    text = _disable(data, first, "2749")
    assert text.returncode == 0, text.stderr
    out = " ".join(text.stdout.split())
    assert "2749 s" not in out and "within 2749" not in out, out
    assert "within that node's OPENTSE_KEY_RECHECK_SECONDS (default 5 s)" in out, out
    as_json = _disable(data, second, "not-a-number", "--json")
    assert as_json.returncode == 0, as_json.stderr
    done = json.loads(as_json.stdout)
    assert done["disabled"] is True
    # the key scripts read is there again, with a number true for every node: the
    # most `opentse serve` takes, not this shell's setting nor the default
    assert done["tokens_stop_within_seconds"] == 3600
    assert done["key_recheck_setting"] == "OPENTSE_KEY_RECHECK_SECONDS"
    assert done["key_recheck_default_seconds"] == 5
    listed = subprocess.run(
        [OPENTSE, "apikey", "list", "--data", str(data), "--json"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert all(k["disabled"] for k in json.loads(listed.stdout))
