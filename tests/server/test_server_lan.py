"""LAN mode: TLS certificate made once, session file, connection test (127.0.0.1 only)."""

from __future__ import annotations

import json
import socket
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from opentse.server import lan
from opentse.testing.serving import wait_until_serving

OPENTSE = str(Path(sys.executable).parent / "opentse")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_certificate_is_made_once_and_fingerprint_matches(tmp_path: Path) -> None:
    first = lan.ensure_certificate(tmp_path, ["127.0.0.1"])
    second = lan.ensure_certificate(tmp_path, ["127.0.0.1"])
    assert first == second
    cert = x509.load_pem_x509_certificate(first.cert.read_bytes())
    der = cert.public_bytes(serialization.Encoding.DER)
    assert lan.fingerprint_of(der) == first.fingerprint
    assert len(first.fingerprint.split(":")) == 32
    assert stat.S_IMODE(first.key.stat().st_mode) == 0o600
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    assert (
        lan.normalize_fingerprint("sha256:" + first.fingerprint.replace(":", "").lower())
        == first.fingerprint
    )


def test_serve_lan_and_connection_test(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = _free_port()
    # --lan's behaviour (TLS, API key, session file) but bound to loopback only
    proc = subprocess.Popen(
        [
            OPENTSE,
            "serve",
            "--lan",
            "--data",
            str(data),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        origin = f"https://127.0.0.1:{port}"
        assert wait_until_serving(origin, proc, verify=False), "server did not start"
        session = (data / lan.SESSION_FILE).read_text()
        assert stat.S_IMODE((data / lan.SESSION_FILE).stat().st_mode) == 0o600
        fields = {
            k.strip(): v.strip()
            for k, _, v in (line.partition(":") for line in session.splitlines())
            if v
        }
        assert fields["Port"] == str(port) and fields["IP address"] == "127.0.0.1"
        key, secret, fingerprint = fields["API key"], fields["API secret"], fields["TLS SHA-256"]
        pem = ssl.get_server_certificate(("127.0.0.1", port))
        assert lan.fingerprint_of(ssl.PEM_cert_to_DER_cert(pem)) == fingerprint

        result = lan.connection_test(
            f"https://127.0.0.1:{port}", key, secret, fingerprint=fingerprint
        )
        assert result["ok"] is True and result["tss_count"] == 0 and result["round_trip_ms"] > 0

        cli = subprocess.run(
            [
                OPENTSE,
                "lan",
                "test",
                "--url",
                f"https://127.0.0.1:{port}",
                "--api-key",
                key,
                "--api-secret",
                secret,
                "--fingerprint",
                fingerprint,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert json.loads(cli.stdout)["ok"] is True

        wrong = subprocess.run(
            [
                OPENTSE,
                "lan",
                "test",
                "--url",
                f"https://127.0.0.1:{port}",
                "--api-key",
                key,
                "--api-secret",
                secret,
                "--fingerprint",
                "AA" * 32,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert wrong.returncode == 1 and json.loads(wrong.stdout)["ok"] is False
        with pytest.raises(
            httpx.ConnectError
        ):  # the self-signed certificate is not trusted blindly
            lan.connection_test(f"https://127.0.0.1:{port}", key, secret)
        insecure = lan.connection_test(
            f"https://127.0.0.1:{port}", key, "wrong-secret", insecure=True
        )
        assert insecure["ok"] is False and insecure["status"] == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            out = proc.stdout.read().decode()
            proc.stdout.close()
            assert "fingerprint" in out.lower()
