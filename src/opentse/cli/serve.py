"""``opentse serve``: the fiskaly-compatible TSE service over HTTP(S).

``--lan`` is the back-office set-up POS vendors describe (Loco-Soft's LAN-TSE
connector): all interfaces, port 4433, TLS with a self-signed certificate made once,
an API key created if none exists, and ``LAN-TSE-Session.txt`` in the data folder.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from opentse.cli.common import cli_errors

if TYPE_CHECKING:
    from opentse.server.lan import TlsFiles

DEFAULT_DATA = Path(os.environ.get("OPENTSE_DATA", "opentse-data"))
GC_YOUNG_THRESHOLD = 10_000  # gc.set_threshold's first value while serving (see serve)
STOP_GRACE = 3  # seconds SIGTERM waits for requests in flight
# An idle keep-alive connection is closed after this many seconds. uvicorn's default
# of 5 is shorter than client pools keep theirs (.NET ~60-90 s, browsers and Node
# agents tens of seconds): a till reusing a connection the server closes at that
# moment sees a reset instead of its answer. Longer than the usual 60 s of load
# balancers, so the side in front closes first.
KEEP_ALIVE_SECONDS = 75


@contextlib.contextmanager
def data_folder_errors(data: Path) -> Iterator[None]:
    """``cli_errors``, and a data folder this process may not write (its owner or
    mode, a read-only mount) as one line ``error E_STORAGE_READONLY ...`` and exit 1:
    the installation key or database it could not create was a traceback."""
    from opentse.errors import StorageError
    from opentse.storage.sqlite_requests import is_read_only

    with cli_errors():
        try:
            yield
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            raise StorageError(
                f"cannot write in the data folder {data}: {exc.strerror}: {exc.filename}; "
                "opentse writes its installation key, CA and database there (check the "
                "folder's owner and mode, or a read-only mount)",
                code="E_STORAGE_READONLY",
            ) from None
        except sqlite3.Error as exc:
            if not is_read_only(exc):
                raise
            raise StorageError(
                f"cannot write the database in the data folder {data}: {exc} (check the "
                "folder's owner and mode, or a read-only mount)",
                code="E_STORAGE_READONLY",
            ) from None


def _speed_options(read_timeout: float) -> dict[str, Any]:
    """httptools (with each response sent in one write and ``read_timeout`` seconds
    for a request head, server/protocol.py) and uvloop when installed; uvicorn's
    "auto" picks the same two, named here so a missing one is visible in the code,
    not only in the numbers."""
    import importlib.util

    options: dict[str, Any] = {}
    if importlib.util.find_spec("httptools") is not None:
        from opentse.server.protocol import with_read_timeout

        options["http"] = with_read_timeout(read_timeout)
    if importlib.util.find_spec("uvloop") is not None:
        options["loop"] = "uvloop"
    return options


def _tls_port(http: Any, files: TlsFiles, read_timeout: float) -> type:
    """The ``http=`` protocol class serving TLS with the LAN certificate ``files``
    over ``http`` (a class; None: uvicorn's own choice), the
    context made as uvicorn makes it from ``ssl_certfile``/``ssl_keyfile``; a
    connection's first byte and its handshake each get ``read_timeout`` seconds."""
    import ssl

    from uvicorn.config import SSL_PROTOCOL_VERSION, create_ssl_context
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    from opentse.server.tls_port import tls_port_protocol

    context = create_ssl_context(
        certfile=files.cert,
        keyfile=files.key,
        password=files.password,
        ssl_version=SSL_PROTOCOL_VERSION,
        cert_reqs=ssl.CERT_NONE,
        ca_certs=None,
        ciphers=None,
    )
    return tls_port_protocol(http or AutoHTTPProtocol, context, read_timeout)


def serve_command(
    data: Path = typer.Option(DEFAULT_DATA, "--data", help="Data folder of the installation."),
    host: str | None = typer.Option(
        None, "--host", help="Address to listen on (default 127.0.0.1; --lan: 0.0.0.0)."
    ),
    # uvloop binds a port beyond 65535 modulo 65536 (99999 listened on 34463) and 0
    # picks a random one: either would serve elsewhere than the start line says
    port: int | None = typer.Option(
        None, "--port", min=1, max=65535, help="Port (default 8000; --lan: 4433)."
    ),
    tls: bool | None = typer.Option(
        None, "--tls/--no-tls", help="HTTPS with the LAN certificate (default: on with --lan)."
    ),
    lan: bool = typer.Option(
        False, "--lan", help="LAN TSE mode: 0.0.0.0:4433, TLS, API key, session file."
    ),
    env: str = typer.Option(
        "TEST", "--env", help="Environment name of keys created here (TEST or LIVE)."
    ),
    database: str | None = typer.Option(
        None,
        "--database",
        envvar="OPENTSE_DATABASE",
        help="postgresql://... or sqlite:///file (default: SQLite in the data folder).",
    ),
    auth_failures: int = typer.Option(
        10,
        "--auth-failures-per-address",
        envvar="OPENTSE_AUTH_FAILURES_PER_ADDRESS",
        min=0,
        help="Failed /auth logins per minute per client address before 429 (0: no "
        "address limit, e.g. behind a proxy that limits them; see keys-and-secrets.md).",
    ),
) -> None:
    """Run the /api/v2 service (fiskaly SIGN DE v2 compatible). Not BSI-certified."""
    import uvicorn

    from opentse.installation import Installation, refuse_option_like
    from opentse.server import lan as lanmod
    from opentse.server.app import create_app
    from opentse.server.context import ServerConfig

    if env not in ("TEST", "LIVE"):  # fiskaly's Environment enum: every answer's _env
        raise typer.BadParameter("env must be TEST or LIVE", param_hint="'--env'")
    with cli_errors():
        refuse_option_like(data.expanduser())
    data = data.expanduser().absolute()  # what the server records does not hang on the cwd
    host = host or ("0.0.0.0" if lan else "127.0.0.1")
    port = port if port is not None else (lanmod.LAN_PORT if lan else 8000)
    use_tls = lan if tls is None else tls
    # a missing secret, a database of another installation, a folder it may not write:
    # one line
    from opentse.server.intervals import from_environment
    from opentse.server.protocol import read_timeout

    with data_folder_errors(data):
        intervals = from_environment()  # before anything is opened: a bad one is a line
        reading = read_timeout()
        inst = Installation.open(data, database_url=database)
    config = ServerConfig(
        data_dir=data,
        env=env,
        auth_failures_per_address=auth_failures,
        key_recheck=intervals.key_recheck,
        export_renew=intervals.export_renew,
        export_lease=intervals.export_lease,
    )
    app = create_app(inst, config)
    options: dict[str, Any] = _speed_options(reading)
    scheme = "http"
    fingerprint = ""
    if use_tls:
        addresses = lanmod.machine_addresses()
        files = lanmod.ensure_certificate(data, addresses, secret=inst.secret)
        # TLS below uvicorn (server/tls_port.py): plain http:// sent to this port is
        # answered 400 E_TLS_REQUIRED instead of an empty reply
        options["http"] = _tls_port(options.get("http"), files, reading)
        scheme = "https"
        fingerprint = files.fingerprint
        typer.echo(f"TLS certificate SHA-256 fingerprint: {fingerprint}")
    if lan:  # the API key and session file also without TLS (--lan --no-tls)
        if not use_tls:
            typer.echo(
                "warning: --no-tls: API secrets and tokens cross the LAN unencrypted", err=True
            )
        address = lanmod.machine_addresses()[0] if host == "0.0.0.0" else host
        session = lanmod.prepare_session(app.state.ctx, data, address, port, fingerprint, env)
        typer.echo(f"LAN session written to {session}")
    # the ~60,000 objects of start-up (modules, app, engine) are long-lived: moved out
    # of the collector's reach, a full collection no longer walks them (it held the
    # GIL for 20-40 ms, every request in flight waiting)
    gc.collect()
    gc.freeze()
    # A request's transient objects (parsed JSON, validation, the engine step, the
    # batch in flight) pass 700 live containers often enough for ~200 young-generation
    # collections a second, each walking what is in flight: ~5 % of the CPU of the
    # engine benchmark. At 10,000 they are freed by reference counting before that
    # (cycles still get collected; the store leaves none, tests/storage).
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
    # psycopg's pool warns at every reconnection attempt while PostgreSQL is away; the
    # export heartbeat says once when an outage begins and once when it is over
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    uv_config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,  # warning level shows none; skip building them per request
        # the /auth failure limit counts per peer address: a forged X-Forwarded-For
        # must not pick the address it is counted under
        proxy_headers=False,
        # SIGTERM: requests still waiting (for a database that is away) after this
        # many seconds are dropped; their clients retry (fiskaly: replays are safe)
        timeout_graceful_shutdown=STOP_GRACE,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        **options,
    )
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address in a URL (RFC 3986)
    line = f"opentse serving {scheme}://{shown}:{port}/api/v2 (data: {data})"

    class AnnouncingServer(uvicorn.Server):
        """Says "opentse serving ..." once it listens: printed before the bind, the
        line stood above "address already in use" for a server that never served."""

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                typer.echo(line)

    server = AnnouncingServer(uv_config)
    try:
        server.run()
    except KeyboardInterrupt:  # Ctrl-C, raised again once the server has stopped
        pass
    finally:
        inst.close()
    if not server.started:  # the port taken, the address not ours: as uvicorn.run exits
        raise typer.Exit(STARTUP_FAILURE)


STARTUP_FAILURE = 3  # uvicorn's exit status for a server that never started


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
