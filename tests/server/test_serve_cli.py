"""``opentse serve`` refuses options it cannot honour before it touches anything.

A port outside 1..65535 used to start a server anyway: uvloop binds the port modulo
65536 (``--port 99999`` listened on 34463) while the start line said 99999. An
``--env`` other than TEST or LIVE became the environment of the key ``--lan``
creates, so every answer carried an ``_env`` fiskaly's enum does not have.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

OPENTSE = str(Path(sys.executable).parent / "opentse")


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``opentse serve``; one that starts serving instead of refusing is killed."""
    proc = subprocess.Popen(
        [OPENTSE, "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"opentse serve {' '.join(args)} started instead of refusing:\n{out}{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1"])
def test_a_port_outside_1_to_65535_is_refused(tmp_path: Path, port: str) -> None:
    data = tmp_path / "data"
    done = _serve("--data", str(data), "--host", "127.0.0.1", "--port", port)
    assert done.returncode == 2, done
    assert "--port" in done.stderr and "serving" not in done.stdout
    assert not data.exists()  # refused before the installation was opened


@pytest.mark.parametrize("env", ["PROD", "live", ""])
def test_an_environment_other_than_test_or_live_is_refused(tmp_path: Path, env: str) -> None:
    data = tmp_path / "data"
    done = _serve("--lan", "--env", env, "--data", str(data), "--host", "127.0.0.1")
    assert done.returncode == 2, done
    assert "TEST or LIVE" in done.stderr and "serving" not in done.stdout
    assert not data.exists()  # no key, no session file, no certificate made


def test_lan_without_tls_still_makes_the_key_and_session_file(tmp_path: Path) -> None:
    """``--lan --no-tls`` served on the LAN but made neither the API key nor
    LAN-TSE-Session.txt that ``--lan`` promises (both were made only with TLS): the
    operator had nothing to type into the register."""
    import httpx

    from opentse.server import lan
    from opentse.testing.serving import session_fields, wait_until_serving

    data = tmp_path / "data"
    port = _free_port()
    args = ["serve", "--lan", "--no-tls", "--data", str(data), "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [OPENTSE, *args, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        origin = f"http://127.0.0.1:{port}"
        assert wait_until_serving(origin, proc), "server did not start"
        fields = session_fields((data / lan.SESSION_FILE).read_text())
        assert fields["URL"] == f"http://127.0.0.1:{port}/api/v2"
        assert fields["TLS SHA-256"] == "(no TLS)"
        assert "--fingerprint" not in fields["Test"]
        assert fields["Test"].startswith(f"opentse lan test --url http://127.0.0.1:{port} ")
        key, secret = fields["API key"], fields["API secret"]
        result = lan.connection_test(origin, key, secret)
        assert result["ok"] is True, result
        assert (
            httpx.post(f"{origin}/api/v2/auth", json={"api_key": key, "api_secret": secret}).json()[
                "access_token_claims"
            ]["env"]
            == "TEST"
        )
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert "unencrypted" in err, err
    assert "LAN session written" in out, out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_port_in_use_is_reported_without_a_serving_line(tmp_path: Path) -> None:
    """The start line was printed before the bind: "opentse serving http://...:P"
    stood above uvicorn's "address already in use" for a server that never served."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = _serve("--data", str(tmp_path / "data"), "--host", "127.0.0.1", "--port", port)
    assert done.returncode == 3, done
    assert "address already in use" in done.stderr
    assert "serving" not in done.stdout, done.stdout


def _ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_an_ipv6_host_is_written_in_brackets(tmp_path: Path) -> None:
    """``--host ::1`` printed "http://::1:PORT/api/v2" and wrote it into the LAN
    session file: no URL (RFC 3986 puts an IPv6 address in brackets)."""
    import socket

    from opentse.server import lan
    from opentse.testing.serving import session_fields, wait_until_serving

    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    data = tmp_path / "data"
    args = ["serve", "--lan", "--no-tls", "--data", str(data), "--host", "::1"]
    proc = subprocess.Popen(
        [OPENTSE, *args, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    origin = f"http://[::1]:{port}"
    try:
        assert wait_until_serving(origin, proc), "server did not start"
        session = (data / lan.SESSION_FILE).read_text()
        assert f"URL:                 {origin}/api/v2\n" in session
        assert f"--url {origin} " in session
        fields = session_fields(session)
        result = lan.connection_test(origin, fields["API key"], fields["API secret"])
        assert result["ok"] is True, result
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"opentse serving {origin}/api/v2 " in out, out
