"""``opentse verify`` (TSE TAR exports of any vendor) and ``opentse verify-receipt``.

Exit status of ``verify``: 0 no finding is an error, 1 errors found, 2 an input could
not be read at all (the message starts with its code: ``E_EXPORT_UNREADABLE`` not a
TAR archive, one cut short or damaged, a compressed one corrupt or over the cap
against decompression bombs, ``E_EXPORT_READ`` the file failed or changed while it
was read). ``verify-receipt``: 0 verified, 1 not verified, 2 no input.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from opentse.cli.common import logs_bar
from opentse.errors import OpenTSEError
from opentse.formats.qr import QRPayload
from opentse.verify.archive import LoadedExport, load_exports, tar_size
from opentse.verify.certificates import chain_words, load_trust_roots
from opentse.verify.findings import Finding, Severity, span_text
from opentse.verify.html import write_html
from opentse.verify.qrimage import read_qr_texts, receipt_texts
from opentse.verify.receipt import ReceiptResult, verify_receipt
from opentse.verify.report import VerifyReport, verify_loaded

#: The text report shows at most this many findings of one code (a client-filtered
#: export of a busy TSE has a counter gap per other log): the rest are counted.
PER_CODE = 20

_STYLE = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def _print_report(console: Console, report: VerifyReport) -> None:
    data = report.to_json()
    table = Table(title="TSE export", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, info in report.export.infos:  # which TSE(s), in their own words
        described = " · ".join(
            v for v in (info.get(k, "") for k in ("description", "manufacturer", "version")) if v
        )
        several = len(report.export.infos) > 1
        if described:  # the export's own words: no markup of ours
            title = f"TSE ({escape(label)})" if several else "TSE (info.csv)"
            table.add_row(title, escape(described))
    table.add_row("Log messages", str(data["log_messages"]))
    table.add_row("Valid signatures", str(data["valid_signatures"]))
    table.add_row("Invalid signatures", str(len(data["invalid_signatures"])))
    table.add_row("Unreadable files", str(len(data["parse_errors"])))
    tx = data["transactions"]
    table.add_row(
        "Transactions started/finished/open",
        f"{tx['started']}/{tx['finished']}/{len(tx['open'])}",
    )
    certs = data["certificates"]
    table.add_row("Certificates", f"{certs['count']} ({chain_words(report.certificates)})")
    for serial, s in data["serial_numbers"].items():
        gaps = ", ".join(span_text(a, b) for a, b in s["missing_ranges"]) or "none"
        table.add_row(
            f"Serial {serial[:16]}...",
            f"counters {s['first_counter']}..{s['last_counter']} ({s['count']} logs), "
            f"missing: {gaps}; logs from {_when(s['first_time'])} to {_when(s['last_time'])}",
        )
    console.print(table)
    _print_system_logs(console, report)
    shown: Counter[str] = Counter()
    for finding in report.findings:
        shown[finding.code] += 1
        if shown[finding.code] > PER_CODE:
            continue
        where = f" [dim]{escape(finding.file)}[/dim]" if finding.file else ""
        style = _STYLE[finding.severity]
        console.print(
            f"[{style}]{finding.severity.value:7}[/{style}] {finding.code}: "
            f"{escape(finding.message)}{where}",
            highlight=False,
            markup=True,
        )
    for code, count in shown.items():
        if count > PER_CODE:
            console.print(
                f"... and {count - PER_CODE} more {code} finding(s) of the same kind: all "
                "are in --json and --html",
                highlight=False,
            )
    colour = "green" if report.ok else "red"
    console.print(f"[{colour}]{report.verdict()}[/{colour}]", highlight=False)


def _print_system_logs(console: Console, report: VerifyReport) -> None:
    """The first PER_CODE system logs with their data named (all in --json/--html)."""
    result = report.system_logs
    if not result.rows:
        return
    table = Table(title="System logs", show_header=True)
    for column in ("Counter", "Time", "Operation", "Data"):
        table.add_column(column, overflow="fold")
    several = len({row.serial for row in result.rows}) > 1
    for row in result.rows[:PER_CODE]:
        operation = row.operation + ("" if row.version == 2 else f" (v{row.version})")
        counter = f"{row.serial[:8]}.. {row.counter}" if several else str(row.counter)
        table.add_row(counter, _when(row.time), escape(operation), escape(row.words()))
    console.print(table)
    if result.count > PER_CODE:
        console.print(
            f"... and {result.count - PER_CODE} more system log(s): the first "
            f"{len(result.rows)} are in --json and --html",
            highlight=False,
        )


def _when(iso: str | None) -> str:
    """A log time of the JSON report as the table shows it (UTC, to the second)."""
    return "?" if iso is None else iso.replace("T", " ").replace("+00:00", " UTC")


def _unverifiable(err: Console, as_json: bool, code: str, message: str) -> NoReturn:
    """End with exit status 2: the message (with its code) on stderr, and with
    ``--json`` also one JSON object on stdout, so a script reads why."""
    err.print(f"[red]{escape(code)}: {escape(message)}[/red]", highlight=False)
    if as_json:
        body = {"ok": False, "unreadable": {"code": code, "message": message}}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    raise typer.Exit(2)


def _trust_words(exc: BaseException) -> str:
    """Why a --trust file cannot be read, without a parser's or the OS's jargon."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "a folder, not a certificate file"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return "neither PEM certificates (-----BEGIN CERTIFICATE-----) nor one DER certificate"


