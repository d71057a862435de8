"""What the multinode tests do through the API of a running node, and the TCP relay
through which a node reaches PostgreSQL (cut to take the database away, stalled to
make it stop answering, or made to lose the answer to a signing COMMIT)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from opentse.testing.serving import wait_until_serving

CLI = "from opentse.cli.main import main; main()"


def setup_tss(client: httpx.Client, h: dict[str, str], serial: str = "KASSE-1") -> tuple[str, str]:
    """The fiskaly flow: create, UNINITIALIZED, admin PIN with PUK, login, INITIALIZED,
    then one client with ``serial``; returns (tss id, client id)."""
    tss = str(uuid.uuid4())
    r = client.put(f"/api/v2/tss/{tss}", json={}, headers=h)
    assert r.status_code == 200, r.text
    puk = r.json()["admin_puk"]
    for method, path, body in (
        ("PATCH", "", {"state": "UNINITIALIZED"}),
        ("PATCH", "/admin", {"admin_puk": puk, "new_admin_pin": "123456"}),
        ("POST", "/admin/auth", {"admin_pin": "123456"}),
        ("PATCH", "", {"state": "INITIALIZED"}),
    ):
        r = client.request(method, f"/api/v2/tss/{tss}{path}", json=body, headers=h)
        assert r.status_code == 200, r.text
    client_id = str(uuid.uuid4())
    r = client.put(
        f"/api/v2/tss/{tss}/client/{client_id}", json={"serial_number": serial}, headers=h
    )
    assert r.status_code == 200, r.text
    return tss, client_id


class Relay:
    """127.0.0.1:<port> -> the PostgreSQL server; ``cut()`` closes the listener and
    every relayed connection (the database is gone), ``start()`` listens again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()  # cleared by stall(): nothing is forwarded
        self._flowing.set()
        self._cuts = 0  # cut() calls so far
        self._lose_commit = threading.Event()  # lose_commit_answer() armed
        self.commit_lost = threading.Event()  # ... and it happened

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(32)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._open.append(client)
                cuts = self._cuts
            threading.Thread(target=self._connect, args=(client, cuts), daemon=True).start()

    def _connect(self, client: socket.socket, cuts: int) -> None:
        self._flowing.wait()  # stalled: accepted, but nothing answers
        upstream = socket.create_connection(self.target)
        with self._lock:
            if cuts != self._cuts:  # cut while it waited: its sockets are not listed
                upstream.close()
                client.close()
                return
            self._open.append(upstream)
        held = threading.Event()  # this connection's answers are no longer forwarded
        for a, b, asks in ((client, upstream, True), (upstream, client, False)):
            threading.Thread(target=self._pipe, args=(a, b, held, asks), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket, held: threading.Event, asks: bool) -> None:
        """``asks``: the node's direction, where a signing COMMIT is looked for."""
        try:
            while data := a.recv(65536):
                self._flowing.wait()
                if not asks and held.is_set():
                    continue  # the answer is lost; the server did the work
                if asks and self._lose_commit.is_set() and _signing_commit(data):
                    self._lose_commit.clear()
                    held.set()
                    self.commit_lost.set()
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def lose_commit_answer(self) -> None:
        """The next signing COMMIT (a TSE's state UPDATE with it) reaches PostgreSQL
        and is applied, but its answer and all later ones on that connection are
        dropped: the node cannot know whether the signature was stored."""
        self.commit_lost.clear()
        self._lose_commit.set()

    def stall(self) -> None:
        """The database stops answering without closing anything (a frozen server, a
        network path that still acknowledges): connections are accepted, no byte is
        forwarded either way until ``resume()``."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def cut(self) -> None:
        assert self._listener is not None
        with contextlib.suppress(OSError):  # wakes accept(): close() alone keeps listening
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            sockets, self._open = self._open, []
            self._cuts += 1
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def _signing_commit(data: bytes) -> bool:
    return b"UPDATE tses SET state" in data and b"COMMIT" in data


@dataclass
class RelayedNode:
    """A real ``opentse serve`` process whose PostgreSQL is reached through ``relay``."""

    relay: Relay
    node: subprocess.Popen[bytes]
    base: str  # http://127.0.0.1:<port>
    url: str  # the database URL through the relay
    data: Path
    log_path: Path

    def create_key(self) -> dict[str, Any]:
        """``opentse apikey create`` for organization ``o``: its JSON (key and secret)."""
        done = subprocess.run(
            [sys.executable, "-c", CLI, "apikey", "create", "--org", "o", "--json",
             "--data", str(self.data), "--database", self.url],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        key: dict[str, Any] = json.loads(done.stdout)
        return key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def relayed_node(
    pg_url: str, tmp_path: Path, env: dict[str, str] | None = None
) -> Iterator[RelayedNode]:
    """Start a relay to ``pg_url`` and a node on it (pool of 3, log in
    ``tmp_path/node.log``, ``env``: more environment, e.g. the server's intervals),
    serving; afterwards the node is stopped (terminate, then kill) unless the test
    stopped it, and the relay resumed and cut."""
    parts = urlsplit(pg_url)
    relay = Relay((parts.hostname or "127.0.0.1", parts.port or 5432))
    relay.start()
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    url = urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{relay.port}"))
    port = _free_port()
    node_env = {**os.environ, "OPENTSE_DATABASE": url, "OPENTSE_PG_POOL_MAX": "3", **(env or {})}
    node_env.pop("OPENTSE_SECRET_FILE", None)
    data, log_path = tmp_path / "data", tmp_path / "node.log"
    with open(log_path, "wb") as log:
        node = subprocess.Popen(
            [sys.executable, "-c", CLI, "serve", "--data", str(data), "--port", str(port)],
            env=node_env, stdout=log, stderr=log,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_serving(base, node, seconds=60), log_path.read_text()
        yield RelayedNode(relay, node, base, url, data, log_path)
    finally:
        if node.poll() is None:
            node.terminate()
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()
        relay.resume()
        relay.cut()
