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


def error(code: str, message: str, file: str = "", fields: tuple[str, ...] = ()) -> Finding:
    return Finding(Severity.ERROR, code, message, file, fields)


def warning(code: str, message: str, file: str = "", fields: tuple[str, ...] = ()) -> Finding:
    return Finding(Severity.WARNING, code, message, file, fields)


def info(code: str, message: str, file: str = "", fields: tuple[str, ...] = ()) -> Finding:
    return Finding(Severity.INFO, code, message, file, fields)


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)