def _load_with_bar(exports: list[Path], workers: int | None, err: Console) -> LoadedExport:
    """``load_exports`` with a progress bar that runs no thread of its own
    (``logs_bar``): the verifier forks while loading."""
    with logs_bar("verifying logs", err) as advance:
        return load_exports(exports, workers=workers, progress=advance)


def verify_command(
    exports: Annotated[
        list[Path], typer.Argument(help="TR-03151 TAR export(s).", metavar="EXPORT.tar...")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write an HTML report to this file.")
    ] = None,
    trust: Annotated[
        Path | None,
        typer.Option(
            "--trust",
            help="Trusted root certificate(s), PEM or DER (the TSE manufacturer's or the "
            "BSI's): a chain that does not end at one of them is an error "
            "(E_CHAIN_UNTRUSTED). Without it, a root the export carries is not checked.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Signature-checking workers (processes on Linux, threads elsewhere; "
            "default: every core for large archives).",
        ),
    ] = None,
) -> None:
    """Verify TSE TAR exports of any vendor: signatures, certificates, counters,
    transactions, times, file names. Several archives are checked as one sequence.

    Exit status: 0 no finding is an error, 1 errors found, 2 an input could not be
    verified; its message starts with the code: E_EXPORT_UNREADABLE (not a TAR
    archive, one cut short, or it cannot be opened) or E_EXPORT_READ (the file
    failed or changed while it was read: a read error, a copy still being written,
    or truncated); 2 also when the --html report cannot be written."""
    err = Console(stderr=True)
    roots = None
    if trust is not None:
        try:
            roots = load_trust_roots(trust.read_bytes())
        except (OSError, ValueError) as exc:
            why = f"cannot read --trust {trust}: {_trust_words(exc)}"
            _unverifiable(err, as_json, "E_TRUST_UNREADABLE", why)
    if html is not None and (html.is_dir() or not html.parent.is_dir()):
        # said before the verification, which may take minutes, not after it
        why = "it is a folder" if html.is_dir() else f"no folder {html.parent}"
        _unverifiable(err, as_json, "E_HTML_UNWRITABLE", f"cannot write --html {html}: {why}")
    big = sum(tar_size(p) for p in exports if p.is_file()) > 2 * 1024 * 1024
    try:
        if big and err.is_terminal:  # the one-pass reader, with a count of checked logs
            export = _load_with_bar(exports, workers, err)
        else:
            export = load_exports(exports, workers=workers)
    except OpenTSEError as exc:
        _unverifiable(err, as_json, exc.code, exc.message)
    except OSError as exc:
        _unverifiable(err, as_json, "E_EXPORT_UNREADABLE", str(exc))
    report = verify_loaded(export, trust=roots)
    html_failed = False
    if html is not None:
        try:
            write_html(report, html)
        except OSError as exc:  # e.g. no permission: the report is still printed below
            why = exc.strerror or str(exc)
            err.print(
                f"[red]E_HTML_UNWRITABLE: cannot write --html {escape(str(html))}: "
                f"{escape(why)}[/red]",
                highlight=False,
            )
            html_failed = True
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        _print_report(Console(), report)
    raise typer.Exit(2 if html_failed else 0 if report.ok else 1)


