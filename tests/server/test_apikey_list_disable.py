"""``opentse apikey list`` and ``apikey disable KEY``: one key off, the others on.

There was no way to see an installation's keys or to take one leaked key out of
service (``tse move`` rotates all of an organization's keys). ``list`` shows key,
organization, env, creation and state, never a secret or its hash. ``disable``
refuses the key's logins at once (401 with fiskaly's body) and the tokens it issued
within the key recheck interval on every node: real ``opentse serve`` processes, one
on SQLite, two on one PostgreSQL database, which re-read a key's state every second
(OPENTSE_KEY_RECHECK_SECONDS; the default 5 made each run wait seconds longer).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from opentse.testing.serving import serve_process

OPENTSE = str(Path(sys.executable).parent / "opentse")
KEY_RECHECK_SECONDS = 1  # the nodes' OPENTSE_KEY_RECHECK_SECONDS


def _cli(data: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [OPENTSE, "apikey", *args, "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done
    return done


def _login(base: str, body: dict[str, str]) -> httpx.Response:
    return httpx.post(base + "/api/v2/auth", json=body, timeout=30)


def _node_now(base: str, refresh_token: str) -> int:
    """The node's clock as its API reads it (whole seconds): a login by refresh
    token answers its expiry as that clock plus the token's lifetime."""
    r = _login(base, {"refresh_token": refresh_token})
    assert r.status_code == 200, r.text
    body = r.json()
    return int(body["access_token_expires_at"]) - int(body["access_token_expires_in"])


@pytest.fixture(params=["sqlite", "postgresql"])
def nodes(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, list[str]]]:
    """The data folder and the origins of its serving nodes (PostgreSQL: two)."""
    data = tmp_path / "data"
    monkeypatch.setenv("OPENTSE_KEY_RECHECK_SECONDS", str(KEY_RECHECK_SECONDS))
    count = 1
    if request.param == "postgresql":
        monkeypatch.setenv("OPENTSE_DATABASE", request.getfixturevalue("pg_url"))
        count = 2
    _cli(data, "list", "--json")  # the installation exists before the nodes start
    with ExitStack() as stack:
        yield data, [stack.enter_context(serve_process(data)) for _ in range(count)]


def test_list_and_disable_one_key(nodes: tuple[Path, list[str]]) -> None:
    data, origins = nodes
    keys = [
        json.loads(_cli(data, "create", "--org", org, "--json").stdout)
        for org in ("shop", "shop", "bakery")
    ]
    listed = json.loads(_cli(data, "list", "--json").stdout)
    assert [k["api_key"] for k in listed] == [keys[2]["api_key"], keys[0]["api_key"],
                                              keys[1]["api_key"]]  # fmt: skip
    assert all(k["disabled"] is False and k["env"] == "TEST" for k in listed)
    assert {k["organization"] for k in listed} == {"shop", "bakery"}
    text = json.dumps(listed) + _cli(data, "list").stdout
    assert not any(k["api_secret"] in text for k in keys)  # never a secret
    assert "secret" not in text and "hash" not in text
    shop = json.loads(_cli(data, "list", "--org", "shop", "--json").stdout)
    assert [k["api_key"] for k in shop] == [keys[0]["api_key"], keys[1]["api_key"]]

    leaked, other = keys[0], keys[1]
    login = _login(origins[0], leaked)
    assert login.status_code == 200, login.text
    token = {"Authorization": f"Bearer {login.json()['access_token']}"}
    for base in origins:  # every node has the token verified and the key seen active
        assert httpx.get(base + "/api/v2/tss", headers=token).status_code == 200

    done = json.loads(_cli(data, "disable", leaked["api_key"], "--json").stdout)
    assert done["api_key"] == leaked["api_key"] and done["disabled"] is True
    assert done["key_recheck_setting"] == "OPENTSE_KEY_RECHECK_SECONDS"  # the nodes' own
    refused = _login(origins[-1], leaked)  # at once
    assert refused.status_code == 401
    assert refused.json() == {
        "status_code": 401,
        "error": "Unauthorized",
        "code": "E_UNAUTHORIZED",
        "message": "invalid credentials",
    }
    by_refresh = _login(origins[0], {"refresh_token": login.json()["refresh_token"]})
    assert by_refresh.status_code == 401, by_refresh.text
    # Each node re-reads the key at the first request a recheck interval after it
    # last found it active, which was before the disable: so before the node's own
    # clock read just after it (`disabled_at`). A request the node takes at or after
    # disabled_at + the interval is refused; until then it may still be taken. The
    # node's clock is observed, not this process's: no wait on a deadline that a busy
    # machine overruns.
    watch = _login(origins[0], other).json()["refresh_token"]  # reads the node's clock
    for base in origins:
        disabled_at = _node_now(base, watch)
        while True:
            now = _node_now(base, watch)  # the node's clock, before the request below
            r = httpx.get(base + "/api/v2/tss", headers=token)
            if r.status_code == 401:
                break
            assert r.status_code == 200, r.text
            assert now < disabled_at + KEY_RECHECK_SECONDS, f"{base} still takes the token"
        assert r.json()["code"] == "E_UNAUTHORIZED"
    # the organization's other key works on
    assert all(_login(base, other).status_code == 200 for base in origins)
    listed = json.loads(_cli(data, "list", "--org", "shop", "--json").stdout)
    assert [k["disabled"] for k in listed] == [True, False]
    again = json.loads(_cli(data, "disable", leaked["api_key"], "--json").stdout)
    assert again["disabled"] is True  # twice: nothing changes


def test_disable_an_unknown_key(tmp_path: Path) -> None:
    done = _cli(tmp_path / "data", "disable", "key_nope", "--json", code=1)
    assert "E_API_KEY_NOT_FOUND" in done.stderr and done.stdout == ""
