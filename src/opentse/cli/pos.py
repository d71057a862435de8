"""``opentse pos sell|status|daily|close``: a terminal register for integration tests and
small shops, over the embedded TSE (``--data``) or a fiskaly-compatible service
(``--url --api-key --api-secret``).

``--client`` is the register's serial number for ``--data`` (the id registered at the
TSE) and the client UUID for ``--url`` (the serial number is read from the service and
kept in the register's file, for the receipts and closings of a till that cannot reach it).
A TSE failure never fails the command: the receipt is printed "TSE ausgefallen" and
the journal (``--journal``, default ``<data>/pos/<client>.db`` with ``--data``, else
``~/.opentse/pos/<client>.db``) records it; the same file keeps the books (every
Vorgang, the closings) that ``pos close`` and ``opentse dsfinvk export`` read.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import typer

from opentse.cli.common import cli_errors, console, echo_json, err_console, parse_day, table
from opentse.errors import OpenTSEError, ProtocolError
from opentse.register.shoptime import local_text

pos_app = typer.Typer(
    help="A terminal register: sell, order, storno, cash in/out, status, daily record, "
    "closing (Z report).",
    no_args_is_help=True,
)

DATA_OPTION: Any = typer.Option(
    None,
    "--data",
    help="Data folder of an embedded TSE (without --data and --url: $OPENTSE_DATA, if set).",
)
URL_OPTION: Any = typer.Option(None, "--url", help="Base URL of a fiskaly-compatible service.")
KEY_OPTION: Any = typer.Option(None, "--api-key", envvar="OPENTSE_API_KEY", help="API key.")
SECRET_OPTION: Any = typer.Option(
    None, "--api-secret", envvar="OPENTSE_API_SECRET", help="API secret (or env var)."
)
TSS_OPTION: Any = typer.Option(None, "--tss", help="TSS / TSE id (or from --session).")
CLIENT_OPTION: Any = typer.Option(
    None, "--client", help="Register serial (--data) or client UUID (--url, or from --session)."
)
SESSION_OPTION: Any = typer.Option(
    None,
    "--session",
    help="The service from a file instead of --url, --api-key, --api-secret, --fingerprint "
    "(LAN-TSE-Session.txt of serve --lan), and --tss, --client (a till file of pos setup "
    "--out); options given win.",
)
# a receipt's files, for every command that prints one (pos sell, pos storno)
QR_OPTION: Any = typer.Option(None, "--qr", help="Write the QR code (.png or .svg).")
PDF_OPTION: Any = typer.Option(None, "--pdf", help="Write the receipt as PDF.")
ESCPOS_OPTION: Any = typer.Option(None, "--escpos", help="Write ESC/POS printer bytes.")
PNG_OPTION: Any = typer.Option(
    None, "--png", help="Write a picture of the printed receipt (with its QR code)."
)
FORCE_FILES_OPTION: Any = typer.Option(
    False,
    "--force",
    help="Replace an existing --qr, --pdf, --escpos or --png file; without it an existing "
    "one is refused before anything is booked (a receipt of an earlier sale is kept).",
)
FINGERPRINT_OPTION: Any = typer.Option(
    None,
    "--fingerprint",
    envvar="OPENTSE_TLS_FINGERPRINT",
    help="SHA-256 fingerprint of a LAN TSE's TLS certificate (as serve --lan prints it).",
)
JOURNAL_OPTION: Any = typer.Option(
    None,
    "--journal",
    help="The register's own file (journal and books); default <data>/pos/<client>.db, "
    "with --url ~/.opentse/pos/<client>.db.",
)
JSON_OPTION: Any = typer.Option(False, "--json", help="Print JSON.")
TIMEOUT_OPTION: Any = typer.Option(5.0, "--timeout", help="Seconds to wait for the TSE.")
#: the seller a till prints before it is told its own (a test till)
DEFAULT_SELLER = ("opentse Testkasse", ("Musterstraße 1", "12345 Musterstadt"))
SELLER_NAME_OPTION: Any = typer.Option(
    None,
    "--seller-name",
    help="The seller on the receipt (§6 KassenSichV); kept in the register's books "
    "(default: as kept there, else the last closing's --company, else "
    f"'{DEFAULT_SELLER[0]}').",
)
SELLER_ADDRESS_OPTION: Any = typer.Option(
    None, "--seller-address", help="Address line (repeat); kept as --seller-name."
)
TIMEZONE_OPTION: Any = typer.Option(
    None,
    "--timezone",
    envvar="OPENTSE_TIMEZONE",
    help="The shop's time zone (IANA name): its local days and printed times; kept in "
    "the register's books (default: as kept there, else Europe/Berlin).",
)

PAYMENT_NAMES = {
    "bar": "cash",
    "cash": "cash",
    "karte": "card",
    "card": "card",
    "ec": "card",
    "kreditkarte": "credit_card",
    "credit_card": "credit_card",
    "unbar": "other",
    "other": "other",
    "gutschein": "voucher",
    "voucher": "voucher",
}
BON_TYPES = {"beleg": "Beleg", "training": "AVTraining", "rechnung": "AVRechnung"}
DEFAULT_TIMEOUT = 5.0  # seconds to wait for the TSE (RegisterConfig.timeout)
PROBE_INTERVAL = 60.0  # RegisterConfig.probe_interval: within one command, not asked twice


def journal_path(journal: Path | None, client: str, data: Path | None = None) -> Path:
    """The register's own file (journal and books): ``--journal``, else
    ``<data>/pos/<client>.db`` beside an embedded TSE, else ``~/.opentse/pos/<client>.db``."""
    if journal is not None:
        return journal
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", client) or "register"
    folder = Path.home() / ".opentse" if data is None else data
    return folder / "pos" / f"{safe}.db"


@dataclass(frozen=True)
class TillOptions:
    """The options every ``pos`` command takes to reach the TSE and the register's
    file (``--tss`` and ``--client`` stay each command's own: they lead its help)."""

    data: Path | None = None
    url: str | None = None
    api_key: str | None = None
    api_secret: str | None = None
    fingerprint: str | None = None
    session: Path | None = None
    journal: Path | None = None
    timezone: str | None = None


#: the options of TillOptions, in the order ``--help`` lists them
TILL_PARAMETERS = tuple(
    inspect.Parameter(
        name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=option, annotation=kind
    )
    for name, option, kind in (
        ("data", DATA_OPTION, Path | None),
        ("url", URL_OPTION, str | None),
        ("api_key", KEY_OPTION, str | None),
        ("api_secret", SECRET_OPTION, str | None),
        ("fingerprint", FINGERPRINT_OPTION, str | None),
        ("session", SESSION_OPTION, Path | None),
        ("journal", JOURNAL_OPTION, Path | None),
        ("timezone", TIMEZONE_OPTION, str | None),
    )
)
#: the placeholder a command declares where the options go (never used as a value)
NO_TILL = TillOptions()

Command = TypeVar("Command", bound=Callable[..., None])


def till_options(command: Command) -> Command:
    """Typer sees the TillOptions options in place of the ``till`` parameter; the
    command gets them as one TillOptions."""
    signature = inspect.signature(command, eval_str=True)
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        parameters += TILL_PARAMETERS if parameter.name == "till" else (parameter,)

    @functools.wraps(command)
    def with_till(**given: Any) -> None:
        till = TillOptions(**{p.name: given.pop(p.name) for p in TILL_PARAMETERS})
        command(till=till, **given)

    with_till.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return cast(Command, with_till)


@contextlib.contextmanager
def _register(
    till: TillOptions,
    tss: str | None,
    client: str | None,
    **config: Any,
) -> Iterator[Any]:
    """A connected-on-demand Register over the chosen backend; everything closed after.
    With ``--url`` the register's serial is asked of the service only while none is
    kept (a client's serial number does not change); ``contact=False`` (status
    --no-check): not before the first file is made either. ``confirm`` (daily): a
    first file is made only for a register the TSE answers it knows."""
    data, url, session, journal = till.data, till.url, till.session, till.journal
    api_key, api_secret, fingerprint = till.api_key, till.api_secret, till.fingerprint
    from opentse.installation import CA_FILE
    from opentse.register import EmbeddedBackend, OutageLog, Register, RegisterConfig, Seller
    from opentse.register.books import Books
    from opentse.register.outage import Light
    from opentse.register.remote import RemoteBackend
    from opentse.register.shoptime import DEFAULT_SHOP_TIMEZONE

    noted = None  # the serial number the till file names for its client
    if session is not None:  # the options given win over the file
        from opentse.cli.pos_setup import load_session

        if data is not None:
            raise ProtocolError(
                "--session names a service: give --session or --data, not both",
                code="E_POS_BACKEND",
            )
        given = load_session(session)
        if client is None or client == given.client:
            noted = given.serial_number
        url, tss, client = url or given.url, tss or given.tss, client or given.client
        api_key, api_secret = api_key or given.api_key, api_secret or given.api_secret
        fingerprint = fingerprint or given.fingerprint
        if journal is None and given.journal:  # the till's file named by pos repoint
            journal = Path(given.journal)
    if not tss or not client:
        raise ProtocolError(
            "give --tss and --client (or --session with the till file of "
            "'opentse pos setup --out')",
            code="E_POS_TILL",
        )
    data = _data_of(till)  # $OPENTSE_DATA as every command's default, unless a service
    if (data is None) == (url is None):
        raise ProtocolError(
            "give either --data DIR (or set OPENTSE_DATA) or --url URL", code="E_POS_BACKEND"
        )
    if data is not None and config.get("not_certified", True) is False:
        # an embedded TSE is opentse's, never BSI-certified: its receipts say so
        raise ProtocolError(
            "--certified: the embedded TSE of --data (or OPENTSE_DATA) is opentse's, "
            "which is not BSI-certified; its receipts say so. Leave out --certified",
            code="E_POS_CERTIFIED",
        )
    seller_name, seller_address = (
        config.pop("seller_name", None),
        config.pop("seller_address", None),
    )
    seller = Seller(seller_name or DEFAULT_SELLER[0], tuple(seller_address or DEFAULT_SELLER[1]))
    contact = bool(config.pop("contact", True))
    existing = bool(config.pop("existing", False))
    confirm = bool(config.pop("confirm", False))
    timezone = till.timezone
    timeout = float(config.get("timeout", DEFAULT_TIMEOUT))
    # a sale right after connect's failed probe (one command) is booked unsigned at once
    config.setdefault("probe_interval", PROBE_INTERVAL)
    # every option is checked before a file is made: a refused --timeout or client id
    # left a new journal behind
    RegisterConfig(seller, client, **config, timezone=timezone or DEFAULT_SHOP_TIMEZONE)
    if data is not None and not (data / CA_FILE).is_file():
        # Installation.open would set up a new, empty installation there, and every
        # sale of a mistyped --data was "TSE ausgefallen"
        raise ProtocolError(
            f"{data} is not an opentse data folder (no {CA_FILE}): check --data",
            code="E_DATA_DIR",
        )
    with contextlib.ExitStack() as stack:
        backend: Any
        serial = client
        path = journal_path(journal, client, data)
        fresh, asked, known = not path.exists(), None, False
        if data is not None:
            from opentse.installation import Installation

            inst = Installation.open(data)
            stack.callback(inst.close)
            backend = EmbeddedBackend(
                inst.service, tss, successor=functools.partial(_successor, inst, data, tss)
            )
            if contact and fresh:  # a register the TSE does not know makes no file
                known = _refuse_unknown(backend, client, timeout)
        else:
            if not api_key or not api_secret:
                raise ProtocolError("--url needs --api-key and --api-secret", code="E_POS_AUTH")
            backend = RemoteBackend(
                url or "",
                api_key,
                api_secret,
                tss,
                client,
                timeout=timeout,
                fingerprint=fingerprint,
            )
            stack.callback(backend.close)
            if contact and fresh:  # E_REGISTER_CLIENT_UNKNOWN before a file is made
                asked = _ask_serial(backend, timeout)
                known = asked is not None
            if journal is None and asked is not None:
                _refuse_second_journal(path, asked)
        if existing and fresh:
            # status --no-check reads the journal only: a mistyped --client made an
            # empty register file and said GREEN for a till that never signed
            raise ProtocolError(
                f"no register file {path} for client {client!r}: this till has booked "
                "nothing yet, or --client/--journal is mistyped (pos status without "
                "--no-check asks the TSE)",
                code="E_POS_NO_REGISTER",
            )
        if confirm and fresh and not known:
            # pos daily wrote an empty register file (and a GREEN record) for a mistyped
            # --client while the TSE could not say whether it knows the register
            raise ProtocolError(
                f"no register file {path} for client {client!r}, and the TSE cannot be "
                "asked now whether it knows this register: a till that has booked nothing "
                "has no day to record yet; check --client/--journal, or try again once "
                "the TSE answers",
                code="E_POS_NO_REGISTER",
            )
        log = OutageLog(path)
        stack.callback(log.close)
        books = Books(path, timezone=timezone)
        stack.callback(books.close_file)
        config["timezone"] = books.timezone  # the shop's zone, as given or kept
        if url is not None:
            kept = books.register_serial()
            if asked is not None:
                serial = asked
                books.set_register_serial(asked)
            elif kept:  # a client's serial number does not change: not asked again
                serial = kept
            else:
                # in an outage (the journal's light not green) asked once, as every
                # call of the sale is (Register._attempts): with the retries' backoff a
                # till that never reached its service took ~1.5 s more per sale
                once = log.status().light is not Light.GREEN
                serial = _client_serial(backend, books, client, timeout, once=once, noted=noted)
        elif books.register_serial() != client:  # what the outage log names the till by
            books.set_register_serial(client)
        seller = _seller(books, seller_name, seller_address)
        yield Register(backend, RegisterConfig(seller, serial, **config), log, books=books)


def _successor(inst: Any, data: Path, tss: str) -> str | None:
    """The TSE that replaced ``tss`` in this installation (``opentse tse replace``
    records it at the old TSE's site entry), or None."""
    from opentse.ops import sites
    from opentse.ops.store import OpsContext
    from opentse.storage.pg_service import open_service_store

    svc = open_service_store(inst, data)
    try:
        found = sites.find_tse(OpsContext(inst, svc, owns=False, owns_svc=False), tss)
    finally:
        svc.close()
    return None if found is None else found.replaced_by


def _seller(books: Any, name: str | None, address: list[str] | None) -> Any:
    """The receipts' seller: as given (then kept in the books), else as kept (or the
    last closing's company), else the test till's. A receipt printed the test till's
    'opentse Testkasse, Musterstraße 1' unless every sale named the seller."""
    from opentse.register import Seller

    kept = books.seller()
    if name or address:
        chosen = (
            name or (kept or DEFAULT_SELLER)[0],
            tuple(address) if address else (kept or DEFAULT_SELLER)[1],
        )
        if chosen != kept:
            books.set_seller(*chosen)
        return Seller(chosen[0], chosen[1])
    return Seller(*(kept or DEFAULT_SELLER))


def _refuse_unknown(backend: Any, client: str, timeout: float) -> bool:
    """Raise RegisterNotAccepted when the TSE answers that it does not know the
    register (E_REGISTER_CLIENT_UNKNOWN, E_REGISTER_TSS_UNKNOWN); a TSE that cannot
    be used now is an outage, which the register books (False: not confirmed)."""
    from opentse.register.backends import RegisterNotAccepted
    from opentse.register.register import call_within

    try:
        call_within(lambda: backend.check(client), timeout)
    except RegisterNotAccepted:
        raise
    except Exception:
        return False
    return True


def _kept_serial(path: Path) -> str | None:
    """The register serial a register file keeps (books_master), read only."""
    from opentse.register.localdb import peek

    row = peek(path, "SELECT value FROM books_master WHERE name = 'register_serial'")
    return None if row is None else str(row[0])


def _refuse_second_journal(path: Path, serial: str) -> None:
    """A new default register file (``--url``: named after the client UUID) for a
    register whose journal and books are already in another file of the folder: after
    a TSE replacement the client UUID is a new one, and a new file would start the
    receipt numbers at 1 again and lose the closings. Which file goes on is the
    operator's call (several installations may have a register of that serial)."""
    if not path.parent.is_dir():
        return
    for other in sorted(path.parent.glob("*.db")):
        if other != path and _kept_serial(other) == serial:
            raise ProtocolError(
                f"register {serial} keeps its journal and books in {other} (another "
                f"client UUID, e.g. before a TSE replacement): give --journal {other} "
                "to go on with its receipt numbers and closings, or --journal with a "
                "new file for new books",
                code="E_POS_JOURNAL_ELSEWHERE",
            )


def _ask_serial(backend: Any, timeout: float) -> str | None:
    """The register serial number the service holds for the client UUID, asked within
    the TSE deadline (``--timeout``); None when the service cannot be reached now. A
    service that does not know the client (or TSS) raises RegisterNotAccepted."""
    from opentse.register.backends import RegisterNotAccepted
    from opentse.register.register import call_within

    try:
        return str(call_within(backend.client_serial, timeout))
    except RegisterNotAccepted:
        raise
    except Exception:
        return None


def _client_serial(
    backend: Any,
    books: Any,
    client: str,
    timeout: float,
    *,
    once: bool = False,
    noted: str | None = None,
) -> str:
    """The serial number asked (``_ask_serial``; ``once``: a single attempt, no retries)
    and kept in the books; a service that cannot be reached leaves the one kept (the
    journal shows red), so the receipts and the closing keep the serial the TSE signs
    with instead of the UUID. Before one is kept, the one the till file names
    (``noted``, as pos setup wrote it): a till whose first sale met an outage printed
    the client UUID as Kassen-Seriennummer. Not kept: the service confirms it at the
    next contact (a wrong one is E_REGISTER_CLIENT_UNKNOWN there)."""
    from opentse.register.register import single_attempts

    with single_attempts(backend) if once else contextlib.nullcontext():
        serial = _ask_serial(backend, timeout)
    if serial is None:
        return str(books.register_serial() or noted or client)
    if serial != books.register_serial():
        books.set_register_serial(serial)
    return serial


def _line(spec: str) -> tuple[str, str, str, int, str]:
    """``Text:quantity:unit price:VAT key[:GV_TYP]`` (the text may contain ':');
    GV_TYP defaults to Umsatz (e.g. ``Pfand:1:-0.25:1:PfandRueckzahlung``)."""
    from opentse.register.sale import GV_TYPES

    gv_typ = "Umsatz"
    head, _, last = spec.rpartition(":")
    if last in GV_TYPES:
        spec, gv_typ = head, last
    parts = spec.rsplit(":", 3)
    if len(parts) != 4 or not parts[3].isdigit():
        raise ProtocolError(
            f"--line {spec!r}: use TEXT:QTY:PRICE:VATKEY[:GV_TYP]", code="E_POS_LINE"
        )
    return parts[0], parts[1], parts[2], int(parts[3]), gv_typ


def _discount(spec: str) -> tuple[str, str, int]:
    """``Text:amount:VAT key``."""
    parts = spec.rsplit(":", 2)
    if len(parts) != 3 or not parts[2].isdigit():
        raise ProtocolError(f"--discount {spec!r}: use TEXT:AMOUNT:VATKEY", code="E_POS_LINE")
    return parts[0], parts[1], int(parts[2])


def _payment(spec: str) -> tuple[str, str]:
    method, _, amount = spec.partition(":")
    if method.lower() not in PAYMENT_NAMES or not amount:
        names = ", ".join(sorted(PAYMENT_NAMES))
        raise ProtocolError(f"--pay {spec!r}: use METHOD:AMOUNT ({names})", code="E_POS_PAY")
    return PAYMENT_NAMES[method.lower()], amount


def _order_start(books: Any, receipt: str) -> Any:
    """The TSE start of the order ``receipt`` (BON_ID or number), before the bill is
    booked (E_POS_FIRST_ORDER for a receipt that is no order)."""
    return books.order_start(books.find_bon_id(receipt))


def _check_export_target(out: Path, force: bool) -> None:
    """Before the day is closed: ``pos close --out`` would write over an earlier export
    (a ZIP that exists, a folder that is not empty) only with ``--force``, and never
    into a folder holding other files or a ZIP path that is a folder. The closing was
    made first and the export then refused, naming a --force pos close lacked."""
    from opentse.formats.dsfinvk.export import EXPORT_FILES

    nothing = "Nothing was closed"
    if out.suffix.lower() == ".zip":
        if out.is_dir():
            why = f"{out} is a folder, not a ZIP file: choose another --out"
        elif out.exists() and not force:
            why = f"{out} exists: choose another --out, or --force to replace it"
        else:
            return
    elif out.is_dir():
        names = [p.name for p in out.iterdir()]
        if not names:
            return
        foreign = [n for n in names if n not in EXPORT_FILES]
        if foreign:
            why = f"{out} holds files that are no DSFinV-K export's: choose a new folder"
        elif not force:
            why = f"{out} holds an export: choose a new folder, or --force to replace it"
        else:
            return
    elif out.exists():
        why = f"{out} is a file, not a folder: give a .zip name or a new folder"
    else:
        return
    raise ProtocolError(f"{why}. {nothing}", code="E_DSFINVK_TARGET")


def _check_outputs(**paths: Path | None) -> None:
    """Before the sale is booked: each output file's folder exists and can be written
    (a sale is never booked for a receipt that cannot be written)."""
    for name, path in paths.items():
        if path is None:
            continue
        folder = path.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise ProtocolError(
                f"--{name} {path}: the folder {folder} does not exist or cannot be written",
                code="E_POS_OUTPUT",
            )


def _refuse_existing(force: bool, nothing: str = "booked", **paths: Path | None) -> None:
    """Before anything is booked: an output file that exists is an earlier receipt's
    or Z report's (a lost document when written over without a word), replaced only
    with ``--force``; a folder is never written over, and two options never name one
    file (the second would replace the first)."""
    named: dict[Path, str] = {}
    for name, path in paths.items():
        if path is None:
            continue
        same = named.get(path.absolute())
        if same is not None:
            raise ProtocolError(
                f"--{same} and --{name} both name {path}: give each its own file. "
                f"Nothing was {nothing}",
                code="E_POS_OUTPUT",
            )
        named[path.absolute()] = name
        if path.is_dir():
            raise ProtocolError(
                f"--{name} {path} is a folder: give a file name. Nothing was {nothing}",
                code="E_POS_OUTPUT",
            )
        if path.exists() and not force:
            raise ProtocolError(
                f"--{name} {path} exists (an earlier receipt or report?): choose another "
                f"name, or --force to replace it. Nothing was {nothing}",
                code="E_POS_OUTPUT_EXISTS",
            )


def _write_file(path: Path, data: bytes, force: bool) -> None:
    """``data`` to ``path``; without ``force`` only as a new file (one made since the
    check before booking is not written over either)."""
    with path.open("wb" if force else "xb") as f:
        f.write(data)


def _write_outputs(
    result: Any,
    qr: Path | None,
    pdf: Path | None,
    escpos: Path | None,
    zone: Any = None,
    png: Path | None = None,
    force: bool = False,
) -> None:
    """The receipt's files, its times in the shop's ``zone`` as the text receipt."""
    from opentse.register import (
        render_escpos,
        render_pdf,
        render_qr_png,
        render_qr_svg,
        render_receipt_png,
        render_text,
    )

    payload = result.receipt.qr_payload
    if qr is not None:
        if payload is None:
            err_console.print("no QR code: the receipt is not signed (TSE ausgefallen)")
        elif qr.suffix.lower() == ".svg":
            _write_file(qr, render_qr_svg(payload).encode("utf-8"), force)
        else:
            _write_file(qr, render_qr_png(payload), force)
    if pdf is not None:
        _write_file(pdf, render_pdf(result.receipt, tz=zone, width=result.text_width), force)
    if escpos is not None:
        data = render_escpos(result.receipt, width=result.text_width, tz=zone)
        _write_file(escpos, data, force)
    if png is not None:
        text = render_text(result.receipt, width=result.text_width, tz=zone)
        _write_file(png, render_receipt_png(text, payload), force)


@pos_app.command("sell")
@till_options
def sell_command(
    tss: str | None = TSS_OPTION,
    client: str | None = CLIENT_OPTION,
    line: list[str] = typer.Option(
        ..., "--line", help="TEXT:QTY:PRICE:VATKEY[:GV_TYP] (repeat; GV_TYP default Umsatz)."
    ),
    tip: str | None = typer.Option(
        None, "--tip", help="Tip for the staff (TrinkgeldAN, VAT key 5), e.g. 2.00."
    ),
    pay: list[str] = typer.Option(
        [],
        "--pay",
        help="METHOD:AMOUNT, e.g. bar:5.00 (repeat); METHOD: bar, karte (ec), kreditkarte, "
        "gutschein, unbar (or cash, card, credit_card, voucher, other).",
    ),
    discount: list[str] = typer.Option([], "--discount", help="TEXT:AMOUNT:VATKEY (repeat)."),
    kind: str = typer.Option("beleg", "--type", help="beleg, training or rechnung."),
    first_order: str | None = typer.Option(
        None,
        "--first-order",
        help="BON_ID or number of this bill's first order (pos order): its TSE start is "
        "printed as TSE-Erstbestellung.",
    ),
    first_order_tx: int | None = typer.Option(
        None,
        "--first-order-tx",
        help="The TSE-Transaktion printed on this bill's first order, when another till "
        "signed it (a table moved here): its TSE start is printed as TSE-Erstbestellung.",
    ),
    till: TillOptions = NO_TILL,
    seller_name: str | None = SELLER_NAME_OPTION,
    seller_address: list[str] | None = SELLER_ADDRESS_OPTION,
    width: int = typer.Option(48, "--width", help="32 (58 mm) or 48 (80 mm) columns."),
    qr_only: bool = typer.Option(False, "--qr-only", help="TSE data only in the QR code."),
    certified: bool = typer.Option(
        False,
        "--certified",
        help="The TSE (--url) is certified: omit the not-certified line. Refused with "
        "--data; an opentse TSE's receipts keep it.",
    ),
    timeout: float = TIMEOUT_OPTION,
    as_json: bool = JSON_OPTION,
    qr: Path | None = QR_OPTION,
    pdf: Path | None = PDF_OPTION,
    escpos: Path | None = ESCPOS_OPTION,
    png: Path | None = PNG_OPTION,
    force: bool = FORCE_FILES_OPTION,
) -> None:
    """Book and sign one sale, print the receipt (a TSE failure still prints it)."""
    from opentse.register import Sale

    with cli_errors():
        if kind.lower() not in BON_TYPES:
            raise ProtocolError(f"--type must be one of {', '.join(BON_TYPES)}", code="E_POS_TYPE")
        if width not in (32, 48):
            raise ProtocolError("--width must be 32 or 48", code="E_POS_WIDTH")
        if first_order is not None and first_order_tx is not None:
            raise ProtocolError(
                "give --first-order (an order of this till) or --first-order-tx (of "
                "another till), not both",
                code="E_POS_FIRST_ORDER",
            )
        if first_order_tx is not None and first_order_tx < 1:
            raise ProtocolError(
                "--first-order-tx is a TSE transaction number (1 or more)",
                code="E_POS_FIRST_ORDER",
            )
        if qr_only and not (qr or pdf or escpos or png or as_json):  # before booking
            raise ProtocolError(
                "--qr-only leaves the TSE data (§6 KassenSichV) to the QR code: give --qr, "
                "--pdf, --escpos or --png to print it (or --json for qr_code_data)",
                code="E_POS_QR_ONLY",
            )
        sale = Sale(BON_TYPES[kind.lower()])
        for spec in line:
            text, quantity, price, key, gv_typ = _line(spec)
            sale.add_line(text, quantity, price, key, gv_typ=gv_typ)
        if tip is not None:
            sale.add_line("Trinkgeld", 1, tip, 5, gv_typ="TrinkgeldAN")
        for spec in discount:
            text, amount, key = _discount(spec)
            sale.add_discount(text, amount, key)
        for spec in pay:
            method, amount = _payment(spec)
            sale.add_payment(method, amount)
        sale.validate()
        _check_outputs(qr=qr, pdf=pdf, escpos=escpos, png=png)
        _refuse_existing(force, qr=qr, pdf=pdf, escpos=escpos, png=png)
        options = {
            "seller_name": seller_name,
            "seller_address": seller_address,
            "not_certified": not certified,
            "qr_only": qr_only,
            "timeout": timeout,
            "text_width": width,
        }
        with _register(till, tss, client, **options) as reg:
            started = None if first_order is None else _order_start(reg.books, first_order)
            reg.connect()
            if first_order_tx is not None:  # asked of the TSE: another till's order
                started = reg.order_start_at_tse(first_order_tx)
            result = reg.sell(sale, first_order_start=started)
            zone = reg.config.zone
    # the sale is booked: its receipt is printed first, whatever happens to the files
    if as_json:
        echo_json(result.to_json())
    else:
        typer.echo(result.to_json()["receipt_text"])
    if result.tse_failed and result.config_error is None:
        err_console.print(f"[yellow]TSE ausgefallen: {result.error}[/yellow]", highlight=False)
        if result.status.consecutive_failures > 2:
            err_console.print(f"[yellow]{result.status.message}[/yellow]", highlight=False)
    _write_booked_outputs(result, qr, pdf, escpos, zone, png, force)
    _fail_on_config_error(result)


def _write_booked_outputs(
    result: Any,
    qr: Path | None,
    pdf: Path | None,
    escpos: Path | None,
    zone: Any,
    png: Path | None,
    force: bool = False,
) -> None:
    """The files of a receipt already booked and printed: a file that cannot be
    written fails the command and says not to book the receipt again."""
    try:
        _write_outputs(result, qr, pdf, escpos, zone, png, force)
    except OSError as exc:
        err_console.print(
            f"[red]error E_POS_OUTPUT: {exc}; the sale is booked as receipt "
            f"{result.receipt.receipt_number}: do not book it again[/red]",
            highlight=False,
        )
        raise typer.Exit(1) from None


def _fail_on_config_error(result: Any) -> None:
    """A sale the TSE refused because it does not know the register (configuration,
    not an outage: the register refuses the next sale at connect) is booked unsigned
    and printed; the command still fails so the till is fixed before it sells on."""
    if result.config_error is None:
        return
    err_console.print(
        f"[red]error {result.config_error}: the TSE does not accept this register "
        f"({result.error}); the sale is booked unsigned as receipt "
        f"{result.receipt.receipt_number}: do not book it again[/red]",
        highlight=False,
    )
    raise typer.Exit(1)


@pos_app.command("order")
@till_options
def order_command(
    tss: str | None = TSS_OPTION,
    client: str | None = CLIENT_OPTION,
    line: list[str] = typer.Option(
        ..., "--line", help="TEXT:QTY:PRICE:VATKEY (repeat): what was ordered."
    ),
    till: TillOptions = NO_TILL,
    seller_name: str | None = SELLER_NAME_OPTION,
    seller_address: list[str] | None = SELLER_ADDRESS_OPTION,
    width: int = typer.Option(48, "--width", help="32 (58 mm) or 48 (80 mm) columns."),
    timeout: float = TIMEOUT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Book and sign a restaurant order (Bestellung-V1, booked as AVBestellung: no
    payments, no business case); the bill is a later pos sell."""
    from opentse.register import Sale

    with cli_errors():
        if width not in (32, 48):
            raise ProtocolError("--width must be 32 or 48", code="E_POS_WIDTH")
        order = Sale("AVBestellung")
        for spec in line:
            text, quantity, price, key, gv_typ = _line(spec)
            order.add_line(text, quantity, price, key, gv_typ=gv_typ)
        order.as_order()  # the cashier's errors, before anything is booked
        options = {
            "seller_name": seller_name,
            "seller_address": seller_address,
            "timeout": timeout,
            "text_width": width,
        }
        with _register(till, tss, client, **options) as reg:
            reg.connect()
            result = reg.order(order)
    if as_json:
        echo_json(result.to_json())
    else:
        typer.echo(result.to_json()["receipt_text"])
    if result.tse_failed and result.config_error is None:
        err_console.print(f"[yellow]TSE ausgefallen: {result.error}[/yellow]", highlight=False)
    _fail_on_config_error(result)


@pos_app.command("status")
@till_options
def status_command(
    tss: str | None = TSS_OPTION,
    client: str | None = CLIENT_OPTION,
    till: TillOptions = NO_TILL,
    timeout: float = TIMEOUT_OPTION,
    check: bool = typer.Option(True, "--check/--no-check", help="Contact the TSE first."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The traffic light and the outage journal (contacting the TSE recovers dangling
    transactions and ends a start-up outage)."""
    options = {"timeout": timeout}
    with (
        cli_errors(),
        _register(
            till,
            tss,
            client,
            contact=check,
            existing=not check,
            **options,
        ) as reg,
    ):
        status = reg.connect() if check else reg.status()
        outages = reg.journal.outages()
        dangling = reg.journal.dangling()
        foreign = reg.journal.foreign_open()
        daily = reg.journal.daily_records()
        zone, zone_name = reg.config.zone, reg.config.timezone
        numbers = {o.id: _receipt_numbers(reg.books, o.receipt_refs) for o in outages}
    out = {
        "status": status.light.value,
        "consecutive_failures": status.consecutive_failures,
        "message": status.message,
        "outage_started_at": None
        if status.outage_started_at is None
        else status.outage_started_at.isoformat(),
        "outages": [
            {
                "started_at": o.started_at.isoformat(),
                "ended_at": None if o.ended_at is None else o.ended_at.isoformat(),
                "kind": o.kind,
                "reason": o.reason,
                "unsigned_receipts": list(o.receipt_refs),
            }
            for o in outages
        ],
        "dangling_transactions": [
            {
                "transaction_number": d.transaction_number,
                "found_at": d.found_at.isoformat(),
                "resolved_at": None if d.resolved_at is None else d.resolved_at.isoformat(),
                "resolution": d.resolution,
            }
            for d in dangling
        ],
        # open at the TSE for this client but started by another till (not aborted)
        "other_tills_open_transactions": [
            {
                "transaction_number": f.transaction_number,
                "process_type": f.process_type,
                "started_at": None if f.started_at is None else f.started_at.isoformat(),
                "first_seen_at": f.first_seen_at.isoformat(),
                "last_seen_at": f.last_seen_at.isoformat(),
            }
            for f in foreign
        ],
        "daily_records": [
            {"day": day, "status": light, "unsigned_receipts": n, "note": note}
            for day, light, n, note in daily
        ],
    }
    if as_json:
        echo_json(out)
        return
    colour = {"green": "green", "yellow": "yellow", "red": "red"}[status.light.value]
    console.print(
        f"[{colour}]● {status.light.value.upper()}[/{colour}] {status.message}"
        f" (unsigned receipts in this outage: {status.consecutive_failures})",
        highlight=False,
    )

    def shown(at: Any) -> str | None:  # the shop's wall-clock time, as on the receipts
        return None if at is None else local_text(at, zone)

    table(
        f"Outages (times: {zone_name})",
        ("started", "ended", "kind", "reason", "unsigned receipts"),
        [
            (shown(o.started_at), shown(o.ended_at), o.kind, o.reason, numbers[o.id])
            for o in outages
        ],
    )
    if dangling:
        table(
            f"Transactions left open (times: {zone_name})",
            ("number", "found", "resolved", "resolution"),
            [
                (d.transaction_number, shown(d.found_at), shown(d.resolved_at), d.resolution)
                for d in dangling
            ],
        )
    if foreign:
        table(
            f"Open transactions of other tills on this client (left alone; times: {zone_name})",
            ("number", "process type", "started", "last seen"),
            [
                (f.transaction_number, f.process_type, shown(f.started_at), shown(f.last_seen_at))
                for f in foreign
            ],
        )


def _receipt_numbers(books: Any, refs: tuple[str, ...]) -> str:
    """How many receipts were printed unsigned, and their numbers (Beleg-Nr.) as the
    books have them: what the shop owner finds in the drawer's copies."""
    found = [books.booked(ref) for ref in refs]
    listed = ", ".join(str(b.bon_nr) for b in found if b is not None)
    return f"{len(refs)} (Nr. {listed})" if listed else str(len(refs))


@pos_app.command("daily")
@till_options
def daily_command(
    tss: str | None = TSS_OPTION,
    client: str | None = CLIENT_OPTION,
    till: TillOptions = NO_TILL,
    note: str = typer.Option("", "--note", help="A note for the day's record."),
    timeout: float = TIMEOUT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Write today's journal record (works while no TSE is connected, once the till
    has its register file: a till's first record asks the TSE whether it knows the
    register)."""
    options: dict[str, Any] = {"timeout": timeout}
    with (
        cli_errors(),
        _register(
            till,
            tss,
            client,
            confirm=True,
            **options,
        ) as reg,
    ):
        reg.daily_record(note=note)
        records = reg.journal.daily_records()
    day, light, count, _ = records[-1]
    if as_json:
        echo_json({"day": str(day), "status": light, "unsigned_receipts": count})
        return
    console.print(f"Daily record {day}: status {light}, unsigned receipts {count}.")


def _sell_and_print(
    reg: Any, sale: Any, as_json: bool, extra: dict[str, Any], references: tuple[str, ...] = ()
) -> Any:
    result = reg.sell(sale, references=references)
    if as_json:
        echo_json({**result.to_json(), **extra})
    else:
        typer.echo(result.to_json()["receipt_text"])
    if result.tse_failed and result.config_error is None:
        err_console.print(f"[yellow]TSE ausgefallen: {result.error}[/yellow]", highlight=False)
    return result


@pos_app.command("storno")
@till_options
def storno_command(
    receipt: str = typer.Argument(..., help="BON_ID (receipt_ref) or number of the receipt."),
    tss: str | None = TSS_OPTION,
    client: str | None = CLIENT_OPTION,
    till: TillOptions = NO_TILL,
    timeout: float = TIMEOUT_OPTION,
    seller_name: str | None = SELLER_NAME_OPTION,
    seller_address: list[str] | None = SELLER_ADDRESS_OPTION,
    as_json: bool = JSON_OPTION,
    qr: Path | None = QR_OPTION,
    pdf: Path | None = PDF_OPTION,
    escpos: Path | None = ESCPOS_OPTION,
    png: Path | None = PNG_OPTION,
    force: bool = FORCE_FILES_OPTION,
) -> None:
    """Cancel a booked receipt: sign its AVBelegstorno (every line and payment negated),
    print its receipt and keep the reference to the original (DSFinV-K
    references.csv)."""
    with cli_errors():
        _check_outputs(qr=qr, pdf=pdf, escpos=escpos, png=png)  # before anything is booked
        _refuse_existing(force, qr=qr, pdf=pdf, escpos=escpos, png=png)
    options = {
        "timeout": timeout,
        "seller_name": seller_name,
        "seller_address": seller_address,
    }
    with (
        cli_errors(),
        _register(till, tss, client, **options) as reg,
    ):
        original = reg.books.find_bon_id(receipt)
        sale = reg.books.sale(original)
        if sale.bon_typ not in ("Beleg", "AVRechnung"):
            raise ProtocolError(
                f"receipt {receipt} is a {sale.bon_typ}: only sales can be cancelled",
                code="E_POS_STORNO",
            )
        # its cancellation; not recovery's abort of its TSE transaction, which points
        # at a receipt printed "TSE ausgefallen" too (the sale stands, and can be
        # cancelled)
        done = [
            bon_id
            for bon_id in reg.books.referenced_by(original)
            if reg.books.sale(bon_id).bon_typ == "AVBelegstorno"
        ]
        if done:
            by = reg.books.booked(done[0])
            raise ProtocolError(
                f"receipt {receipt} was cancelled already (by receipt "
                f"{done[0] if by is None else by.bon_nr})",
                code="E_POS_STORNO",
            )
        reg.connect()
        extra = {"references": original}  # booked with the storno, one books transaction
        result = _sell_and_print(reg, sale.storno(), as_json, extra, references=(original,))
        zone = reg.config.zone
    _write_booked_outputs(result, qr, pdf, escpos, zone, png, force)
    _fail_on_config_error(result)


@pos_app.command("cash")
@till_options
def cash_command(
    kind: str = typer.Option(
        ...,
        "--type",
        help="Einzahlung, Auszahlung, Privateinlage, Privatentnahme, "
        "Geldtransit, Lohnzahlung, Anfangsbestand, TrinkgeldAN.",
    ),
    amount: str = typer.Option(..., "--amount", help="Signed: + into the drawer, - out."),
    text: str = typer.Option("", "--text", help="What it is for."),
    tss: str | None = TSS_OPTION,
    client: str | None = CLIENT_OPTION,
    till: TillOptions = NO_TILL,
    timeout: float = TIMEOUT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Book a cash movement without sale (signed as SonstigerVorgang)."""
    from opentse.register.money import require_cents
    from opentse.register.sale import CashBookEntry

    options = {"timeout": timeout}
    with (
        cli_errors(),
        _register(till, tss, client, **options) as reg,
    ):
        entry = CashBookEntry(kind, require_cents(amount), text)
        reg.connect()
        carried = _carried_cash(reg.books)
        bon_id = uuid.uuid4()
        signed, status = reg.book(entry, bon_id=bon_id)
        booked = reg.books.booked(str(bon_id))
    # its number, for the cash book and to cancel a wrong entry (pos storno N)
    number = None if booked is None else str(booked.bon_nr)
    warning = None
    if entry.gv_typ == "Anfangsbestand" and carried:
        warning = (
            f"the last closing counted {carried} EUR in the drawer, which the next closing "
            f"takes as its opening cash already: this Anfangsbestand adds {entry.amount} "
            "to it, and the next closing books the difference. Book an Anfangsbestand only "
            "for a drawer emptied since (its count taken out as --type Geldtransit); "
            f"'opentse pos storno {number}' takes this one back"
        )
    out = {
        "receipt_ref": str(bon_id),
        "receipt_number": number,
        "gv_typ": entry.gv_typ,
        "amount": str(entry.amount),
        "tse_failed": signed is None,
        "transaction_number": None if signed is None else signed.transaction_number,
        "process_data": None if signed is None else signed.process_data,
        "status": status.light.value,
        "warning": warning,  # null unless the entry looks like cash counted twice
    }
    if as_json:
        echo_json(out)
    else:
        state = (
            "TSE ausgefallen" if signed is None else f"TSE-Transaktion {signed.transaction_number}"
        )
        console.print(
            f"{entry.gv_typ} {entry.amount} EUR booked as receipt {number} ({state}).",
            highlight=False,
        )
        if warning is not None:
            err_console.print(f"[yellow]warning: {warning}[/yellow]", highlight=False)


def _carried_cash(books: Any) -> Any:
    """The cash the last closing counted, while nothing is booked since (the drawer's
    float at the start of the day), else None. A shop that books its morning's float as
    Anfangsbestand on top of it counts that cash twice: the closing's Soll is the last
    count plus the day's cash, and the difference is booked for good."""
    counted = books.last_counted_cash()
    return counted if counted > 0 and books.open_count() == 0 else None


def _connect_to_close(reg: Any) -> None:
    """Connect before the closing (a cash difference is booked and signed). A TSE
    that no longer knows the register (a till taken out of service: its client
    deregistered) does not stop the closing: the day's receipts are in the books and
    DSFinV-K needs their closing; a difference is booked unsigned, journaled."""
    from opentse.register.backends import RegisterNotAccepted

    try:
        reg.connect()
    except RegisterNotAccepted as exc:
        err_console.print(
            f"[yellow]{exc}; the day is closed without the TSE[/yellow]", highlight=False
        )


def _data_of(till: TillOptions) -> Path | None:
    """The embedded installation a ``pos`` command uses: ``--data``, else
    ``$OPENTSE_DATA`` when no service is named (``--url``, ``--session``)."""
    if till.data is not None:
        return till.data
    if till.url is None and till.session is None and os.environ.get("OPENTSE_DATA"):
        return Path(os.environ["OPENTSE_DATA"])
    return None


def _site_location(data: Path | None, serial: str) -> Any:
    """Where the installation's site records put register ``serial`` (site
    add-register, site move-register), as a DSFinV-K Location, else None. DSFinV-K
    location.csv (Stamm_Orte) is the place the register stands, which is not the
    company's seat: a till moved to another branch closes there."""
    if data is None:
        return None
    from opentse.formats.dsfinvk.model import Location
    from opentse.ops import sites
    from opentse.ops.store import OpsContext

    with OpsContext.open(data) as ctx:
        row = sites.find_register(ctx, serial)
        if row is None:
            return None
        loc = sites.get_location(ctx, row.location_id)
    try:  # before the day is closed: a closing keeps its location for good
        country = sites.dsfinvk_country(loc.country or "DE")
        sites.check_dsfinvk_fields(loc.name, loc.street, loc.postal_code, loc.city)
    except OpenTSEError as exc:
        raise ProtocolError(
            f"register {serial}'s location {loc.name!r} ({loc.id}) cannot be written to"
            f" DSFinV-K location.csv: {exc.message}. Nothing was closed. Record the"
            " location anew (opentse site create) and move the register there (opentse"
            " site move-register)",
            code=exc.code,
        ) from None
    return Location(loc.name, loc.street, loc.postal_code, loc.city, country)


def _at_site(location: Any, site: Any, name: str) -> Any:
    """``location`` (of the options or the last closing) moved to the till's ``site``
    (None: unchanged); ``name`` (--location) still names it when given."""
    import dataclasses

    if site is None:
        return location
    return dataclasses.replace(site, name=name or site.name, vat_id=location.vat_id)


def _master(
    books: Any,
    serial: str,
    tss: str,
    company: str | None,
    street: str | None,
    postal_code: str | None,
    city: str | None,
    tax_number: str,
    vat_id: str,
    location_name: str,
    site: Any = None,
) -> Any:
    """Master data from the options, else as kept by the last closing; the location
    is the till's ``site`` when the installation records one (``_site_location``)."""
    import dataclasses

    from opentse import __version__
    from opentse.formats.dsfinvk.model import CashRegister, Company, Location
    from opentse.register.books import MasterData

    given = (company, street, postal_code, city)
    if all(v is None for v in given):
        kept = books.master()
        if kept is None:
            raise ProtocolError(
                "the first closing needs --company, --street, --postal-code and --city",
                code="E_POS_MASTER_DATA",
            )
        return dataclasses.replace(kept, location=_at_site(kept.location, site, location_name))
    if any(v is None for v in given):
        raise ProtocolError(
            "give all of --company, --street, --postal-code, --city", code="E_POS_MASTER_DATA"
        )
    if not tax_number and not vat_id:  # DSFinV-K 2.4, Anhang G: STNR or USTID
        raise ProtocolError("give --tax-number or --vat-id", code="E_POS_MASTER_DATA")
    name, st, plz, ort = (str(v) for v in given)
    return MasterData(
        Company(name, st, plz, ort, tax_number=tax_number, vat_id=vat_id),
        _at_site(Location(location_name or name, st, plz, ort, vat_id=vat_id), site, location_name),
        CashRegister(serial, software_version=__version__),
        tss,
    )


@pos_app.command("close")
@till_options
def close_command(
    tss: str | None = TSS_OPTION,
    client: str | None = CLIENT_OPTION,
    counted_cash: str = typer.Option(
        ..., "--counted-cash", help="Cash counted in the drawer now (EUR), e.g. 123.45."
    ),
    out: Path | None = typer.Option(None, "--out", help="Also write this closing's export."),
    pdf: Path | None = typer.Option(None, "--pdf", help="Write the Z report as PDF."),
    company: str | None = typer.Option(None, "--company", help="Company name (Unternehmen)."),
    street: str | None = typer.Option(None, "--street", help="Street and number."),
    postal_code: str | None = typer.Option(None, "--postal-code"),
    city: str | None = typer.Option(None, "--city"),
    tax_number: str = typer.Option("", "--tax-number", help="Steuernummer."),
    vat_id: str = typer.Option("", "--vat-id", help="USt-IdNr."),
    location_name: str = typer.Option(
        "",
        "--location",
        help="Location name (default: the till's site of the installation's site records "
        "(site add-register), else the company).",
    ),
    till: TillOptions = NO_TILL,
    timeout: float = TIMEOUT_OPTION,
    business_day: str | None = typer.Option(
        None,
        "--business-day",
        help="Business day of this closing (Z_BUCHUNGSTAG), YYYY-MM-DD; default: today "
        "in the shop's zone (see --day-start). A shop closing after midnight names the "
        "evening's day.",
    ),
    day_start: str | None = typer.Option(
        None,
        "--day-start",
        envvar="OPENTSE_DAY_START",
        help="HH:MM (at most 12:00): the local time the shop's business day starts, kept "
        "in the register's books. A bar open until 05:00 says 06:00 once, and every "
        "closing before 06:00 books the evening's day; 00:00 is the calendar day again.",
    ),
    check: bool = typer.Option(True, "--check/--no-check", help="Check the --out export."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace an existing --out ZIP, or the earlier export in folder --out (as "
        "dsfinvk export --force), and an existing --pdf file; without it an existing one "
        "is refused before the day is closed.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Kassenabschluss (Z report): close every receipt since the last closing with the
    counted cash; a difference to the expected cash is booked as DifferenzSollIst."""
    from opentse.formats.dsfinvk.check import check_export
    from opentse.formats.dsfinvk.export import write_export
    from opentse.register.money import require_cents
    from opentse.register.shoptime import parse_day_start
    from opentse.register.zreport import build_zreport, close_day, render_pdf, render_text

    findings: list[Any] = []
    with cli_errors():
        counted = require_cents(counted_cash, "--counted-cash")
        if counted < 0:  # a closing is final: a typed minus booked its difference for good
            raise ProtocolError(
                f"--counted-cash {counted}: the cash counted in the drawer is 0 or more",
                code="E_AMOUNT_SIGN",
            )
        day_of_business = (
            None
            if business_day is None
            else parse_day(business_day, "--business-day", "E_BUSINESS_DAY")
        )
        starts = None if day_start is None else parse_day_start(day_start)
        _check_outputs(pdf=pdf, out=out)  # before the day is closed
        _refuse_existing(force, "closed", pdf=pdf)
        if out is not None:
            _check_export_target(out, force)
        options = {
            "timeout": timeout,
        }
        with _register(till, tss, client, **options) as reg:
            books, serial = reg.books, reg.config.client_id
            site = _site_location(_data_of(till), serial)
            master = _master(books, serial, reg.backend.tse_id, company, street, postal_code, city,
                             tax_number, vat_id, location_name, site)  # fmt: skip
            if starts is not None:  # kept before anything is booked: the next closing too
                books.set_day_start(starts)
            _connect_to_close(reg)
            day = close_day(reg, books, master, counted, business_day=day_of_business)
            closing = day.closing
            report = build_zreport(day)
            zone = reg.config.zone  # the Z report prints the receipts' local time
            books_file = books.path
    path, unwritten = None, ""
    try:  # the day is closed: its Z report is printed whatever happens to the files
        if pdf is not None:
            _write_file(pdf, render_pdf(report, tz=zone), force)
        path = None if out is None else write_export([closing], out, replace=force)
    except (OSError, OpenTSEError) as exc:
        what = str(exc) if isinstance(exc, OpenTSEError) else f"E_POS_OUTPUT: {exc}"
        on = closing.business_day
        days = "" if on is None else f" --from {on} --to {on}"
        unwritten = (
            f"error {what}; closing Z_NR {report.z_nr} is done: 'opentse dsfinvk export "
            f"OUT --journal {books_file}{days}' writes its export again"
        )
    with cli_errors():
        if path is not None and check:
            findings = [f for f in check_export(path) if f.severity == "error"]
    summary = {**report.to_json(), "export": None if path is None else str(path)}
    summary["check_errors"] = [str(f) for f in findings]
    if as_json:
        echo_json(summary)
    else:
        typer.echo(render_text(report, tz=zone))
        if path is not None:
            console.print(f"DSFinV-K export -> {path}", highlight=False)
        for finding in findings:
            err_console.print(f"[red]{finding}[/red]", highlight=False)
    if unwritten:
        err_console.print(f"[red]{unwritten}[/red]", highlight=False)
    if findings or unwritten:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    import opentse.cli.pos_setup  # noqa: F401  (adds pos setup to pos_app)

    app.add_typer(pos_app, name="pos")
