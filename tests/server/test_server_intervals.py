"""The server's intervals from the environment (server/intervals.py): defaults as
before, a bad value refused with the variable named, ``opentse serve`` stopping at
start-up with one line for it, and a node that honours a short key recheck."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from server_support import login, new_key, serve_app

from opentse.errors import ProtocolError
from opentse.server.auth import KEY_RECHECK_SECONDS
from opentse.server.context import ServerConfig
from opentse.server.intervals import Intervals, from_environment
from opentse.testing.clock import FrozenClock

OPENTSE = str(Path(sys.executable).parent / "opentse")


def test_defaults_are_the_server_config_defaults() -> None:
    config = ServerConfig(data_dir=Path("x"))
    assert from_environment({}) == Intervals()
    assert Intervals() == Intervals(
        key_recheck=config.key_recheck,
        export_renew=config.export_renew,
        export_lease=config.export_lease,
    )
    assert config.key_recheck == KEY_RECHECK_SECONDS == 5
    assert from_environment({"OPENTSE_KEY_RECHECK_SECONDS": " "}) == Intervals()


def test_values_are_read() -> None:
    got = from_environment(
        {
            "OPENTSE_KEY_RECHECK_SECONDS": "1",
            "OPENTSE_EXPORT_RENEW_SECONDS": "0.25",
            "OPENTSE_EXPORT_LEASE_SECONDS": "2",
        }
    )
    assert got == Intervals(key_recheck=1, export_renew=0.25, export_lease=2.0)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("OPENTSE_KEY_RECHECK_SECONDS", "0.5", "whole number"),
        ("OPENTSE_KEY_RECHECK_SECONDS", "0", "more than 0"),
        ("OPENTSE_KEY_RECHECK_SECONDS", "5s", "whole number"),
        ("OPENTSE_EXPORT_RENEW_SECONDS", "-1", "more than 0"),
        ("OPENTSE_EXPORT_RENEW_SECONDS", "nan", "more than 0"),
        ("OPENTSE_EXPORT_RENEW_SECONDS", "5000", "at most 3600"),
        ("OPENTSE_EXPORT_LEASE_SECONDS", "inf", "more than 0"),
        ("OPENTSE_EXPORT_LEASE_SECONDS", "8", "twice OPENTSE_EXPORT_RENEW_SECONDS"),
    ],
)
def test_a_bad_value_is_refused_with_its_name(name: str, value: str, words: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        from_environment({name: value})
    assert caught.value.code == "E_SERVE_SETTING"
    assert name in caught.value.message and words in caught.value.message


def test_serve_with_a_bad_interval_stops_with_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [OPENTSE, "serve", "--data", str(tmp_path / "data"), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "OPENTSE_EXPORT_RENEW_SECONDS": "5m"},
    )
    assert done.returncode == 1, done
    line = " ".join(done.stderr.split())
    assert line.startswith("error E_SERVE_SETTING: OPENTSE_EXPORT_RENEW_SECONDS='5m'"), line
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_a_disabled_key_s_token_stops_within_the_set_recheck(tmp_path: Path) -> None:
    clock = FrozenClock(1_700_000_000)
    with serve_app(tmp_path / "data", clock, key_recheck=1) as c:
        key = new_key(c)
        h = login(c, key)
        assert c.get("/api/v2/tss", headers=h).status_code == 200
        assert c.ctx.svc.disable_api_key(key["api_key"])
        clock.advance(1)  # 5 s at the default
        r = c.get("/api/v2/tss", headers=h)
        assert r.status_code == 401, r.text
