"""``opentse export``: TR-03151 TAR export with the exportData filters."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from opentse.cli.common import (
    DATA_OPTION,
    JSON_OPTION,
    check_output_file,
    cli_errors,
    console,
    echo_json,
    installation,
    pairs,
    parse_date,
)
from opentse.engine.export import MAX_RECORDS, ExportFilter
from opentse.errors import ProtocolError


def export_command(
    out: Path = typer.Argument(..., help="The TAR file to write."),
    tss: str = typer.Option(..., "--tss", help="Id of the TSE."),
    client: str | None = typer.Option(None, "--client", help="Only this client's transactions."),
    tx: int | None = typer.Option(None, "--tx", help="One transaction number."),
    from_tx: int | None = typer.Option(None, "--from-tx"),
    to_tx: int | None = typer.Option(None, "--to-tx"),
    from_date: str | None = typer.Option(None, "--from-date", help="ISO 8601 (UTC), inclusive."),
    to_date: str | None = typer.Option(None, "--to-date", help="ISO 8601 (UTC), inclusive."),
    from_sig: int | None = typer.Option(None, "--from-sig"),
    to_sig: int | None = typer.Option(None, "--to-sig"),
    max_records: int = typer.Option(MAX_RECORDS, "--max-records"),
    data: Path = DATA_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Export logs, certificates and info.csv as a TR-03151 TAR archive."""
    flt = ExportFilter(
        client_id=client,
        transaction_number=tx,
        start_transaction_number=from_tx,
        end_transaction_number=to_tx,
        start_date=parse_date(from_date),
        end_date=parse_date(to_date, end=True),
        start_signature_counter=from_sig,
        end_signature_counter=to_sig,
        maximum_number_records=max_records,
    )
    tmp = out.with_name(f".{out.name}.part")
    with cli_errors():
        check_output_file(out, "OUT", "E_EXPORT_OUTPUT")
    with installation(data) as inst, cli_errors():
        try:
            with tmp.open("wb") as fh:
                if as_json:
                    summary = inst.service.export(tss, fh, flt)
                else:
                    summary = _with_progress(inst, tss, fh, flt)
            os.replace(tmp, out)
        except OSError as exc:
            raise ProtocolError(f"cannot write {out}: {exc}", code="E_EXPORT_OUTPUT") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    result = {
        "tss_id": tss,
        "file": str(out),
        "records": summary.records,
        "first_signature_counter": summary.first_signature_counter,
        "last_signature_counter": summary.last_signature_counter,
        "bytes": summary.bytes_written,
        "certificates": list(summary.certificate_files),
        "export_log_signature_counter": (
            summary.export_log.signature_counter if summary.export_log else None
        ),
    }
    if as_json:
        echo_json(result)
    else:
        pairs("Export", result)


def _with_progress(inst: Any, tss: str, fh: Any, flt: ExportFilter) -> Any:
    with Progress(
        TextColumn("exporting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("export", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return inst.service.export(tss, fh, flt, progress=report)


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
