"""Log times per serial, in signature-counter order (digest tr03151.md, "Counters and
time"): time never runs backwards except where an updateTime system log sets the clock,
and a TSE keeps one time format for its whole life."""

from __future__ import annotations

from datetime import UTC, datetime

from opentse.tr03151.fastdecode import SYSTEM
from opentse.tr03151.logtime import TimeFormat
from opentse.verify.archive import LoadedExport, LogEntry
from opentse.verify.counters import logs_by_serial
from opentse.verify.findings import Finding, error


def _is_update_time(entry: LogEntry) -> bool:
    fields = entry.fields
    return (
        fields is not None
        and fields.kind == SYSTEM
        and fields.operation_type.lower() == "updatetime"
    )


def check_times(export: LoadedExport) -> list[Finding]:
    findings: list[Finding] = []
    for serial, entries in logs_by_serial(export).items():
        formats: dict[TimeFormat, str] = {}
        previous: LogEntry | None = None
        before = 0
        for entry in entries:
            fields = entry.fields
            if fields is None:
                continue
            if fields.time_format not in formats:
                formats[fields.time_format] = entry.file
            now = fields.unix
            if (
                previous is not None
                and now < before
                and not (_is_update_time(entry) or _is_update_time(previous))
            ):
                findings.append(
                    error(
                        "E_TIME_BACKWARDS",
                        f"log time {datetime.fromtimestamp(now, tz=UTC).isoformat()} is "
                        f"{before - now} s before the previous log's "
                        f"({previous.file}) without an updateTime in between",
                        entry.file,
                    )
                )
            previous = entry
            before = now
        if len(formats) > 1:
            listed = ", ".join(f"{fmt.value} (e.g. {file})" for fmt, file in formats.items())
            findings.append(
                error(
                    "E_TIME_FORMAT_MIXED",
                    f"serial {serial[:16]}... uses more than one time format: {listed}",
                )
            )
    return findings
