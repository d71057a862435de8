"""Shared CLI plumbing: --data/--json options, opening the installation, printing
results as rich tables or JSON, and turning OpenTSEError into ``error E_CODE: msg``
(red, on stderr) with exit code 1 instead of a traceback."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from opentse.engine.results import TSEInfo
from opentse.errors import AuthenticationError, OpenTSEError, ProtocolError

DEFAULT_DATA = Path(os.environ.get("OPENTSE_DATA", "opentse-data"))

DATA_OPTION: Any = typer.Option(DEFAULT_DATA, "--data", help="Data folder of the installation.")
JSON_OPTION: Any = typer.Option(False, "--json", help="Print JSON instead of tables.")

console = Console()
err_console = Console(stderr=True)


def fail(exc: OpenTSEError) -> NoReturn:
    err_console.print(
        f"[red]error {exc.code}: {escape(exc.message)}[/red]", highlight=False, soft_wrap=True
    )
    raise typer.Exit(1)


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Map OpenTSEError to the one-line error and exit 1."""
    try:
        yield
    except OpenTSEError as exc:
        fail(exc)


@contextlib.contextmanager
def installation(data: Path) -> Iterator[Any]:
    """Open the installation in ``data`` for one command, errors mapped, closed after."""
    from opentse.installation import Installation

    with cli_errors():
        inst = Installation.open(data)
        try:
            yield inst
        finally:
            inst.close()


def ask_secret(value: str | None, label: str, *, confirm: bool = False) -> str:
    """``value``, else asked for without echo. The question goes to stderr (as
    errors do): with ``--json`` stdout holds the JSON only, also when the PIN is
    typed or piped in (an option's own prompt wrote 'Pin:' before the JSON)."""
    if value is not None:
        return value
    answer: str = typer.prompt(label, hide_input=True, confirmation_prompt=confirm, err=True)
    return answer


def echo_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a table without cutting any value short: ids and serials are copied from
    it. Piped or redirected, the table is as wide as its longest row (rich would cut
    cells to 80 columns with an ellipsis); in a narrow terminal a long value folds
    onto the next line of its cell."""
    t = Table(title=title)
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    if console.is_terminal:
        console.print(t)
        return
    unbounded = console.options.update(max_width=100_000)
    wide = Console(width=max(console.width, Measurement.get(console, unbounded, t).maximum))
    wide.print(t)


def pairs(title: str, data: Mapping[str, Any]) -> None:
    table(title, ("field", "value"), [(k, v) for k, v in data.items()])


def iso(unix: int | None) -> str | None:
    return None if unix is None else datetime.fromtimestamp(unix, tz=UTC).isoformat()


def parse_date(text: str | None, *, end: bool = False) -> int | None:
    """ISO 8601 date or date-time (UTC if no offset) or unix seconds -> unix seconds.
    A bare date as an end bound means the end of that day (ranges are inclusive)."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 date: {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    value = int(dt.timestamp())
    if end and len(text) == 10:
        value += 86399
    return value


