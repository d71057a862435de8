"""Serving for tests and benchmarks: a real ``opentse serve`` process (started, plain
or ``--lan``, or waited for), or an app under uvicorn in a thread of this process;
and what a test observes of it instead of sleeping (``wait_until_read``: the server
has read a request; ``session_fields``: what ``serve --lan`` wrote for the tills)."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


def wait_until_serving(
    origin: str,
    process: subprocess.Popen[Any],
    *,
    seconds: float = 60.0,
    request_timeout: float = 1.0,
    verify: bool = True,
) -> bool:
    """Poll ``GET {origin}/health`` until it answers 200 (True), or until ``process``
    has ended or ``seconds`` have passed (False: the caller reports, with the output
    it kept). ``verify=False`` for a LAN server's self-signed certificate."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            answer = httpx.get(origin + "/health", timeout=request_timeout, verify=verify)
            if answer.status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def _tcp_queues(local: tuple[str, int], remote: tuple[str, int]) -> tuple[int, int] | None:
    """(bytes sent and not yet acknowledged, bytes received and not yet read) of the
    IPv4 TCP socket ``local`` -> ``remote`` on this machine, from /proc/net/tcp; None
    when there is no such socket."""

    def hexed(address: tuple[str, int]) -> str:
        packed = bytes(int(part) for part in address[0].split("."))
        return f"{int.from_bytes(packed, 'little'):08X}:{address[1]:04X}"

    want = (hexed(local), hexed(remote))
    with open("/proc/net/tcp", encoding="ascii") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if (fields[1], fields[2]) == want:
                sent, received = fields[4].split(":")
                return int(sent, 16), int(received, 16)
    return None


def wait_until_read(sock: Any, *, seconds: float = 60.0) -> bool:
    """Wait until the process at the other end of the connected IPv4 socket ``sock``
    (on this machine) has read every byte this end sent: nothing unacknowledged on
    this side and nothing unread on the peer's (Linux: /proc/net/tcp). True then;
    False after ``seconds``. A test uses it to know that a request is in the server
    (uvicorn has parsed it and runs its handler) instead of sleeping and hoping."""
    mine = sock.getsockname()[:2]
    peer = sock.getpeername()[:2]
    deadline = time.monotonic() + seconds
    while True:
        here, there = _tcp_queues(mine, peer), _tcp_queues(peer, mine)
        if here is not None and there is not None and here[0] == 0 and there[1] == 0:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def session_fields(text: str) -> dict[str, str]:
    """The ``Name: value`` lines of a LAN-TSE-Session.txt (``serve --lan``) or a till
    file: {"URL": ..., "Port": ..., "API key": ..., "TLS SHA-256": ..., ...}."""
    fields = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if value.strip():
            fields[name.strip()] = value.strip()
    return fields


@contextmanager
def serve_process(
    data: Any,
    *,
    lan: bool = False,
    env: Mapping[str, str] | None = None,
    output: Path | None = None,
) -> Iterator[str]:
    """A real ``opentse serve --data DATA`` process (this interpreter's entry point) on
    a free 127.0.0.1 port: yields its origin ``http://127.0.0.1:PORT`` once it answers
    /health, and terminates it after.

    ``lan``: ``serve --lan`` (TLS with its self-signed certificate, an API key and
    LAN-TSE-Session.txt in DATA: :func:`session_fields`), bound to loopback only;
    the origin is ``https://...``. ``env``: the server's environment (default this
    process's); ``output``: a file for its stdout and stderr (default discarded)."""
    import os
    import socket
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    command = [str(Path(sys.executable).parent / "opentse"), "serve", "--data", str(data)]
    if lan:
        command += ["--lan", "--host", "127.0.0.1"]
    with contextlib.ExitStack() as files:
        out = subprocess.DEVNULL if output is None else files.enter_context(output.open("wb"))
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=out,
            stderr=out,
            env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
        )
    origin = f"{'https' if lan else 'http'}://127.0.0.1:{port}"
    try:
        if not wait_until_serving(origin, process, verify=not lan):
            where = "" if output is None else f" (its output: {output})"
            raise RuntimeError(f"opentse serve --data {data} did not start{where}")
        yield origin
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def serving_in_thread(app: Any, **config: Any) -> Iterator[str]:
    """``app`` under uvicorn in a daemon thread on a free 127.0.0.1 port, lifespan
    on (``config``: more ``uvicorn.Config`` settings); yields its origin
    ``http://127.0.0.1:PORT`` and stops the server after."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", **config)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@contextmanager
def served_installation(
    data: Any, clock: Any = None, *, org: str = "shop"
) -> Iterator[tuple[Any, str, dict[str, str]]]:
    """An installation in the folder ``data`` (created if new) served by the real
    app under uvicorn in a thread, with ``clock`` for the TSEs and the API, and an
    API key of organization ``org``: yields (app, origin, key with ``api_key``,
    ``api_secret``, ``organization_id``); closed after."""
    from opentse.installation import Installation
    from opentse.server.app import create_app
    from opentse.server.auth import create_api_key
    from opentse.server.context import ServerConfig

    inst = Installation.open(data, clock=clock)
    try:
        app = create_app(inst, ServerConfig(data_dir=data), clock=clock)
        with serving_in_thread(app) as origin:
            ctx = app.state.ctx
            key = create_api_key(ctx.svc, org_name=org, env="TEST", now=ctx.now())
            yield app, origin, key
    finally:
        inst.close()
