"""Log times per serial, in signature-counter order (digest tr03151.md, "Counters and
time"): time never runs backwards except where an updateTime system log sets the clock,
and a TSE keeps one time format for its whole life."""

from __future__ import annotations

from opentse.tr03151.logmessage import SystemLogData
from opentse.verify.archive import LoadedExport, LogEntry
from opentse.verify.counters import logs_by_serial
from opentse.verify.findings import Finding, error


def _is_update_time(entry: LogEntry) -> bool:
    msg = entry.message
    return (
        msg is not None
        and isinstance(msg.certified, SystemLogData)
        and msg.certified.operation_type.lower() == "updatetime"
    )


def check_times(export: LoadedExport) -> list[Finding]:
    findings: list[Finding] = []
    for serial, entries in logs_by_serial(export).items():
        formats: dict[str, str] = {}
        previous: LogEntry | None = None
        for entry in entries:
            msg = entry.message
            if msg is None:
                continue
            formats.setdefault(msg.log_time.format.value, entry.file)
            if previous is not None and previous.message is not None:
                before = previous.message.log_time.unix
                now = msg.log_time.unix
                if now < before and not (_is_update_time(entry) or _is_update_time(previous)):
                    findings.append(
                        error(
                            "E_TIME_BACKWARDS",
                            f"log time {msg.log_time.as_datetime().isoformat()} is "
                            f"{before - now} s before the previous log's "
                            f"({previous.file}) without an updateTime in between",
                            entry.file,
                        )
                    )
            previous = entry
        if len(formats) > 1:
            listed = ", ".join(f"{fmt} (e.g. {file})" for fmt, file in formats.items())
            findings.append(
                error(
                    "E_TIME_FORMAT_MIXED",
                    f"serial {serial[:16]}... uses more than one time format: {listed}",
                )
            )
    return findings
