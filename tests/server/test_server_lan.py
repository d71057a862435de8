"""LAN mode: TLS certificate made once, session file, connection test (127.0.0.1 only)."""

from __future__ import annotations

import json
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
from opentse.testing.serving import serve_process, session_fields

OPENTSE = str(Path(sys.executable).parent / "opentse")


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
    log = tmp_path / "serve.log"
    # --lan's behaviour (TLS, API key, session file) but bound to loopback only
    with serve_process(data, lan=True, output=log) as origin:
        session = (data / lan.SESSION_FILE).read_text()
        assert stat.S_IMODE((data / lan.SESSION_FILE).stat().st_mode) == 0o600
        fields = session_fields(session)
        port = int(origin.rsplit(":", 1)[1])
        assert fields["Port"] == str(port) and fields["IP address"] == "127.0.0.1"
        key, secret, fingerprint = fields["API key"], fields["API secret"], fields["TLS SHA-256"]
        pem = ssl.get_server_certificate(("127.0.0.1", port))
        assert lan.fingerprint_of(ssl.PEM_cert_to_DER_cert(pem)) == fingerprint

        result = lan.connection_test(origin, key, secret, fingerprint=fingerprint)
        assert result["ok"] is True and result["tss_count"] == 0 and result["round_trip_ms"] > 0

        where = ["--url", origin, "--api-key", key, "--api-secret", secret]
        cli = subprocess.run(
            [OPENTSE, "lan", "test", *where, "--fingerprint", fingerprint],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert json.loads(cli.stdout)["ok"] is True

        wrong = subprocess.run(
            [OPENTSE, "lan", "test", *where, "--fingerprint", "AA" * 32],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert wrong.returncode == 1 and json.loads(wrong.stdout)["ok"] is False
        with pytest.raises(httpx.ConnectError):  # the self-signed certificate is not trusted
            lan.connection_test(origin, key, secret)
        insecure = lan.connection_test(origin, key, "wrong-secret", insecure=True)
        assert insecure["ok"] is False and insecure["status"] == 401
    assert "fingerprint" in log.read_text().lower()