def _receipt_json(result: ReceiptResult) -> dict[str, object]:
    payload = result.payload
    return {
        "ok": result.ok,
        "fields": _fields(payload) if payload else None,
        "curve": result.curve,
        "serial_number": result.serial_number,
        "findings": [{**f.to_json(), "fields": list(f.fields)} for f in result.findings],
    }


def _fields(payload: QRPayload) -> dict[str, str | int]:
    return {
        "version": payload.version,
        "clientId": payload.client_id,
        "processType": payload.process_type,
        "processData": payload.process_data,
        "transactionNumber": payload.transaction_number,
        "signatureCounter": payload.signature_counter,
        "startTime": payload.start_time.isoformat(),
        "logTime": payload.log_time.isoformat(),
        "signatureAlgorithm": payload.signature_algorithm,
        "logTimeFormat": payload.time_format.value,
        "signature": payload.signature.hex(),
        "publicKey": payload.public_key.hex(),
    }


_WORDS = {
    "version": "QR code version",
    "clientId": "Register serial number (client id)",
    "processType": "Process type",
    "processData": "Process data",
    "transactionNumber": "TSE transaction number",
    "signatureCounter": "Signature counter",
    "startTime": "Transaction start (Start log time)",
    "logTime": "Transaction end (Finish log time)",
    "signatureAlgorithm": "Signature algorithm",
    "logTimeFormat": "TSE time format",
    "signature": "Signature (hex)",
    "publicKey": "TSE public key (hex)",
}


