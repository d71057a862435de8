"""The HTML report: one self-contained page (no external assets) a person reads.

Summary first, then a timeline of signature counters per serial with the gaps marked
(inline SVG), findings grouped by severity, a per-transaction table and the system
logs with their data named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from opentse.verify.certificates import chain_words
from opentse.verify.findings import Severity, span_text
from opentse.verify.report import VerifyReport
from opentse.verify.transactions import TransactionRow

MAX_TRANSACTION_ROWS = 5000
MAX_FINDINGS_PER_SEVERITY = 2000
_WIDTH = 900.0


@dataclass(frozen=True, slots=True)
class Segment:
    x: float
    width: float
    label: str
    gap: bool


@dataclass(frozen=True, slots=True)
class Timeline:
    serial: str
    first: int
    last: int
    count: int
    segments: list[Segment]
    duplicates: list[int]


def _timeline(
    serial: str, first: int, last: int, count: int, missing: list[list[int]], duplicates: list[int]
) -> Timeline:
    span = max(last - first + 1, 1)

    def x(counter: int) -> float:
        return (counter - first) / span * _WIDTH

    segments: list[Segment] = []
    start = first
    for lo, hi in missing:
        segments.append(
            Segment(x(start), max(x(lo) - x(start), 1.0), span_text(start, lo - 1), False)
        )
        segments.append(
            Segment(x(lo), max(x(hi + 1) - x(lo), 2.0), f"missing {span_text(lo, hi)}", True)
        )
        start = hi + 1
    segments.append(
        Segment(x(start), max(x(last + 1) - x(start), 1.0), span_text(start, last), False)
    )
    return Timeline(serial, first, last, count, segments, duplicates)


def _row(row: TransactionRow) -> dict[str, str]:
    def when(entry: object) -> str:
        msg = getattr(entry, "message", None)
        # isoformat, not strftime: glibc's %Y does not pad a year before 1000
        return msg.log_time.as_datetime().isoformat(sep=" ")[:19] if msg else ""

    def counter(entry: object) -> str:
        msg = getattr(entry, "message", None)
        return str(msg.signature_counter) if msg else ""

    return {
        "serial": row.serial,
        "number": str(row.number),
        "client": row.client_id,
        "process_type": row.process_type,
        "start": when(row.start),
        "finish": when(row.finish),
        "counters": " / ".join(
            c
            for c in (counter(row.start), *(counter(u) for u in row.updates), counter(row.finish))
            if c
        ),
        "updates": str(len(row.updates)),
        "state": row.state,
    }


def render_html(report: VerifyReport) -> str:
    env = Environment(
        loader=PackageLoader("opentse.verify", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    data = report.to_json()
    timelines = [
        _timeline(
            serial,
            summary["first_counter"],
            summary["last_counter"],
            summary["count"],
            summary["missing_ranges"],
            summary["duplicates"],
        )
        for serial, summary in data["serial_numbers"].items()
    ]
    rows = [_row(r) for r in report.transactions.rows[:MAX_TRANSACTION_ROWS]]
    groups = [
        (severity.value, report.by_severity(severity))
        for severity in (Severity.ERROR, Severity.WARNING, Severity.INFO)
    ]
    return env.get_template("report.html").render(
        report=data,
        sources=[Path(s).name for s in report.export.sources],
        infos=report.export.infos,
        timelines=timelines,
        width=_WIDTH,
        groups=groups,
        rows=rows,
        total_rows=len(report.transactions.rows),
        max_findings=MAX_FINDINGS_PER_SEVERITY,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        chain=chain_words(report.certificates),
        verdict=report.verdict(),
        system_logs=report.system_logs,
    )


def write_html(report: VerifyReport, path: Path) -> None:
    path.write_text(render_html(report), encoding="utf-8")
