"""`opentse pos setup` stopped after the TSS was deployed and before its admin PIN was
set: the service forgets the PUK at deployment, so the TSS could only be saved by a
manual PATCH with a PUK that was printed once (or never, when the till's process was
killed). Now the PUK and PIN are kept in a 0600 file from the moment the PUK is known,
and running the same command again finishes the set-up.

The failure is real: a relay between the till and a real `opentse serve` forwards the
deployment's answer and then stops the server (or kills the till's own process)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from opentse.cli.main import build_app
from opentse.register import setup_file
from opentse.testing.serving import wait_until_serving

OPENTSE = str(Path(sys.executable).parent / "opentse")
ENV = {k: v for k, v in os.environ.items() if not k.startswith("OPENTSE_")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Relay:
    """TCP relay to the server; once armed, after the answer to the request that
    deploys the TSS has passed, ``after_deploy`` runs (stops the server or kills the
    till) before anything else is forwarded."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.after_deploy: Callable[[], None] | None = None
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(conn,), daemon=True).start()

    def _connect(self, conn: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=30)
        except OSError:
            conn.close()
            return
        deploying = threading.Event()
        ask = threading.Thread(target=self._asks, args=(conn, upstream, deploying), daemon=True)
        ask.start()
        self._answers(upstream, conn, deploying)
        ask.join(timeout=5)

    def _asks(
        self, conn: socket.socket, upstream: socket.socket, deploying: threading.Event
    ) -> None:
        with contextlib.suppress(OSError):
            patch = False  # headers and body may come in separate packets
            while data := conn.recv(65536):
                if data[:8].split(b" ")[0].isalpha() and data[:1].isupper():
                    patch = data.startswith(b"PATCH ")
                if patch and b"UNINITIALIZED" in data:
                    deploying.set()
                upstream.sendall(data)
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)

    def _answers(
        self, upstream: socket.socket, conn: socket.socket, deploying: threading.Event
    ) -> None:
        with contextlib.suppress(OSError), conn, upstream:
            tail = b""
            while data := upstream.recv(65536):
                conn.sendall(data)
                window, tail = tail + data, data[-32:]
                if deploying.is_set() and b"UNINITIALIZED" in window:
                    deploying.clear()
                    with self.lock:
                        action, self.after_deploy = self.after_deploy, None
                    if action is not None:
                        action()

    def close(self) -> None:
        self.listener.close()


@contextmanager
def _serving(data: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [OPENTSE, "serve", "--data", str(data), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    try:
        assert wait_until_serving(f"http://127.0.0.1:{port}", proc), "no server"
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=20)


def _run(*args: str) -> tuple[int, str, str]:
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("OPENTSE_")}
    result = CliRunner().invoke(build_app(), list(args), env=unset)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def service(tmp_path: Path) -> Iterator[dict[str, Any]]:
    data = tmp_path / "srv"
    code, out, err = _run("apikey", "create", "--data", str(data), "--json")
    assert code == 0, err
    key = json.loads(out)
    port = _free_port()
    relay = Relay(port)
    try:
        yield {"data": data, "port": port, "relay": relay, **key}
    finally:
        relay.close()


def _where(service: dict[str, Any]) -> list[str]:
    url = f"http://127.0.0.1:{service['relay'].port}"
    return ["--url", url, "--api-key", service["api_key"], "--api-secret", service["api_secret"]]


def _tss_states(service: dict[str, Any]) -> dict[str, str]:
    with httpx.Client(base_url=f"http://127.0.0.1:{service['port']}/api/v2") as api:
        body = {"api_key": service["api_key"], "api_secret": service["api_secret"]}
        token = api.post("/auth", json=body).json()["access_token"]
        api.headers["Authorization"] = f"Bearer {token}"
        return {t["_id"]: t["state"] for t in api.get("/tss").json()["data"]}


def _puk_works(service: dict[str, Any], tss: str, puk: str) -> bool:
    """The PUK sets a new admin PIN: it is this TSS's real PUK."""
    with httpx.Client(base_url=f"http://127.0.0.1:{service['port']}/api/v2") as api:
        body = {"api_key": service["api_key"], "api_secret": service["api_secret"]}
        token = api.post("/auth", json=body).json()["access_token"]
        api.headers["Authorization"] = f"Bearer {token}"
        answer = api.patch(
            f"/tss/{tss}/admin", json={"admin_puk": puk, "new_admin_pin": "24681357"}
        )
        return answer.status_code == 200


def _sells(service: dict[str, Any], till: Path, journal: Path) -> None:
    code, out, err = _run("pos", "sell", "--session", str(till), "--journal", str(journal),
                          "--line", "Bier:1:4.00:1", "--pay", "bar:4.00", "--json")  # fmt: skip
    assert code == 0, err
    sold = json.loads(out)
    assert sold["tse_failed"] is False and sold["transaction_number"] >= 1


