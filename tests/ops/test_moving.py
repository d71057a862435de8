"""Moving a TSE to a new host, as Loco-Soft's steps describe it, against real
``opentse serve`` processes on 127.0.0.1: the data folder moves, the API secret is
rotated (the old one is refused afterwards, the new one works), the registers get
the new connection data and ``opentse lan test`` passes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from http_support import login, setup_tss

from opentse.ops import protocol
from opentse.ops.store import OpsContext
from opentse.testing.serving import wait_until_serving

OPENTSE = str(Path(sys.executable).parent / "opentse")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPENTSE, *args], capture_output=True, text=True, check=check, env=ENV, timeout=120
    )


@contextmanager
def serve(data: Path, port: int | None = None) -> Iterator[str]:
    port = port or _free_port()
    proc = subprocess.Popen(
        [OPENTSE, "serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_serving(base, proc):
            proc.kill()
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError("server did not start: " + out)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()


def test_move_tse_to_new_host(tmp_path: Path) -> None:
    old_data, new_data = tmp_path / "old-host", tmp_path / "new-host"
    key = json.loads(_run("apikey", "create", "--data", str(old_data), "--json").stdout)
    with serve(old_data) as base, httpx.Client(base_url=base, timeout=30) as client:
        tss = setup_tss(client, login(client, key["api_key"], key["api_secret"]))
    shutil.copytree(old_data, new_data)  # the data folder goes to the new machine

    with serve(new_data) as base, httpx.Client(base_url=base, timeout=30) as client:
        port = int(base.rsplit(":", 1)[1])
        before = client.post(
            "/api/v2/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]}
        )
        assert before.status_code == 200  # the old key works at the new place until the move
        old_refresh = before.json()["refresh_token"]
        moved = _run(
            "tse", "move", tss, "--data", str(new_data), "--host", "127.0.0.1",
            "--port", str(port), "--no-tls", "--json",
        )  # fmt: skip
        conn = json.loads(moved.stdout)
        assert conn["connection_test"]["ok"] is True, conn
        assert conn["url"] == f"http://127.0.0.1:{port}/api/v2"
        assert conn["registers"] == ["KASSE-1"]
        assert conn["api_key"] != key["api_key"] and conn["api_secret"] != key["api_secret"]

        # the old secret stops working, the new one works
        old_auth = client.post(
            "/api/v2/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]}
        )
        assert old_auth.status_code == 401 and old_auth.json()["code"] == "E_UNAUTHORIZED"
        refreshed = client.post("/api/v2/auth", json={"refresh_token": old_refresh})
        assert refreshed.status_code == 401  # nor can a session of the old key be renewed
        h = login(client, conn["api_key"], conn["api_secret"])
        r = client.get(f"/api/v2/tss/{tss}", headers=h)
        assert r.status_code == 200 and r.json()["state"] == "INITIALIZED"

        # the register's connection test, as an operator runs it
        ok = _run(
            "lan", "test", "--url", f"http://127.0.0.1:{port}", "--api-key", conn["api_key"],
            "--api-secret", conn["api_secret"],
        )  # fmt: skip
        result = json.loads(ok.stdout)
        assert result["ok"] is True and result["tss_count"] == 1
        assert result["tss"][0]["id"] == tss

    # the registers' connection data file (0600, has the secret) and the protocol
    file = Path(conn["file"])
    assert file.parent == new_data and stat.S_IMODE(file.stat().st_mode) == 0o600
    text = file.read_text(encoding="utf-8")
    assert conn["api_secret"] in text and f"Port:                {port}" in text
    with OpsContext.open(new_data) as ops:
        entries = protocol.entries(ops.db, tse_id=tss)
        assert [e.kind for e in entries] == [
            protocol.MOVE_STARTED,
            protocol.API_KEY_ROTATED,
            protocol.CONNECTION_DATA,
            protocol.CONNECTION_TEST,
            protocol.MOVE_DONE,
        ]
        rotated = entries[1].details
        assert rotated["api_key_old"] == [key["api_key"]]
        assert rotated["api_key_new"] == conn["api_key"]
        assert all(conn["api_secret"] not in json.dumps(e.details) for e in entries)
        assert entries[3].details["ok"] is True


def test_move_run_again_after_a_failed_test_keeps_the_secret_it_made(tmp_path: Path) -> None:
    """`tse move` run before `opentse serve` was started at the new place: the test
    fails (connection refused). Run again once it serves, it rotated the key a second
    time, so the secret printed the first time (and maybe typed into the registers)
    stopped working and a third one was printed. Now the rerun tests with the key and
    secret the first run made (read from its 0600 connection file) and finishes."""
    data = tmp_path / "new-host"
    key = json.loads(_run("apikey", "create", "--data", str(data), "--json").stdout)
    with serve(data) as base, httpx.Client(base_url=base, timeout=30) as client:
        tss = setup_tss(client, login(client, key["api_key"], key["api_secret"]))
    port = _free_port()  # nothing listens there yet
    move = ("tse", "move", tss, "--data", str(data), "--host", "127.0.0.1",
            "--port", str(port), "--no-tls", "--json")  # fmt: skip
    first = _run(*move, check=False)
    assert first.returncode == 1, first.stdout + first.stderr
    made = json.loads(first.stdout)
    assert made["connection_test"]["ok"] is False and made["resumed"] is False
    told = " ".join(first.stderr.split())
    assert "not finished" in told and "`opentse tse move` again" in told, told
    assert "same key and secret" in told and made["api_secret"] not in told

    with serve(data, port) as base, httpx.Client(base_url=base, timeout=30) as client:
        again = _run(*move, check=False)
        assert again.returncode == 0, again.stdout + again.stderr
        conn = json.loads(again.stdout)
        assert conn["connection_test"]["ok"] is True and conn["resumed"] is True
        assert (conn["api_key"], conn["api_secret"]) == (made["api_key"], made["api_secret"])
        h = login(client, made["api_key"], made["api_secret"])  # the first secret works
        assert client.get(f"/api/v2/tss/{tss}", headers=h).status_code == 200
        old = client.post(
            "/api/v2/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]}
        )
        assert old.status_code == 401  # the key before the move stays disabled
    with OpsContext.open(data) as ops:
        kinds = [e.kind for e in protocol.entries(ops.db, tse_id=tss)]
    assert kinds == [
        protocol.MOVE_STARTED,
        protocol.API_KEY_ROTATED,
        protocol.CONNECTION_DATA,
        protocol.CONNECTION_TEST,
        protocol.MOVE_RESUMED,
        protocol.CONNECTION_DATA,
        protocol.CONNECTION_TEST,
        protocol.MOVE_DONE,
    ], kinds
    # a move once done is a new move: run again, it rotates (a new secret)
    with serve(data, port):
        later = json.loads(_run(*move).stdout)
    assert later["resumed"] is False and later["api_key"] != made["api_key"]


def test_lan_move_with_tls_pins_the_folders_own_certificate(tmp_path: Path) -> None:
    """`tse move --tls` without --fingerprint, the data folder served with `serve
    --lan`: the test refused the self-signed certificate (CERTIFICATE_VERIFY_FAILED),
    the move stayed unfinished and the connection file told the tills no fingerprint.
    The folder holds the certificate the new host serves: its fingerprint is the one
    to pin, as `serve --lan` prints it."""
    from opentse.testing.serving import serve_process, session_fields

    data = tmp_path / "new-host"
    _run("tse", "create", "T", "--data", str(data))
    key = json.loads(_run("apikey", "create", "--data", str(data), "--org", "shop",
                          "--json").stdout)  # fmt: skip
    with serve_process(data, lan=True) as base:
        session = (data / "LAN-TSE-Session.txt").read_text(encoding="utf-8")
        printed = session_fields(session)["TLS SHA-256"]  # what serve --lan wrote
        port = base.rsplit(":", 1)[1]
        moved = _run(
            "tse", "move", "T", "--data", str(data), "--host", "127.0.0.1", "--port", port,
            "--tls", "--org", key["organization_id"], "--json", check=False,
        )  # fmt: skip
    assert moved.returncode == 0, moved.stdout + moved.stderr
    conn = json.loads(moved.stdout)
    assert conn["connection_test"]["ok"] is True, conn
    assert conn["tls_fingerprint"] == printed
    text = Path(conn["file"]).read_text(encoding="utf-8")
    assert f"--fingerprint {printed}" in text and f"TLS SHA-256:         {printed}" in text
