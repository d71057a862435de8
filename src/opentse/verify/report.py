"""Run every export check and build the report (the JSON object of ``verify --json``).

Each check lives in its own module and returns findings instead of raising; this
module only wires them together and shapes the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from opentse.verify.archive import LoadedExport, bulk, load_exports
from opentse.verify.certificates import CertificateResult, check_certificates
from opentse.verify.counters import SerialSummary, check_counters
from opentse.verify.findings import Finding, Severity
from opentse.verify.names import check_info, check_names
from opentse.verify.receipt import check_finish_logs
from opentse.verify.signatures import SignatureResult, check_signatures
from opentse.verify.systemlogs import SystemLogResult, check_system_logs
from opentse.verify.times import check_times
from opentse.verify.transactions import TransactionResult, check_transactions

_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(slots=True)
class VerifyReport:
    """The outcome of verifying one or more archives together."""

    export: LoadedExport
    signatures: SignatureResult
    serials: dict[str, SerialSummary]
    transactions: TransactionResult
    certificates: CertificateResult
    findings: list[Finding] = field(default_factory=list)
    system_logs: SystemLogResult = field(default_factory=lambda: SystemLogResult(0, [], []))

    @property
    def ok(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)

    @property
    def log_messages(self) -> int:
        return len(self.export.logs)

    def by_severity(self, severity: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity is severity]

    def verdict(self) -> str:
        """The last line of the text report: OK or NOT OK with the count of each
        severity (the words of ``dsfinvk check``: ``NOT OK: 1 error, 2 warnings``)."""
        errors, warnings, notes = (
            len(self.by_severity(s)) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO)
        )
        counts = f"{_counted(warnings, 'warning')}" + (f", {notes} info" if notes else "")
        if not errors:
            return f"OK: no errors ({counts})"
        return f"NOT OK: {_counted(errors, 'error')}, {counts}"

    def to_json(self) -> dict[str, Any]:
        """Exactly the object documented for ``opentse verify --json``."""
        return {
            "ok": self.ok,
            "log_messages": self.log_messages,
            "valid_signatures": len(self.signatures.valid),
            "invalid_signatures": sorted(self.signatures.invalid),
            "parse_errors": sorted(self.export.parse_errors),
            "serial_numbers": {s: v.to_json() for s, v in sorted(self.serials.items())},
            "transactions": {
                "started": self.transactions.started,
                "finished": self.transactions.finished,
                "open": sorted(self.transactions.open),
            },
            "certificates": {
                "count": self.certificates.count,
                "name_mismatches": sorted(self.certificates.name_mismatches),
                "chain": self.certificates.chain,
            },
            "findings": [f.to_json() for f in self.findings],
            # which TSE(s), in their own words: each info.csv (description,
            # manufacturer, version) with its file
            "info": [{"file": label, **info} for label, info in self.export.infos],
            # added later, so after the keys above: how many findings of each
            # severity, as dsfinvk check counts them ("info" is taken: info.csv above)
            "errors": len(self.by_severity(Severity.ERROR)),
            "warnings": len(self.by_severity(Severity.WARNING)),
            "info_findings": len(self.by_severity(Severity.INFO)),
            # added later: every system log with its data named (the first
            # MAX_SYSTEM_LOGS of them; "count" counts all)
            "system_logs": self.system_logs.to_json(),
        }


def _counted(count: int, word: str) -> str:
    """``1 error``, ``2 errors``, ``0 warnings``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def verify_loaded(
    export: LoadedExport, *, trust: Sequence[x509.Certificate] | None = None
) -> VerifyReport:
    """All checks over an already loaded (decoded, signature-checked) export."""
    with bulk():
        return _verify_loaded(export, trust)


def _verify_loaded(export: LoadedExport, trust: Sequence[x509.Certificate] | None) -> VerifyReport:
    # every check but the signatures' first: the workers may still be
    # verifying (load_exports(settle=False)), and these need only decoded logs
    try:
        serials, counter_findings = check_counters(export)
        transactions = check_transactions(export)
        certificates = check_certificates(export, trust)
        times = check_times(export)
        names = check_names(export)
        system_logs = check_system_logs(export)
        finish_logs = check_finish_logs(export)
    finally:
        export.settle()
    signatures = check_signatures(export)
    findings = [
        *export.findings,
        *check_info(export),
        *signatures.findings,
        *certificates.findings,
        *counter_findings,
        *transactions.findings,
        *times,
        *names,
        *system_logs.findings,
        *finish_logs,
    ]
    findings.sort(key=lambda f: _SEVERITY_ORDER[f.severity])
    return VerifyReport(
        export, signatures, serials, transactions, certificates, findings, system_logs
    )


def verify_exports(
    paths: Iterable[Path | str],
    *,
    trust: Sequence[x509.Certificate] | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Read and verify one or more TAR exports as one pool of logs.

    Raises ``UnreadableExportError`` only when an input is not a TAR archive at all.
    """
    export = load_exports(
        (Path(p) for p in paths), workers=workers, progress=progress, settle=False
    )
    return verify_loaded(export, trust=trust)
