"""``opentse dsfinvk export|check``: the DSFinV-K 2.4 export of a register's closed
business days, and our checker (what an auditor's tool does, signatures included).

The export reads the register's books (``pos`` keeps them in ``<data>/pos/<register>.db``
beside an embedded TSE, or ``--journal FILE``); it never needs the TSE. Only closed
days are exported: a day in the range with receipts that were never closed is refused
(E_DSFINVK_NOT_CLOSED, naming the days: run ``opentse pos close`` first).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from opentse.cli.common import (
    cli_errors,
    console,
    echo_json,
    err_console,
    logs_bar,
    parse_day,
)
from opentse.errors import FormatError, ProtocolError

dsfinvk_app = typer.Typer(
    help="DSFinV-K 2.4 export of closed business days, and its checker.", no_args_is_help=True
)

#: Findings that mean "this is no readable export at all" (exit code 2).
UNREADABLE = frozenset({"E_EXPORT_MISSING", "E_EXPORT_ZIP", "E_INDEX_MISSING", "E_INDEX_XML"})


def _day(text: str | None, option: str) -> date | None:
    return None if text is None else parse_day(text, option, "E_DSFINVK_DATE")


def select_closings(
    books: Any, first: date | None, last: date | None, *, closed_only: bool = False
) -> list[Any]:
    """The closings of [first, last]; refuses open (never closed) days in the range
    (unless ``closed_only``: an inspection during the day takes what is closed, and is
    told what is not) and an empty range, with messages that name the days."""
    if first is not None and last is not None and first > last:
        raise ProtocolError(f"--from {first} is after --to {last}", code="E_DSFINVK_DATE")
    open_days = unclosed_days(books, first, last)
    if open_days and not closed_only:
        days = ", ".join(d.isoformat() for d in open_days)
        raise ProtocolError(
            f"receipts of {days} were never closed: run `opentse pos close` first "
            "(or choose a range without these days, or --closed-only)",
            code="E_DSFINVK_NOT_CLOSED",
        )
    closed = books.closed_days(first, last)
    if not closed:
        span = f"{first or 'the beginning'} .. {last or 'today'}"
        known = [d.closing.business_day for d in books.closed_days()]
        hint = f"; closed days: {known[0]} .. {known[-1]}" if known else "; nothing was closed yet"
        raise FormatError(f"no closing in {span}{hint}", code="E_DSFINVK_EMPTY")
    return [d.closing for d in closed]


def unclosed_days(books: Any, first: date | None, last: date | None) -> list[date]:
    """The shop's days in [first, last] with receipts no closing holds yet."""
    return [
        d
        for d in books.open_days()
        if (first is None or d >= first) and (last is None or d <= last)
    ]


def _books_path(register_id: str | None, data: Path | None, journal: Path | None) -> Path:
    """The register's books: ``--journal`` as it is (a till on ``--url`` keeps them in
    ``~/.opentse/pos/<client UUID>.db``, not under its serial), else found by
    ``--register`` (beside ``--data``, else in ``~/.opentse/pos``)."""
    from opentse.cli.pos import journal_path

    if journal is None and register_id is None:
        raise ProtocolError(
            "name the register's books: --register SERIAL (with --data for an embedded"
            " TSE) or --journal FILE",
            code="E_DSFINVK_NO_BOOKS",
        )
    path = journal_path(journal, register_id or "", data)
    if not path.is_file():
        whose = f"register {register_id!r}" if journal is None else "the register"
        hint = (
            "; a till on --url keeps them in ~/.opentse/pos/<its client UUID>.db:"
            " give that file with --journal"
            if journal is None and data is None
            else ""
        )
        raise ProtocolError(f"no books of {whose} at {path}{hint}", code="E_DSFINVK_NO_BOOKS")
    if not _holds_books(path):  # opening it as books would add their tables to it
        raise ProtocolError(
            f"{path} holds no register's books (it is no till file: the till keeps them in"
            " <data>/pos/<serial>.db, or ~/.opentse/pos/<client UUID>.db on --url)",
            code="E_DSFINVK_NO_BOOKS",
        )
    return path


def _holds_books(path: Path) -> bool:
    """Whether ``path`` is an SQLite file with the books' receipts table, read without
    writing anything to it (an export must not change the file it is given)."""
    from opentse.register.localdb import peek

    found = peek(
        path, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'books_receipts'"
    )
    return found is not None


