"""A real ``opentse serve`` subprocess with its stdout/stderr captured to a file.

The security tests drive it with plain httpx like an attacker or a POS would, and
remember every secret they handled (API secrets, PINs, PUKs, wrong guesses) and every
error body they received, so a test can grep all of it for leaked secrets.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from opentse.testing.serving import wait_until_serving

OPENTSE = str(Path(sys.executable).parent / "opentse")
PIN = "Pin-7hQ2xZ"  # distinctive, so a grep cannot hit it by accident


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [OPENTSE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env or dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class LiveServer:
    data: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    secrets: set[str] = field(default_factory=set)
    error_bodies: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return self.origin + "/api/v2"

    def start(self) -> None:
        self.port = free_port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed when the process ends
        self.process = subprocess.Popen(
            [OPENTSE, "serve", "--data", str(self.data), "--host", "127.0.0.1",
             "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        log.close()
        if not wait_until_serving(self.origin, self.process):
            raise RuntimeError("server did not start: " + self.log_path.read_text()[-2000:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def new_key(self, org: str) -> dict[str, str]:
        """What ``opentse apikey create --org ORG --json`` does, in this process (the
        CLI costs seconds of start-up on a loaded machine; one test does use it)."""
        from opentse.installation import Installation
        from opentse.server.auth import create_api_key
        from opentse.storage.pg_service import open_service_store

        with Installation.open(self.data) as inst:
            svc = open_service_store(inst, self.data)
            try:
                key = create_api_key(svc, org_name=org, env="TEST", now=int(time.time()))
            finally:
                svc.close()
        self.secrets.add(key["api_secret"])
        return key

    def new_key_cli(self, org: str) -> dict[str, str]:
        key: dict[str, str] = json.loads(
            cli("apikey", "create", "--data", str(self.data), "--org", org, "--json")
        )
        self.secrets.add(key["api_secret"])
        return key

    def remember(self, response: httpx.Response) -> None:
        if response.status_code >= 400:
            response.read()
            with self.lock:
                self.error_bodies.append(response.text)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(
            base_url=self.base,
            headers=headers,
            timeout=60,
            event_hooks={"response": [self.remember]},
        )

    def login(self, key: dict[str, str]) -> dict[str, Any]:
        with self.client() as c:
            r = c.post("/auth", json={"api_key": key["api_key"], "api_secret": key["api_secret"]})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def token(self, key: dict[str, str]) -> str:
        return str(self.login(key)["access_token"])


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


def new_tss(c: httpx.Client, live: LiveServer, *, pin: str = PIN) -> tuple[str, str]:
    """A TSS in state INITIALIZED with the admin logged in; returns (tss_id, puk)."""
    tss = str(uuid.uuid4())
    puk = ok(c.put(f"/tss/{tss}", json={}))["admin_puk"]
    live.secrets.update((puk, pin))
    ok(c.patch(f"/tss/{tss}", json={"state": "UNINITIALIZED"}))
    ok(c.patch(f"/tss/{tss}/admin", json={"admin_puk": puk, "new_admin_pin": pin}))
    ok(c.post(f"/tss/{tss}/admin/auth", json={"admin_pin": pin}))
    ok(c.patch(f"/tss/{tss}", json={"state": "INITIALIZED"}))
    return tss, puk


def finished_tx(c: httpx.Client, tss: str, client_id: str) -> str:
    tx = str(uuid.uuid4())
    ok(c.put(f"/tss/{tss}/tx/{tx}", params={"tx_revision": 1},
             json={"state": "ACTIVE", "client_id": client_id}))  # fmt: skip
    receipt = {
        "receipt_type": "RECEIPT",
        "amounts_per_vat_rate": [{"vat_rate": "NORMAL", "amount": "9.99"}],
        "amounts_per_payment_type": [{"payment_type": "CASH", "amount": "9.99"}],
    }
    body = {
        "state": "FINISHED",
        "client_id": client_id,
        "schema": {"standard_v1": {"receipt": receipt}},
    }
    ok(c.put(f"/tss/{tss}/tx/{tx}", params={"tx_revision": 2}, json=body))
    return tx


def download_export(c: httpx.Client, tss: str, path: Path) -> Path:
    """Trigger an export of the whole TSS, wait for it, write the TAR to ``path``."""
    exp = str(uuid.uuid4())
    ok(c.put(f"/tss/{tss}/export/{exp}"))
    deadline = time.monotonic() + 60
    while ok(c.get(f"/tss/{tss}/export/{exp}"))["state"] != "COMPLETED":
        assert time.monotonic() < deadline, "export did not complete"
        time.sleep(0.1)
    r = c.get(f"/tss/{tss}/export/{exp}/file")
    assert r.status_code == 200, r.text
    path.write_bytes(r.content)
    return path
