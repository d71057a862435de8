"""``opentse lan test`` as a register's installer runs it, against real servers.

- the API key and secret can come from OPENTSE_API_KEY / OPENTSE_API_SECRET, as for
  ``opentse pos`` (a secret on the command line is visible in ``ps``);
- ``--fingerprint`` with an ``http://`` URL used to be ignored: the test passed over
  plain HTTP although a pinned certificate was asked for;
- a fingerprint that does not match says which one the server has and which was
  pinned (it was an SSLError's tuple repr);
- a URL that answers, but not with the API (an HTML page), was reported as a failed
  connection with a JSONDecodeError.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentse.installation import Installation
from opentse.server import lan
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig
from opentse.testing.serving import served_installation, serving_in_thread

OPENTSE = str(Path(sys.executable).parent / "opentse")


def _lan_test(*args: str, key: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENTSE_API_")}
    if key is not None:
        env |= {"OPENTSE_API_KEY": key["api_key"], "OPENTSE_API_SECRET": key["api_secret"]}
    done = subprocess.run(
        [OPENTSE, "lan", "test", *args], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout)


@contextlib.contextmanager
def _tls_server(data: Path) -> Iterator[tuple[str, str, dict[str, str]]]:
    """The app over TLS with the LAN certificate: (https origin, fingerprint, key)."""
    inst = Installation.open(data)
    try:
        app = create_app(inst, ServerConfig(data_dir=data))
        files = lan.ensure_certificate(data, ["127.0.0.1"], secret=inst.secret)
        ssl = {"ssl_certfile": str(files.cert), "ssl_keyfile": str(files.key)}
        if files.password:
            ssl["ssl_keyfile_password"] = files.password
        ctx = app.state.ctx
        key = create_api_key(ctx.svc, org_name="shop", env="TEST", now=ctx.now())
        with serving_in_thread(app, **ssl) as origin:
            yield origin.replace("http://", "https://"), files.fingerprint, key
    finally:
        inst.close()


def test_credentials_from_the_environment(tmp_path: Path) -> None:
    with served_installation(tmp_path / "data") as (_, origin, key):
        code, result = _lan_test("--url", origin, key=key)
    assert code == 0 and result["ok"] is True, result
    assert result["organization_id"] == key["organization_id"]


def test_a_pin_with_an_http_url_is_refused(tmp_path: Path) -> None:
    with served_installation(tmp_path / "data") as (_, origin, key):
        code, result = _lan_test("--url", origin, "--fingerprint", "AB" * 32, key=key)
    assert code == 1 and result["ok"] is False, result
    assert result["code"] == "E_TLS_PIN" and "https://" in result["error"]


def test_a_pin_that_does_not_match_names_both_fingerprints(tmp_path: Path) -> None:
    with _tls_server(tmp_path / "data") as (origin, fingerprint, key):
        code, good = _lan_test("--url", origin, "--fingerprint", fingerprint, key=key)
        assert code == 0 and good["ok"] is True, good
        code, bad = _lan_test("--url", origin, "--fingerprint", "ab" * 32, key=key)
    assert code == 1 and bad["ok"] is False and bad["code"] == "E_TLS_PIN", bad
    assert fingerprint in bad["error"] and ":".join(["AB"] * 32) in bad["error"]
    assert "(" not in bad["error"]  # no exception's tuple repr


class _Page(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = b"<html><body>router login</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_url_that_answers_no_json_is_named_as_such() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        origin = f"http://127.0.0.1:{server.server_address[1]}"
        code, result = _lan_test("--url", origin, "--api-key", "k", "--api-secret", "s")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert code == 1 and result["ok"] is False, result
    assert result["step"] == "auth" and result["status"] == 200
    assert "not JSON" in result["error"]
