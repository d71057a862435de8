"""The export's system logs as an auditor reads them: per TSE in signature-counter
order, each with its operation and its data named (``tr03151.sysdata.describe_system_data``:
version 2 systemOperationData of the standard operations, version 3 eventOrigin,
eventTriggeredByUser and eventData). Data that cannot be read is a warning, never a
silent gap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opentse.errors import FormatError
from opentse.tr03151.fastdecode import SYSTEM
from opentse.tr03151.sysdata import describe_system_data
from opentse.verify.archive import LoadedExport
from opentse.verify.counters import logs_by_serial
from opentse.verify.findings import Finding, log_words, warning

#: At most this many system logs are listed (JSON, HTML); all are read and counted.
MAX_SYSTEM_LOGS = 1000


@dataclass(frozen=True, slots=True)
class SystemLogRow:
    """One system log: ``fields`` its data as (name, value in words)."""

    file: str
    serial: str
    counter: int
    time: str
    operation: str
    version: int
    fields: tuple[tuple[str, str], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "serial": self.serial,
            "counter": self.counter,
            "time": self.time,
            "operation": self.operation,
            "version": self.version,
            "fields": [{"name": name, "value": value} for name, value in self.fields],
        }

    def words(self) -> str:
        """``name value; name value`` or ``(no data)``."""
        return "; ".join(f"{name} {value}" for name, value in self.fields) or "(no data)"


@dataclass(slots=True)
class SystemLogResult:
    count: int
    rows: list[SystemLogRow]
    findings: list[Finding]

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "logs": [row.to_json() for row in self.rows]}


def _time(unix: int) -> str:
    try:
        return datetime.fromtimestamp(unix, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return str(unix)


def check_system_logs(export: LoadedExport) -> SystemLogResult:
    """Every system log read and counted, the first ``MAX_SYSTEM_LOGS`` kept as rows;
    a log whose data cannot be read is W_SYSTEM_DATA_UNREADABLE naming it and why."""
    count = 0
    rows: list[SystemLogRow] = []
    findings: list[Finding] = []
    for serial, entries in logs_by_serial(export).items():
        for entry in entries:
            fields = entry.fields
            if fields is None or fields.kind != SYSTEM:
                continue
            count += 1
            operation = fields.operation_type
            try:
                described = describe_system_data(
                    operation, fields.process_data, fields.version, fields.time_format
                )
            except FormatError as exc:
                what = log_words("system", operation, "", 0, fields.signature_counter,
                                 fields.serial_number)  # fmt: skip
                part = "eventOrigin .. eventData" if fields.version >= 3 else "systemOperationData"
                findings.append(
                    warning(
                        "W_SYSTEM_DATA_UNREADABLE",
                        f"the {part} of {what} cannot be read ({exc.message}); its signature "
                        "covers it as it stands (see the signature findings)",
                        entry.file,
                    )
                )
                described = [("unreadable", exc.message)]
            if len(rows) < MAX_SYSTEM_LOGS:
                rows.append(
                    SystemLogRow(
                        entry.file,
                        serial,
                        fields.signature_counter,
                        _time(fields.unix),
                        operation,
                        fields.version,
                        tuple(described),
                    )
                )
    return SystemLogResult(count, rows, findings)
