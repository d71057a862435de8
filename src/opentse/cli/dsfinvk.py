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

from opentse.cli.common import cli_errors, console, echo_json, err_console, parse_day
from opentse.errors import FormatError, ProtocolError

dsfinvk_app = typer.Typer(
    help="DSFinV-K 2.4 export of closed business days, and its checker.", no_args_is_help=True
)

#: Findings that mean "this is no readable export at all" (exit code 2).
UNREADABLE = frozenset({"E_EXPORT_MISSING", "E_EXPORT_ZIP", "E_INDEX_MISSING", "E_INDEX_XML"})


def _day(text: str | None, option: str) -> date | None:
    return None if text is None else parse_day(text, option, "E_DSFINVK_DATE")


def select_closings(books: Any, first: date | None, last: date | None) -> list[Any]:
    """The closings of [first, last]; refuses open (never closed) days in the range and
    an empty range, with messages that name the days."""
    if first is not None and last is not None and first > last:
        raise ProtocolError(f"--from {first} is after --to {last}", code="E_DSFINVK_DATE")
    open_days = [
        d
        for d in books.open_days()
        if (first is None or d >= first) and (last is None or d <= last)
    ]
    if open_days:
        days = ", ".join(d.isoformat() for d in open_days)
        raise ProtocolError(
            f"receipts of {days} were never closed: run `opentse pos close` first "
            "(or choose a range without these days)",
            code="E_DSFINVK_NOT_CLOSED",
        )
    closed = books.closed_days(first, last)
    if not closed:
        span = f"{first or 'the beginning'} .. {last or 'today'}"
        known = [d.closing.business_day for d in books.closed_days()]
        hint = f"; closed days: {known[0]} .. {known[-1]}" if known else "; nothing was closed yet"
        raise FormatError(f"no closing in {span}{hint}", code="E_DSFINVK_EMPTY")
    return [d.closing for d in closed]


@dsfinvk_app.command("export")
def export_command(
    out: Path = typer.Argument(..., help="OUT.zip (or a new, empty folder)."),
    register_id: str = typer.Option(
        ..., "--register", help="The register (its serial = TSE client id, as in pos --client)."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Data folder of the embedded TSE the register used."
    ),
    journal: Path | None = typer.Option(None, "--journal", help="The register's own file."),
    first: str | None = typer.Option(None, "--from", help="First business day (YYYY-MM-DD)."),
    last: str | None = typer.Option(None, "--to", help="Last business day (YYYY-MM-DD)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Write index.xml, the GDPdU DTD and the 20 CSV files, one row set per closing."""
    from opentse.cli.pos import journal_path
    from opentse.formats.dsfinvk.export import write_export
    from opentse.register.books import Books

    with cli_errors():
        first_day, last_day = _day(first, "--from"), _day(last, "--to")
        path = journal_path(journal, register_id, data)
        if not path.is_file():
            raise ProtocolError(
                f"no books of register {register_id!r} at {path}", code="E_DSFINVK_NO_BOOKS"
            )
        books = Books(path)
        try:
            closings = select_closings(books, first_day, last_day)
        finally:
            books.close_file()
        written = write_export(closings, out)
    summary = {
        "export": str(written),
        "closings": [c.z_nr for c in closings],
        "business_days": [
            None if c.business_day is None else str(c.business_day) for c in closings
        ],
        "receipts": sum(len(c.receipts) for c in closings),
    }
    if as_json:
        echo_json(summary)
    else:
        console.print(
            f"DSFinV-K export of {len(closings)} closing(s) (Z_NR {closings[0].z_nr}.."
            f"{closings[-1].z_nr}, {summary['receipts']} receipts) -> {written}",
            highlight=False,
        )


@dsfinvk_app.command("check")
def check_command(
    export: Path = typer.Argument(..., help="EXPORT.zip or export folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
) -> None:
    """Check an export: index.xml, every CSV against it, sums and TSE signatures
    rebuilt from the CSV rows. Exit 0 ok, 1 errors found, 2 not readable."""
    from opentse.formats.dsfinvk.check import check_export

    findings = check_export(export)
    errors = [f for f in findings if f.severity == "error"]
    unreadable = any(f.code in UNREADABLE for f in errors)
    if as_json:
        echo_json(
            {
                "ok": not errors,
                "errors": len(errors),
                "warnings": len(findings) - len(errors),
                "findings": [
                    {
                        "code": f.code,
                        "severity": f.severity,
                        "file": f.file,
                        "line": f.line,
                        "column": f.column,
                        "message": f.message,
                    }
                    for f in findings
                ],
            }
        )
    else:
        for f in findings:
            colour = "red" if f.severity == "error" else "yellow"
            err_console.print(f"[{colour}]{f}[/{colour}]", highlight=False, soft_wrap=True)
        if not errors:
            console.print(f"{export}: ok ({len(findings)} warnings)", highlight=False)
    if unreadable:
        raise typer.Exit(2)
    if errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(dsfinvk_app, name="dsfinvk")