def _print_receipt(console: Console, result: ReceiptResult) -> None:
    if result.payload is not None:
        table = Table(title="Receipt", show_header=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in _fields(result.payload).items():
            table.add_row(_WORDS[key], escape(str(value)))
        if result.serial_number:
            table.add_row("TSE serial number (SHA-256 of the key)", result.serial_number)
        if result.curve:
            table.add_row("Curve", result.curve)
        console.print(table)
    for finding in result.findings:
        style = _STYLE[finding.severity]
        console.print(
            f"[{style}]{finding.severity.value}[/{style}] {finding.code}: "
            f"{escape(finding.message)}",
            highlight=False,
        )
    console.print(
        "[green]VERIFIED[/green]" if result.ok else "[red]NOT VERIFIED[/red]", highlight=False
    )


Matcher = Callable[[QRPayload], list[Finding]]


def _receipt_matchers(
    err: Console, as_json: bool, tars: list[Path], dsfinvk: list[Path]
) -> list[Matcher]:
    """Read the exports once (exit 2 when one cannot be read) and return what
    compares a receipt with each."""
    from opentse.cli.dsfinvk import UNREADABLE
    from opentse.formats.dsfinvk.check import BonSigned, check_export_bons
    from opentse.verify.crosscheck_read import read_tar_transactions
    from opentse.verify.receipt_match import against_dsfinvk, against_tse_export

    matchers: list[Matcher] = []
    if tars:
        damaged: dict[int | None, set[str]] = {}
        try:
            transactions = read_tar_transactions(tars, damaged=damaged)
        except (OSError, OpenTSEError) as exc:
            code = getattr(exc, "code", "E_EXPORT_UNREADABLE")
            _unverifiable(err, as_json, code, getattr(exc, "message", str(exc)))
        tar_label = " + ".join(str(t) for t in tars)
        matchers.append(lambda p: against_tse_export(p, transactions, tar_label, damaged))
    every: list[BonSigned] = []
    for export in dsfinvk:
        findings, _summary, bons = check_export_bons(export)
        unreadable = [f for f in findings if f.code in UNREADABLE]
        if unreadable:
            first = unreadable[0]
            _unverifiable(err, as_json, first.code, f"{first.file}: {first.message}")
        every.extend(bons)
    if dsfinvk:
        export_label = " + ".join(str(e) for e in dsfinvk)
        matchers.append(lambda p: against_dsfinvk(p, every, export_label))
    return matchers


def _matched(result: ReceiptResult, matchers: list[Matcher]) -> ReceiptResult:
    if result.payload is None or not matchers:
        return result
    payload = result.payload
    extra = [f for match in matchers for f in match(payload)]
    return replace(result, findings=(*result.findings, *extra))


def verify_receipt_command(
    payload: Annotated[
        str | None,
        typer.Argument(
            help='The QR code text, "V0;...". One line end after it (as echo adds) is taken '
            "as the end of the line, and the result says so; any other white space before "
            "or after it is an error (E_QR_FORMAT) naming it.",
            show_default=False,
            metavar="QR_TEXT",
        ),
    ] = None,
    image: Annotated[
        Path | None,
        typer.Option(
            "--image",
            help="A photo or scan of the receipt's QR code; several receipts in one "
            "picture are each verified (--json then prints a list).",
        ),
    ] = None,
    tse_exports: Annotated[
        list[Path] | None,
        typer.Option(
            "--tse-export",
            help="The TSE's TAR export (any vendor; repeat for incremental exports): the "
            "receipt's transaction must be in it with the same client, signature, "
            "counter, time and processData, and its Start log's time must be the "
            "receipt's start time.",
        ),
    ] = None,
    dsfinvk: Annotated[
        list[Path] | None,
        typer.Option(
            "--dsfinvk",
            help="The register's DSFinV-K export (ZIP or folder; repeat it for the exports "
            "of several registers): a Bon must have the receipt's TSE transaction, "
            "signature and counter, and its rows (a sale's Bon type, amounts and "
            "payments; an order's lines) must give the receipt's processData.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Verify a receipt from its QR code: rebuild the signed Finish log, check the
    signature with the embedded public key, show the fields in words. With
    --tse-export and --dsfinvk, also find it in the shop's exports (Kassen-Nachschau).

    Exit status: 0 verified, 1 not verified (or not a receipt QR code; with
    --tse-export or --dsfinvk also: not found there, or different), 2 no input (no QR
    text and no --image, or no QR code in the image) or an export that cannot be
    read."""
    err = Console(stderr=True)
    if (payload is None) == (image is None):
        _unverifiable(err, as_json, "E_RECEIPT_INPUT", "give either the QR text or --image")
    matchers = _receipt_matchers(err, as_json, tse_exports or [], dsfinvk or [])
    texts = [payload] if payload is not None else []
    if image is not None:
        try:
            found = read_qr_texts(image)
        except OpenTSEError as exc:
            _unverifiable(err, as_json, exc.code, exc.message)
        texts = receipt_texts(found)  # every receipt in the picture
    results = [_matched(verify_receipt(text), matchers) for text in texts]
    if as_json:
        bodies = [_receipt_json(r) for r in results]
        body: object = bodies[0] if len(bodies) == 1 else bodies
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    else:
        out = Console()
        for number, result in enumerate(results, start=1):
            if len(results) > 1:
                out.print(f"QR code {number} of {len(results)}", highlight=False)
            _print_receipt(out, result)
    raise typer.Exit(0 if all(r.ok for r in results) else 1)


def register(app: typer.Typer) -> None:
    app.command("verify")(verify_command)
    app.command("verify-receipt")(verify_receipt_command)