def test_the_server_stops_after_deploying_and_the_same_command_finishes(
    service: dict[str, Any], tmp_path: Path
) -> None:
    till = tmp_path / "bar" / "kasse-1.txt"
    till.parent.mkdir()
    command = ["pos", "setup", *_where(service), "--serial", "BAR-1", "--out", str(till),
               "--json", "--timeout", "5"]  # fmt: skip
    with _serving(service["data"], service["port"]) as proc:
        service["relay"].after_deploy = lambda: (proc.kill(), proc.wait(timeout=20))
        code, out, err = _run(*command)
    assert code == 1 and "error E_SETUP_UNREACHABLE" in err
    shown = json.loads(out)
    assert shown["status"] == "incomplete"
    kept = Path(shown["puk_file"])
    assert kept == (till.parent / "PUK-setup-BAR-1.txt").absolute()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert shown["admin_puk"] in kept.read_text() and shown["admin_pin"] in kept.read_text()
    assert "run the same command again to finish" in err and str(kept) in err
    assert shown["admin_puk"] not in err and shown["admin_pin"] not in err
    assert not till.exists()

    with _serving(service["data"], service["port"]):
        assert _tss_states(service) == {shown["tss"]: "UNINITIALIZED"}  # the PUK is gone
        code, out, err = _run(*command)  # the same command again
        assert code == 0, err
        done = json.loads(out)
        assert done["status"] == "resumed" and done["tss"] == shown["tss"]
        assert done["steps"] == ["admin_pin_set", "tss_initialized", "client_registered"]
        assert (done["admin_puk"], done["admin_pin"]) == (shown["admin_puk"], shown["admin_pin"])
        assert _tss_states(service) == {shown["tss"]: "INITIALIZED"}  # no second TSS
        assert not kept.exists()  # shown: the file has done its job
        _sells(service, till, tmp_path / "till.db")
        code, out, err = _run(*command)  # and once more: nothing to do
        assert code == 0 and json.loads(out)["status"] == "exists"
        assert "admin_puk" not in json.loads(out)
        # another set-up's file is neither used nor deleted by one that adds a till
        other = tmp_path / "other.txt"
        url = f"http://127.0.0.1:{service['relay'].port}/api/v2"
        pending = setup_file.PendingSetup(url, str(uuid.uuid4()), "BAR-3", "P" * 10, "13572468")
        setup_file.write(other, pending)
        code, out, err = _run("pos", "setup", *_where(service), "--serial", "BAR-3", "--tss",
                              shown["tss"], "--admin-pin", shown["admin_pin"], "--puk-file",
                              str(other), "--json")  # fmt: skip
        assert code == 0 and json.loads(out)["status"] == "created", err
        assert setup_file.read(other) == pending
        # a new TSS would need the file another service's set-up keeps: refused
        foreign = setup_file.PendingSetup("https://fiskaly.example/api/v2", str(uuid.uuid4()),
                                          "BAR-3", "Q" * 10, "97531864")  # fmt: skip
        setup_file.write(other, foreign)
        tss_before = _tss_states(service)
        code, out, err = _run("pos", "setup", *_where(service), "--serial", "BAR-4",
                              "--puk-file", str(other))  # fmt: skip
        assert code == 1 and "error E_SETUP_PENDING" in err and foreign.tss in err
        assert "Q" * 10 not in err + out and "97531864" not in err + out
        assert setup_file.read(other) == foreign and _tss_states(service) == tss_before


def test_the_till_killed_after_deploying_loses_no_puk(
    service: dict[str, Any], tmp_path: Path
) -> None:
    """Killed, the till printed nothing: the file is all that is left of the PUK."""
    folder = tmp_path / "till"
    folder.mkdir()
    command = ["pos", "setup", *_where(service), "--serial", "BAR 2", "--json"]
    with _serving(service["data"], service["port"]):
        till = subprocess.Popen(
            [OPENTSE, *command], cwd=folder, env=ENV,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        service["relay"].after_deploy = lambda: till.send_signal(signal.SIGKILL)
        out, _ = till.communicate(timeout=60)
        assert till.returncode == -signal.SIGKILL and b"admin_puk" not in out
        (tss,) = _tss_states(service)
        (kept,) = folder.glob("PUK-setup-*.txt")
        assert kept.name.startswith("PUK-setup-BAR_2-")  # no space in the file name
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and tss in kept.read_text()

        current = Path.cwd()
        os.chdir(folder)
        try:
            code, out, err = _run(*command)
        finally:
            os.chdir(current)
        assert code == 0, err
        done = json.loads(out)
        assert done["tss"] == tss and done["serial_number"] == "BAR 2"
        assert done["status"] == "resumed"
        assert done["steps"] == ["admin_pin_set", "tss_initialized", "client_registered"]
        assert _tss_states(service) == {tss: "INITIALIZED"}
        assert not kept.exists()
        assert _puk_works(service, tss, done["admin_puk"])
