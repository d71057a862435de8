"""``opentse pos setup``: a till's TSS and client on a service, made as a POS makes them.

A shop owner whose till signs on ``opentse serve`` (LAN mode) or fiskaly had to send
seven raw HTTP requests (docs/register.md) before the first ``pos sell``. This command
runs them (:mod:`opentse.register.till_setup`), prints the admin PUK and PIN of a new
TSS once, and writes or prints what the till needs; ``pos ... --session FILE`` reads
that file (or the LAN-TSE-Session.txt of ``serve --lan``), so no secret is typed on
the command line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from opentse.cli.common import cli_errors, echo_json, err_console
from opentse.cli.pos import FINGERPRINT_OPTION, KEY_OPTION, SECRET_OPTION, URL_OPTION, pos_app
from opentse.crypto.private_file import write_private_file
from opentse.errors import OpenTSEError, ProtocolError
from opentse.register.till_file import TillConnection, parse, render

SESSION_HELP = (
    "A LAN-TSE-Session.txt (written by 'opentse serve --lan') or a till file (written by "
    "'opentse pos setup --out'): URL, API key and secret, TLS fingerprint, TSS and client; "
    "options given win."
)


#: SetupResult.steps as the text output says them
STEP_TEXT = {
    "tss_created": "created the TSS",
    "tss_deployed": "deployed the TSS",
    "admin_pin_set": "set the admin PIN with the kept PUK",
    "tss_initialized": "initialized the TSS",
    "client_registered": "registered the client",
}


def load_session(path: Path) -> TillConnection:
    """The connection a session or till file names (E_SESSION_FILE when unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolError(
            f"--session {path}: cannot be read ({type(exc).__name__})", code="E_SESSION_FILE"
        ) from None
    return parse(text, f"--session {path}")


def write_till_file(path: Path, connection: TillConnection) -> None:
    """The till file, 0600 (it holds the API secret), also over an existing file."""
    write_private_file(path, render(connection))


def _existing_till(out: Path, serial: str, force: bool) -> TillConnection | None:
    """Before anything is set up: an existing ``--out`` is written over only when it is
    this till's own file (a run again: returned, its ``Journal:`` line is kept) or with
    ``--force``; another till's file (its TSS, client and the register file pos repoint
    named) or any other file is refused (E_POS_OUTPUT_EXISTS)."""
    if out.is_dir():
        raise ProtocolError(
            f"--out {out} is a folder: give a file name. Nothing was set up",
            code="E_POS_OUTPUT",
        )
    if not out.exists():
        return None
    try:
        old: TillConnection | None = parse(out.read_text(encoding="utf-8"), f"--out {out}")
    except (OSError, UnicodeDecodeError, OpenTSEError):
        old = None
    if old is not None and old.serial_number == serial:
        return old
    if force:
        return None
    what = (
        f"the till file of {old.serial_number}"
        if old is not None and old.serial_number
        else "not a till file of pos setup"
    )
    raise ProtocolError(
        f"--out {out} exists ({what}): choose another name, or --force to replace it. "
        "Nothing was set up",
        code="E_POS_OUTPUT_EXISTS",
    )


@pos_app.command("setup")
def setup_command(
    serial: str = typer.Option(
        ...,
        "--serial",
        help="The register's serial number (the TSE's client id, printed on every receipt "
        "as Kassen-Seriennummer), e.g. KASSE-1.",
    ),
    session: Path | None = typer.Option(None, "--session", help=SESSION_HELP),
    url: str | None = URL_OPTION,
    api_key: str | None = KEY_OPTION,
    api_secret: str | None = SECRET_OPTION,
    fingerprint: str | None = FINGERPRINT_OPTION,
    tss: str | None = typer.Option(
        None,
        "--tss",
        help="Add the till to this existing TSS (needs its --admin-pin); default: a new "
        "TSS is created and initialized.",
    ),
    client: str | None = typer.Option(
        None, "--client", help="The client UUID to register (default: derived from TSS and serial)."
    ),
    admin_pin: str | None = typer.Option(
        None,
        "--admin-pin",
        envvar="OPENTSE_ADMIN_PIN",
        help="Admin PIN: of the existing --tss (asked for when not given and stdin is a "
        "terminal), or the one to set on a new TSS (default: 8 random digits).",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Write the till file (with the API secret, mode 0600) for 'pos ... --session'.",
    ),
    puk_file: Path | None = typer.Option(
        None,
        "--puk-file",
        help="Where the new TSS's admin PUK and PIN are kept (mode 0600) until the set-up "
        "has finished and printed them, so that running the same command again finishes "
        "a set-up that stopped; default: PUK-setup-<serial>.txt beside --out, else in the "
        "current folder.",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace an existing --out file that is not this till's (--serial) own; "
        "without it such a file is refused before anything is set up.",
    ),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds to wait for the service."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create and initialize a TSS and register the till's client on a fiskaly SIGN DE
    v2 service (opentse serve, fiskaly), or add the client to an existing --tss. A till
    set up already is reported and nothing is changed."""
    from opentse.register import setup_file
    from opentse.register.till_setup import SetupIncomplete, setup_till

    with cli_errors():
        given = load_session(session) if session is not None else TillConnection()
        url = url or given.url
        api_key = api_key or given.api_key
        api_secret = api_secret or given.api_secret
        fingerprint = fingerprint or given.fingerprint
        if not url:
            raise ProtocolError("give --session FILE or --url URL", code="E_POS_BACKEND")
        if not api_key or not api_secret:
            raise ProtocolError(
                "the service needs an API key and secret: --api-key and --api-secret (or a "
                "--session file that has them)",
                code="E_POS_AUTH",
            )
        if out is not None and session is not None and out.resolve() == session.resolve():
            raise ProtocolError(
                "--out must not be the --session file ('serve --lan' rewrites it)",
                code="E_POS_OUTPUT",
            )
        if not (0 < timeout < 86400):
            raise ProtocolError("--timeout must be above 0 seconds", code="E_REGISTER_CONFIG")
        earlier = None if out is None else _existing_till(out, serial, force)

        pending = puk_file or setup_file.default_path(
            serial, Path.cwd() if out is None else out.absolute().parent
        )

        def ask_pin() -> str:
            answer: str = typer.prompt("Admin PIN of the TSS", hide_input=True, err=True)
            return answer

        try:
            result = setup_till(
                url,
                api_key,
                api_secret,
                serial,
                fingerprint=fingerprint,
                tss=tss,
                client=client,
                admin_pin=admin_pin,
                ask_pin=ask_pin if sys.stdin.isatty() else None,
                timeout=timeout,
                pending_file=pending,
            )
        except SetupIncomplete as exc:  # the TSS exists: its PUK must not be lost
            _print_incomplete(exc, as_json)
            raise
        till = TillConnection(
            result.url,
            api_key,
            api_secret,
            fingerprint,
            result.tss,
            result.client,
            result.serial_number,
            # the register file pos repoint named, while the file names the same client
            earlier.journal
            if earlier is not None and (earlier.tss, earlier.client) == (result.tss, result.client)
            else None,
        )
        if out is not None:
            write_till_file(out, till)
    _print(result, till, out, as_json, pending)
    if result.admin_puk is not None:  # shown: the file has done its job
        setup_file.forget(pending, result.tss)


def _print_incomplete(exc: Any, as_json: bool) -> None:
    """What a set-up that stopped after making a TSS must still show (stdout)."""
    if as_json:
        body = {"status": "incomplete", "tss": exc.tss, "error": exc.code}
        kept = None if exc.pending_file is None else str(exc.pending_file)
        echo_json(
            {**body, "admin_puk": exc.admin_puk, "admin_pin": exc.admin_pin, "puk_file": kept}
        )
        return
    typer.echo(f"TSS {exc.tss}: created, the set-up did not finish.")
    typer.echo(f"Admin PUK: {exc.admin_puk}")
    if exc.admin_pin:
        typer.echo(f"Admin PIN: {exc.admin_pin}")
    if exc.pending_file is not None:
        typer.echo(f"Both are kept in {exc.pending_file} (mode 0600) until the set-up finishes.")


def _print(
    result: Any, till: TillConnection, out: Path | None, as_json: bool, pending: Path
) -> None:
    """The outcome; the PUK and PIN only for a TSS made now, or by an earlier run of
    this set-up that stopped before it showed them (read back from ``pending``)."""
    if as_json:
        status = "created" if result.created_client else "exists"
        body: dict[str, Any] = {
            # resumed: an earlier run's set-up (its PUK file) was finished; "steps"
            # says what this run did, [] when that run had done it all
            "status": "resumed" if result.resumed else status,
            "steps": list(result.steps),
            "url": result.url,
            "tss": result.tss,
            "client": result.client,
            "serial_number": result.serial_number,
            "fingerprint": till.fingerprint,
            "created_tss": result.created_tss,
            "created_client": result.created_client,
            "till_file": None if out is None else str(out),
        }
        if result.admin_puk is not None:
            body["admin_puk"], body["admin_pin"] = result.admin_puk, result.admin_pin
        echo_json(body)
        return
    if not result.created_client and result.admin_puk is not None:
        # the earlier run did it all and was stopped (killed) before it printed
        typer.echo(
            f"TSS {result.tss}: created and initialized by an earlier run of this set-up, "
            "which stopped before it showed the admin PUK and PIN."
        )
        typer.echo(
            f"Client {result.client} (serial number {result.serial_number}) registered by "
            "that run; this run changed nothing on the service. The PUK and PIN below "
            f"were kept in {pending}, which is deleted now."
        )
    elif not result.created_client:
        typer.echo(
            f"Client {result.client} (serial number {result.serial_number}) is registered "
            f"at TSS {result.tss} already: nothing changed."
        )
    else:
        made = "created and initialized" if result.created_tss else "in use"
        if result.resumed:
            done = ", ".join(STEP_TEXT[step] for step in result.steps)
            made = f"created by an earlier run of this set-up, which stopped; this run {done}"
        typer.echo(f"TSS {result.tss}: {made}.")
        typer.echo(f"Client {result.client} registered (serial number {result.serial_number}).")
    if result.admin_puk is not None:
        typer.echo(f"Admin PUK: {result.admin_puk}")
        typer.echo(f"Admin PIN: {result.admin_pin}")
        typer.echo(
            "Keep both safe (not on the till): they are shown only now; the PIN adds "
            "tills, the PUK sets a new PIN."
        )
    pin = f" --fingerprint {till.fingerprint}" if till.fingerprint else ""
    if out is not None:
        typer.echo(f"Till file (with the API secret, mode 0600): {out}")
        typer.echo(f"The till: opentse pos sell --session {out} --line ... --pay ...")
    else:
        typer.echo(
            f"The till: opentse pos sell --url {result.url} --tss {result.tss} "
            f"--client {result.client}{pin} --api-key {till.api_key} (API secret: "
            "OPENTSE_API_SECRET, or --out FILE for a till file)"
        )


@pos_app.command("repoint")
def repoint_command(
    session: Path = typer.Option(
        ..., "--session", help="The till file of 'opentse pos setup --out': rewritten in place."
    ),
    journal: Path | None = typer.Option(
        None,
        "--journal",
        help="The till's register file (journal and books) to go on with; default: the "
        "till file's, else the default file of its old client, when there is one.",
    ),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds to wait for the service."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """After 'opentse tse replace' of a TSS served over the API: point the till file at
    the TSS and client that replace its own (the service records which client replaces
    which), keeping the till's journal and books. Nothing changes while the till's TSS
    is in service."""
    from opentse.cli.pos import journal_path
    from opentse.register.till_repoint import find_successor

    with cli_errors():
        given = load_session(session)
        if not given.tss or not given.client:
            raise ProtocolError(
                f"--session {session} names no TSS and client: give the till file of "
                "'opentse pos setup --out'",
                code="E_POS_TILL",
            )
        if not given.api_key or not given.api_secret:
            raise ProtocolError(
                f"--session {session} holds no API key and secret", code="E_POS_AUTH"
            )
        if not (0 < timeout < 86400):
            raise ProtocolError("--timeout must be above 0 seconds", code="E_REGISTER_CONFIG")
        found = find_successor(
            str(given.url),
            given.api_key,
            given.api_secret,
            given.tss,
            given.client,
            fingerprint=given.fingerprint,
            timeout=timeout,
        )
        kept = journal or (Path(given.journal) if given.journal else None)
        warning = None
        if kept is None and found.changed:
            # the default register file is named after the client UUID: the till goes
            # on in its old client's file (receipt numbers, closings), not a new one
            old_file = journal_path(None, given.client)
            kept = old_file if old_file.exists() else None
            if kept is None:  # a till that never sold, or another user's home (sudo)
                warning = (
                    f"no register file of client {given.client} at {old_file}: if this till"
                    " sold before, run pos repoint as the till's user (whose home holds it)"
                    " or give --journal FILE, else the till starts new books"
                )
        if kept is not None:
            kept = kept.absolute()
        till = TillConnection(
            given.url, given.api_key, given.api_secret, given.fingerprint, found.tss,
            found.client, found.serial_number or given.serial_number,
            None if kept is None else str(kept),
        )  # fmt: skip
        if found.changed or till.journal != given.journal:
            write_till_file(session, till)
    body = {
        "status": "repointed" if found.changed else "unchanged",
        "old_tss": given.tss,
        "old_client": given.client,
        "old_state": found.old_state,
        "tss": found.tss,
        "client": found.client,
        "serial_number": till.serial_number,
        "journal": till.journal,
        "till_file": str(session),
        "warning": warning,
    }
    if as_json:
        echo_json(body)
        return
    if not found.changed:
        typer.echo(f"TSS {found.tss} is {found.old_state}: the till file stays as it is.")
        return
    typer.echo(
        f"TSS {given.tss} is {found.old_state}; it was replaced by TSS {found.tss}, where "
        f"client {found.client} replaces {given.client} (serial number {till.serial_number})."
    )
    typer.echo(f"Till file rewritten: {session}")
    if warning:
        err_console.print(f"[yellow]warning: {warning}[/yellow]", highlight=False)
    if till.journal:
        typer.echo(f"The till goes on in its register file {till.journal} (journal and books).")
