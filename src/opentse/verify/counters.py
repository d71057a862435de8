"""Signature counter sequence per serial number (digest tr03151.md, "Counters and time").

The counter is +1 for every signature of any log type, the first log has 1. So within
one serial every number between the first and the last must be present exactly once;
an export may start above 1 (filtered or incremental exports), which is only noted.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from opentse.verify.archive import LoadedExport, LogEntry
from opentse.verify.findings import Finding, error, info, log_words, span_text, warning


@dataclass(slots=True)
class SerialSummary:
    first_counter: int
    last_counter: int
    count: int
    missing_ranges: list[list[int]] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    #: the period the logs cover (Unix seconds of the earliest and latest log time):
    #: an auditor compares it with the period asked for (a tail cut off leaves no gap)
    first_time: int | None = None
    last_time: int | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "first_counter": self.first_counter,
            "last_counter": self.last_counter,
            "count": self.count,
            "missing_ranges": [list(r) for r in self.missing_ranges],
            "duplicates": list(self.duplicates),
            "first_time": _iso(self.first_time),
            "last_time": _iso(self.last_time),
        }


def _iso(unix: int | None) -> str | None:
    if unix is None:
        return None
    try:
        return datetime.fromtimestamp(unix, UTC).isoformat()
    except (OverflowError, OSError, ValueError):  # a log time no calendar holds
        return None


def logs_by_serial(export: LoadedExport) -> dict[str, list[LogEntry]]:
    """Decoded logs per serial (hex), sorted by signature counter (cached on the export:
    the checks run after loading, and do not change the logs)."""
    if export.by_serial is not None:
        return export.by_serial
    groups: dict[bytes, list[LogEntry]] = defaultdict(list)
    serial: bytes | None = None
    group: list[LogEntry] = []
    for entry in export.logs:
        fields = entry.fields
        if fields is not None:
            if fields.serial_number is not serial:  # mostly one object for a whole run
                serial = fields.serial_number
                group = groups[serial]
            group.append(entry)
    for entries in groups.values():
        counters = [e.fields.signature_counter for e in entries if e.fields]
        if not all(map(operator.lt, counters, counters[1:])):  # archives are mostly in order
            entries.sort(key=lambda e: (e.fields.signature_counter if e.fields else 0, e.file))
    export.by_serial = {serial.hex(): entries for serial, entries in groups.items()}
    return export.by_serial


def _words(entry: LogEntry) -> str:
    """A log beside a gap, named from its signed content (log_words)."""
    f = entry.fields
    if f is None:
        return entry.file
    return log_words(
        f.kind, f.operation_type, f.client_id, f.transaction_number, f.signature_counter,
        f.serial_number,
    )  # fmt: skip


def _filtered_note(serial: str, entries: list[LogEntry]) -> list[Finding]:
    """Counter gaps are what an export filtered by client (exportData with a clientId)
    looks like: only that client's transaction logs, no system log. The gaps stay
    errors (deleted logs look the same); this says what to ask for."""
    kinds = {e.fields.kind for e in entries if e.fields is not None}
    clients = {e.fields.client_id for e in entries if e.fields is not None}
    if kinds != {"transaction"} or len(clients) != 1:
        return []
    (client,) = clients
    return [
        info(
            "I_EXPORT_LOOKS_FILTERED",
            f"serial {serial[:16]}...: the export holds transaction logs of client "
            f"{client!r} only and no system log, as an export filtered by client does; "
            "there the counter gaps are other clients' and system logs, but a deleted log "
            "looks the same: ask for the TSE's complete export",
            entries[0].file,
        )
    ]


def _repeats(
    serial: str,
    entries: list[LogEntry],
    seen: Counter[int],
    summary: SerialSummary,
    findings: list[Finding],
) -> None:
    """Counters that occur more than once: a different log under one counter is an
    error; identical copies (overlapping exports verified together) are one warning
    per run of consecutive counters, not one per log. Entries are grouped by counter
    once (a look through all entries per repeated counter is quadratic: two copies
    of a 20,000-log export took 50 s)."""
    by_counter: dict[int, list[LogEntry]] = defaultdict(list)
    for entry in entries:
        if entry.fields is not None and seen[entry.fields.signature_counter] > 1:
            by_counter[entry.fields.signature_counter].append(entry)
    runs: list[list[int]] = []  # [first, last, most copies] of identical copies
    files: list[str] = []  # a file of each run's first counter
    for counter in sorted(by_counter):
        same = by_counter[counter]
        summary.duplicates.append(counter)
        if len({e.data for e in same}) > 1:
            findings.append(
                error(
                    "E_COUNTER_DUPLICATE",
                    f"serial {serial[:16]}...: signature counter {counter} occurs "
                    f"{len(same)} times with different content: " + ", ".join(e.file for e in same),
                    same[-1].file,
                )
            )
            continue
        if runs and runs[-1][1] == counter - 1:
            runs[-1][1] = counter
            runs[-1][2] = max(runs[-1][2], len(same))
        else:
            runs.append([counter, counter, len(same)])
            files.append(same[-1].file)
    for (first, last, times), file in zip(runs, files, strict=True):
        counters = span_text(first, last)
        findings.append(
            warning(
                "W_LOG_REPEATED",
                f"serial {serial[:16]}...: signature counter(s) {counters} occur up to "
                f"{times} times (identical copies: overlapping exports verified together)",
                file,
            )
        )


def _archive_labels(export: LoadedExport) -> list[str]:
    """The prefixes findings put before a member's name: ``NAME.tar:`` for each
    archive when several are verified together (archive.member_label), else none;
    longest first, so that one archive's name that begins another's is not taken
    for it."""
    if len(export.sources) < 2:
        return [""]
    return sorted({f"{Path(s).name}:" for s in export.sources}, key=len, reverse=True)


def _archive(file: str, labels: list[str]) -> str:
    return next((label for label in labels if file.startswith(label)), "")


def _claimed_counters(export: LoadedExport) -> dict[str, set[int]]:
    """Per archive label, the signature counters undecodable logs have in their names."""
    labels = _archive_labels(export)
    claimed: dict[str, set[int]] = defaultdict(set)
    for e in export.logs:
        if e.fields is None and e.name is not None:
            claimed[_archive(e.file, labels)].add(e.name.signature_counter)
    return claimed


def _archives_of(export: LoadedExport, entries: list[LogEntry]) -> set[str]:
    labels = _archive_labels(export)
    return {_archive(e.file, labels) for e in entries}


def _gap_cause(export: LoadedExport, before: LogEntry, after: LogEntry) -> str:
    """Why logs may be missing: with several archives whose logs border the gap from
    different archives, no archive holds them (an export between incremental ones
    missing); else removed, or a filtered export."""
    labels = _archive_labels(export)
    first, second = _archive(before.file, labels), _archive(after.file, labels)
    if first and second and first != second:
        return (
            f"these logs are in none of the archives: the log before the gap is in "
            f"{first[:-1]}, the one after it in {second[:-1]} (an export between them is "
            "missing, or these logs were removed: ask for the export that holds them, or "
            "the TSE's complete export)"
        )
    return (
        "these logs are not in the export (removed from it, or an export of one client "
        "or period: ask for the TSE's complete export)"
    )


def check_counters(export: LoadedExport) -> tuple[dict[str, SerialSummary], list[Finding]]:
    findings: list[Finding] = []
    summaries: dict[str, SerialSummary] = {}
    # counters that undecodable logs claim in their file names, per archive: a gap
    # they fill is there, but cannot be read (E_LOG_FORMAT), which the gap's message
    # says; only for a serial whose logs come from the same archive (exports of
    # several TSEs verified together each count from 1)
    claimed = _claimed_counters(export)
    for serial, entries in logs_by_serial(export).items():
        counters = [e.fields.signature_counter for e in entries if e.fields]
        # mostly strictly increasing (by_serial sorted them): no repeat to count
        increasing = all(map(operator.lt, counters, counters[1:]))
        seen = Counter[int]() if increasing else Counter(counters)
        unique = counters if increasing else sorted(seen)
        summary = SerialSummary(unique[0], unique[-1], len(counters))
        times = [e.fields.unix for e in entries if e.fields]
        summary.first_time, summary.last_time = min(times), max(times)
        # the common case, no gap and no repeat, needs no look at each counter
        gapless = unique[-1] - unique[0] + 1 == len(unique)
        # the counters undecodable logs of this serial's archives claim, sorted (when
        # there is a gap to explain): counted per gap by bisection
        unreadable_counters: list[int] | None = None
        # the file each gap is reported on (the first log after it), found once: a look
        # through all logs per gap was quadratic, and an export filtered by client has
        # a gap after nearly every log (40,000 logs: 23 s)
        first_entry: dict[int, LogEntry] = {}
        for entry in () if gapless else entries:
            if entry.fields:
                first_entry.setdefault(entry.fields.signature_counter, entry)
        for before, after in () if gapless else itertools.pairwise(unique):
            if after > before + 1:
                summary.missing_ranges.append([before + 1, after - 1])
                span = f"{before + 1}" if after == before + 2 else f"{before + 1} to {after - 1}"
                file = first_entry[after].file
                if unreadable_counters is None:
                    archives = _archives_of(export, entries) if claimed else set()
                    unreadable_counters = sorted(c for a in archives for c in claimed.get(a, ()))
                unreadable = bisect.bisect_left(unreadable_counters, after) - bisect.bisect_right(
                    unreadable_counters, before
                )
                note = (
                    f"; {unreadable} log file(s) named with these counters cannot be "
                    "decoded (E_LOG_FORMAT)"
                    if unreadable
                    else ""
                )
                findings.append(
                    error(
                        "E_COUNTER_GAP",
                        f"serial {serial[:16]}...: signature counter(s) {span} missing "
                        f"({after - before - 1} log(s)) between {_words(first_entry[before])} "
                        f"and {_words(first_entry[after])}: the TSE signs every log with the "
                        "next counter, so "
                        + _gap_cause(export, first_entry[before], first_entry[after])
                        + note,
                        file,
                    )
                )
        if not increasing:
            _repeats(serial, entries, seen, summary, findings)
        if summary.missing_ranges:
            findings.extend(_filtered_note(serial, entries))
        if summary.first_counter > 1:
            findings.append(
                info(
                    "I_EXPORT_STARTS_LATER",
                    f"serial {serial[:16]}...: the export starts at signature counter "
                    f"{summary.first_counter}, not 1 (a partial or incremental export)",
                    entries[0].file,
                )
            )
        summaries[serial] = summary
    return summaries, findings