def parse_day(text: str, option: str, code: str) -> date:
    """A calendar day given as ``YYYY-MM-DD`` to ``option``; ``code`` otherwise."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ProtocolError(f"{option} {text!r}: use a date YYYY-MM-DD", code=code) from None


def check_output_file(path: Path, what: str, code: str) -> None:
    """Refuse an output file that cannot be written (a folder, or in a folder that
    does not exist or is read-only) before the command signs anything: a TSE export
    signs its exportData log, the demo its receipts."""
    folder = path.parent
    if path.is_dir():
        raise ProtocolError(f"{what} {path} is a folder; name the file to write", code=code)
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise ProtocolError(
            f"{what} {path}: the folder {folder} does not exist or cannot be written", code=code
        )


def tse_json(info: TSEInfo) -> dict[str, Any]:
    """A TSE as shown by ``tse show --json`` (no secrets)."""
    r, s = info.record, info.state
    return {
        "id": r.tse_id,
        "state": s.lifecycle.value,
        "description": s.description,
        "serial_number": r.serial_number.hex(),
        "public_key": base64.b64encode(r.public_key_point).decode(),
        "curve": r.curve,
        "signature_algorithm": r.signature_algorithm,
        "time_format": r.time_format,
        "signature_counter": s.signature_counter,
        "transaction_counter": s.transaction_counter,
        "registered_clients": sorted(c.client_id for c in s.clients.values() if c.registered),
        "open_transactions": len(s.open_transactions),
        "max_clients": s.max_clients,
        "max_open_transactions": s.max_open_transactions,
        "certificates": len(r.certificate_chain),
        "time_creation": iso(r.created_at),
        "time_init": iso(s.initialized_at),
        "time_disable": iso(s.disabled_at),
    }


def refuse_unset_pin(state: Any, tse_id: str, user_id: str) -> None:
    """A role whose first PIN was never set (a new TSE) cannot log in: say how to set
    it before the TSE leaves CREATED or anything is signed. (A PIN blocked by wrong
    attempts goes on to authenticateUser: an attempt on it is logged like every
    other.)"""
    user = state.users.get(user_id)
    if user is None or user.pin_hash is not None:
        return
    option = "" if user_id == "admin" else f" --user {user_id}"
    also = " (tse initialize takes --puk too)" if user_id == "admin" else ""
    raise AuthenticationError(
        f"the {user_id} PIN is not set yet: set it with the {user_id} PUK `tse create` "
        f"printed: opentse tse set-pin {tse_id}{option} --puk PUK{also}",
        code=f"E_{user_id.upper()}_PIN_BLOCKED",
    )


def admin_session(service: Any, tse_id: str, pin: str, puk: str | None) -> None:
    """Make sure the admin is logged in: CREATED -> UNINITIALIZED, set the PIN with
    the PUK when given (first use or blocked PIN), then authenticate."""
    from opentse.engine.state import Lifecycle
    from opentse.engine.users import ADMIN

    state = service.get(tse_id).state
    if puk is None:
        refuse_unset_pin(state, tse_id, ADMIN)
    if state.lifecycle is Lifecycle.CREATED:
        service.set_state(tse_id, Lifecycle.UNINITIALIZED)
    if puk is not None:
        service.set_admin_pin(tse_id, puk, pin)
    service.authenticate(tse_id, pin)


@contextlib.contextmanager
def admin_logged_in(service: Any, tse_id: str, pin: str, puk: str | None) -> Iterator[None]:
    """``admin_session``, then log the admin out again whatever the command's step
    did: a refused step (a client already registered, a TSE already initialized)
    must not leave the admin logged in on the TSE, where the next caller (another
    command, an API client of ``opentse serve`` on the same data) would act as
    admin without the PIN. A logout that fails (a TSE just disabled) is not the
    error to report."""
    admin_session(service, tse_id, pin, puk)
    try:
        yield
    finally:
        with contextlib.suppress(OpenTSEError):
            service.logout(tse_id)


REDRAW = 0.1  # seconds between two drawings of a progress bar (rich's default)


@contextlib.contextmanager
def logs_bar(description: str, err: Console) -> Iterator[Callable[[int], None]]:
    """A bar counting logs on ``err``; yields the callback a reader reports read
    logs to. It is drawn by whichever thread reports (at most every ``REDRAW``
    seconds), not by rich's refresh thread: the verifier forks its worker process
    while loading (``verify.forked``), and a fork while another thread runs may
    leave the child stuck on a lock that thread held. So no thread of ours runs at
    any fork."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        TextColumn("{task.completed} logs"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        auto_refresh=False,
    ) as bar:
        task = bar.add_task(description, total=None)
        drawn = [time.monotonic()]

        def advance(count: int) -> None:
            bar.advance(task, count)
            now = time.monotonic()
            if now - drawn[0] >= REDRAW:
                drawn[0] = now
                bar.refresh()

        yield advance
