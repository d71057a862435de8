"""Findings: what a check reports instead of raising, so one run lists every problem."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """error: the export/receipt is not what a TSE must produce; warning: suspicious or
    incomplete; info: worth knowing (e.g. an export that starts above counter 1)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation; ``file`` is the archive member (or "" for the whole export),
    ``fields`` names the receipt fields a receipt finding concerns."""

    severity: Severity
    code: str
    message: str
    file: str = ""
    fields: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, str]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "file": self.file,
        }


def span_text(first: int, last: int) -> str:
    """A range of counters or numbers as a person writes it: ``10`` or ``7..9``."""
    return str(first) if first == last else f"{first}..{last}"


def log_words(
    kind: str, operation: str, client_id: str, number: int, counter: int, serial: bytes
) -> str:
    """A log as an auditor names it, from its signed content (a file name can be
    changed): which TSE (serial), register (client id) and transaction."""
    tse = f"TSE {serial.hex()[:16]}..."
    if kind == "transaction":
        step = operation.removesuffix("Transaction").removesuffix("transaction").capitalize()
        return (
            f"the {step} log of transaction {number} (client {client_id!r}, "
            f"signature counter {counter}, {tse})"
        )
    if kind == "system":
        return f"the system log {operation} (signature counter {counter}, {tse})"
    return f"the {kind} log (signature counter {counter}, {tse})"


def error(code: str, message: str, file: str = "", fields: tuple[str, ...] = ()) -> Finding:
    return Finding(Severity.ERROR, code, message, file, fields)


def warning(code: str, message: str, file: str = "", fields: tuple[str, ...] = ()) -> Finding:
    return Finding(Severity.WARNING, code, message, file, fields)


def info(code: str, message: str, file: str = "", fields: tuple[str, ...] = ()) -> Finding:
    return Finding(Severity.INFO, code, message, file, fields)


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)
