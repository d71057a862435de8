"""``OPENTSE_PG_POOL_MAX`` (docs/scaling.md, "Connections"): a value that is not a
number of connections stops a command or a node with one line, exit 1.

Before, ``ten`` ended ``opentse serve`` and every command in a ValueError traceback,
and ``0`` or ``-3`` ran silently with a pool of 2 connections instead of the one set.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from multinode_support import CLI

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


def _run(url: str, value: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENTSE_")}
    env.update(OPENTSE_DATABASE=url, OPENTSE_PG_POOL_MAX=value)
    return subprocess.run(
        [sys.executable, "-c", CLI, *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("value", ["ten", "0", "-3", "1", "2.5", "5000"])
def test_a_bad_pool_size_is_one_line(pg_url: str, tmp_path: Path, value: str) -> None:
    data = str(tmp_path / "data")
    done = _run(pg_url, value, "tse", "list", "--data", data)
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith(
        f"error E_DATABASE_SETTING: OPENTSE_PG_POOL_MAX={value!r} is not a number"
    ), done.stderr
    assert "Traceback" not in done.stderr


def test_a_node_with_a_bad_pool_size_does_not_start(pg_url: str, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    done = _run(pg_url, "ten", "serve", "--data", str(tmp_path / "data"), "--port", port)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error E_DATABASE_SETTING: OPENTSE_PG_POOL_MAX='ten' is not a number of connections "
        "from 2 to 1000 (default 10, see docs/scaling.md)"
    ]


def test_a_good_pool_size_and_none_work(pg_url: str, tmp_path: Path) -> None:
    for value in ("4", " 12 ", ""):
        done = _run(pg_url, value, "tse", "list", "--data", str(tmp_path / "data"), "--json")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]"