def _check_register(books: Any, register_id: str | None, path: Path) -> None:
    """``--register`` with ``--journal``: the books must be that register's (their
    closings carry its serial as Z_KASSE_ID, whatever the option says)."""
    kept = books.register_serial()
    if register_id is not None and kept is not None and kept != register_id:
        raise ProtocolError(
            f"the books at {path} are register {kept!r}'s, not {register_id!r}",
            code="E_DSFINVK_REGISTER",
        )


@dsfinvk_app.command("export")
def export_command(
    out: Path = typer.Argument(
        ..., help="OUT.zip (or a new, empty folder); an existing one is refused (--force)."
    ),
    register_id: str | None = typer.Option(
        None,
        "--register",
        help="The register (its serial = TSE client id, as in pos --client); not needed"
        " with --journal.",
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Data folder of the embedded TSE the register used."
    ),
    journal: Path | None = typer.Option(None, "--journal", help="The register's own file."),
    first: str | None = typer.Option(None, "--from", help="First business day (YYYY-MM-DD)."),
    last: str | None = typer.Option(None, "--to", help="Last business day (YYYY-MM-DD)."),
    closed_only: bool = typer.Option(
        False,
        "--closed-only",
        help="Export the closings so far although receipts of the range are not closed "
        "yet (an inspection during the day); they are named, not exported.",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace an existing OUT.zip, or the earlier export in folder OUT (a folder"
        " holding other files is never replaced).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Write index.xml, the GDPdU DTD and the 20 CSV files, one row set per closing."""
    from opentse.formats.dsfinvk.export import write_export
    from opentse.register.books import Books

    with cli_errors():
        first_day, last_day = _day(first, "--from"), _day(last, "--to")
        path = _books_path(register_id, data, journal)
        books = Books(path)
        try:
            _check_register(books, register_id, path)
            closings = select_closings(books, first_day, last_day, closed_only=closed_only)
            # without --closed-only an unclosed day in range was refused just above
            left_out = unclosed_days(books, first_day, last_day) if closed_only else []
            open_receipts = books.open_count() if left_out else 0
        finally:
            books.close_file()
        written = write_export(closings, out, replace=force)
    summary = {
        "export": str(written),
        "closings": [c.z_nr for c in closings],
        "business_days": [
            None if c.business_day is None else str(c.business_day) for c in closings
        ],
        "receipts": sum(len(c.receipts) for c in closings),
        # --closed-only: what the export leaves out (all the books' open receipts)
        "not_closed": {"days": [str(d) for d in left_out], "open_receipts": open_receipts},
    }
    if as_json:
        echo_json(summary)
    else:
        console.print(
            f"DSFinV-K export of {len(closings)} closing(s) (Z_NR {closings[0].z_nr}.."
            f"{closings[-1].z_nr}, {summary['receipts']} receipts) -> {written}",
            highlight=False,
            markup=False,  # a path may hold '[...]'
        )
        if left_out:
            days = ", ".join(str(d) for d in left_out)
            console.print(
                f"not in it: the receipts of {days}, not closed yet ({open_receipts} "
                "receipt(s) open in all; exported after `opentse pos close`)",
                highlight=False,
            )


@dsfinvk_app.command("check")
def check_command(
    export: Path = typer.Argument(..., help="EXPORT.zip or export folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
    tse_exports: list[Path] | None = typer.Option(
        None,
        "--tse-export",
        help="A TSE's TAR export (any vendor) to cross-check the Bons' TSE data with; "
        "repeat it for incremental exports (read as one) or several TSEs.",
    ),
) -> None:
    """Check an export: index.xml, every CSV against it, sums and TSE signatures
    rebuilt from the CSV rows. With --tse-export, also cross-check it against the
    TSE's TAR export: every TSE transaction of the export's registers in its window
    must be a Bon, every Bon's TSE data a transaction of the TAR with the same
    signature, counter, times and processData. Exit 0 ok, 1 errors found, 2 not
    readable."""
    from opentse.formats.dsfinvk.check import check_export_summary

    findings, summary = check_export_summary(export)
    errors = [f for f in findings if f.severity == "error"]
    unreadable = any(f.code in UNREADABLE for f in errors)
    cross = None
    tse_export = " + ".join(str(p) for p in tse_exports or [])
    if tse_exports and not unreadable:
        cross = _cross_check(export, tse_exports)
        if not isinstance(cross, str):
            findings = _superseded_removed(findings, cross.summary)
    if not as_json:  # the check's findings first, whatever the TAR turns out to be
        _print_findings(findings)
        if summary and not unreadable:
            # the export's own words (register ids) and the path: no markup of ours
            console.print(
                f"{export}: {_checked(summary)}", highlight=False, soft_wrap=True, markup=False
            )
        verdict = "NOT READABLE as a DSFinV-K export" if unreadable else _verdict(findings)
        console.print(f"{export}: {verdict}", highlight=False, soft_wrap=True, markup=False)
    if isinstance(cross, str):  # the TAR cannot be read: exit 2
        if not as_json:  # a report kept from stdout must not end on the check's "ok"
            console.print(
                f"cross-check with {tse_export}: NOT DONE, the TSE's export cannot be read "
                f"({cross}): no Bon was compared with it",
                highlight=False,
                soft_wrap=True,
                markup=False,
            )
        if as_json:  # still one JSON object on stdout, saying why
            body = _json_body(findings, errors, summary)
            body["ok"] = False
            body["crosscheck"] = {"tse_export": str(tse_export), "unreadable": cross}
            echo_json(body)
        raise typer.Exit(2)
    cross_errors = [] if cross is None else [f for f in cross.findings if f.severity == "error"]
    if as_json:
        body = _json_body(findings, errors, summary)
        body["ok"] = not errors and not cross_errors
        if cross is not None:
            body["crosscheck"] = {
                "tse_export": str(tse_export),
                "ok": not cross_errors,
                "compared": _compared(cross.summary),
                "errors": len(cross_errors),
                "warnings": _count(cross.findings, "warning"),
                "info": _count(cross.findings, "info"),
                "summary": cross.summary,
                "findings": [_finding_json(f) for f in cross.findings],
            }
        echo_json(body)
    elif cross is not None:
        _print_cross(cross, tse_export)
    if unreadable:
        raise typer.Exit(2)
    if errors or cross_errors:
        raise typer.Exit(1)


#: the check's findings about TSE numbers that say "the TSE's export tells"
TOLD_BY_TAR = frozenset({"W_TSE_TANR_GAP", "I_TSE_TANR_UNCHECKED"})


def _superseded_removed(findings: list[Any], cross_summary: dict[str, Any]) -> list[Any]:
    """The check's findings without the W_TSE_TANR_GAP and I_TSE_TANR_UNCHECKED of a
    TSE the cross-check looked at: they said "the TSE's export tells", and the
    cross-check has told (each number another register's, one of the export's own
    transactions without a Bon or of a closing the export leaves out, or
    W_XC_TANR_NOT_IN_TAR)."""
    told = set(cross_summary.get("numbers_without_bon", {}))
    return [f for f in findings if not (f.code in TOLD_BY_TAR and f.tse_serial in told)]


def _count(findings: list[Any], severity: str) -> int:
    return sum(1 for f in findings if f.severity == severity)


def _json_body(findings: list[Any], errors: list[Any], summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "ok": not errors,
        "errors": len(errors),
        "warnings": _count(findings, "warning"),
        "info": _count(findings, "info"),
        "findings": [_finding_json(f) for f in findings],
        "summary": summary,
    }


def _finding_json(f: Any) -> dict[str, Any]:
    return {
        "code": f.code,
        "severity": f.severity,
        "file": f.file,
        "line": f.line,
        "column": f.column,
        "message": f.message,
    }


def _print_findings(findings: list[Any]) -> None:
    for f in findings:
        colour = {"error": "red", "warning": "yellow"}.get(f.severity, "cyan")
        # on stdout with the summary and verdict, as opentse verify prints its findings:
        # `dsfinvk check EXPORT > report.txt` keeps the whole report
        console.print(f"[{colour}]{escape(str(f))}[/{colour}]", highlight=False, soft_wrap=True)


def _print_cross(cross: Any, tar: Path | str | None) -> None:
    summary = cross.summary
    first, last = summary["window"]
    console.print(
        f"cross-check with {tar}: window {first} .. {last}, clients "
        f"{', '.join(summary['clients']) or '-'}; {summary['tar_transactions_in_scope']} of "
        f"{summary['tar_transactions']} TSE transactions in scope (the others belong to other "
        f"registers, TSEs or times and are not compared), {summary['bons_matched']} of "
        f"{summary['bons_with_tse_data']} Bons with TSE data found in the TAR (each compared "
        "field by field below; the TAR's own signatures are checked by opentse verify)",
        highlight=False,
        soft_wrap=True,
        markup=False,  # client ids from the CSV files, the TAR's path
    )
    from opentse.verify.crosscheck_numbers import explained_in_words

    explained = explained_in_words(summary.get("numbers_without_bon", {}))
    if explained:
        console.print(explained, highlight=False, soft_wrap=True, markup=False)
    _print_findings(cross.findings)
    verdict = _verdict(cross.findings)
    if not _compared(summary) and verdict.startswith("ok"):
        verdict = (
            f"NOTHING COMPARED: none of the export's {summary['bons_with_tse_data']} Bons "
            f"with TSE data and no TSE transaction of its registers' window is in {tar} "
            f"(a TAR of another TSE or period?) {verdict.removeprefix('ok ')}"
        )
    console.print(f"cross-check: {verdict}", highlight=False, soft_wrap=True, markup=False)


def _compared(summary: dict[str, Any]) -> bool:
    """Whether the cross-check compared anything: a Bon found in the TAR or a TAR
    transaction in scope (else the TAR belongs to another TSE, register or time)."""
    return bool(summary["bons_matched"] or summary["tar_transactions_in_scope"])


def _checked(summary: dict[str, Any]) -> str:
    """What was checked, per register: its closings (Z_NR, business days), then the
    Bons and TSE signatures of the whole export."""
    parts = []
    for register in summary["registers"]:
        mine = [c for c in summary["closings"] if c["register"] == register]
        numbers = sorted({c["z_nr"] for c in mine}, key=lambda n: (len(n), n))
        days = sorted({c["business_day"] for c in mine if c["business_day"]})
        if len(mine) == 1:
            what = f"closing Z_NR {numbers[0]}"
        else:
            what = f"{len(mine)} closings, Z_NR {numbers[0]}..{numbers[-1]}"
        if days:
            what += f" ({days[0]})" if len(days) == 1 else f" ({days[0]} .. {days[-1]})"
        parts.append(f"register {register}: {what}")
    parts_text = "; ".join(parts) or "no closing"
    return (
        f"{parts_text}; {summary['bons']} Bons, {summary['bons_with_tse_data']} with TSE "
        f"data, {summary['signatures_verified']} TSE signatures verified"
    )


def _verdict(findings: list[Any]) -> str:
    """The last line an auditor reads: ok, or how many errors and warnings (and
    info findings, which say what was not checked: they change no exit status)."""
    errors, warnings = _count(findings, "error"), _count(findings, "warning")
    info = _count(findings, "info")
    notes = f", {info} info" if info else ""
    if not errors:
        return f"ok ({_counted(warnings, 'warning')}{notes})"
    return f"NOT OK: {_counted(errors, 'error')}, {_counted(warnings, 'warning')}{notes}"


def _counted(count: int, word: str) -> str:
    """``1 error``, ``2 errors``, ``0 warnings``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


#: Above this size (bytes) the TAR is read with a progress bar on a terminal.
BAR_FROM = 2 * 1024 * 1024


def _cross_check(export: Path, tars: list[Path]) -> Any:
    """Read the TAR (a progress bar for big archives, as ``opentse verify`` has) and
    cross-check; for a TAR that cannot be read, the message (printed on stderr),
    which ends the command with exit code 2."""
    from opentse.errors import OpenTSEError
    from opentse.verify.crosscheck_read import cross_check_files

    big = sum(t.stat().st_size for t in tars if t.is_file()) > BAR_FROM
    try:
        if not (big and err_console.is_terminal):
            return cross_check_files(export, tars)
        with logs_bar("reading the TSE export", err_console) as advance:
            return cross_check_files(export, tars, advance)
    except (OSError, OpenTSEError) as exc:
        err_console.print(f"[red]{escape(str(exc))}[/red]", highlight=False, soft_wrap=True)
        return str(exc)


def register(app: typer.Typer) -> None:
    app.add_typer(dsfinvk_app, name="dsfinvk")
