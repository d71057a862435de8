"""The verifier's per-log checks at scale, with exports shaped as auditors get them.

- An export filtered by client has a counter gap after nearly every log, and each
  gap's finding names the first log after it. That file was looked up by a pass over
  all logs per gap (40,000 logs: 23 s in check_counters alone).
- Two overlapping exports hold the same update logs twice; each copy was looked for
  among all the transaction's updates (20,000 updates: 11 s in check_transactions).

Linear means: twice the logs run at most ~2.6 times the lines of Python
(``work_count``), counted, not timed, so a loaded machine cannot fail them.
"""

from __future__ import annotations

from work_count import assert_linear

from opentse.tr03151.fastdecode import TRANSACTION, LogFields
from opentse.tr03151.logtime import TimeFormat
from opentse.verify.archive import LoadedExport, LogEntry
from opentse.verify.counters import check_counters
from opentse.verify.transactions import check_transactions

SERIAL = bytes(range(32))


def _entry(
    counter: int, file: str, operation: str = "finishTransaction", number: int = 0
) -> LogEntry:
    fields = LogFields(
        TRANSACTION, 3, SERIAL, "0.4.0.127.0.7.1.1.4.1.3", counter, TimeFormat.UNIX,
        1_700_000_000 + counter, None, b"s", b"d", operation, "KASSE-1", b"",
        "Kassenbeleg-V1", number or counter, None, None,
    )  # fmt: skip
    return LogEntry(file, file, f"{file}:{counter}".encode(), fields)


def _export(entries: list[LogEntry], sources: tuple[str, ...] = ("client.tar",)) -> LoadedExport:
    export = LoadedExport(list(sources))
    export.logs = entries
    return export


def test_each_gap_names_the_first_log_after_it() -> None:
    """Counters 1, 3, 3 (two different logs), 6: the gaps 2 and 4..5 are reported on
    the first log of 3 and on 6."""
    entries = [_entry(1, "a1"), _entry(3, "a3"), _entry(3, "b3"), _entry(6, "a6")]
    summaries, findings = check_counters(_export(entries))
    assert summaries[SERIAL.hex()].missing_ranges == [[2, 2], [4, 5]]
    gaps = [(f.file, f.message) for f in findings if f.code == "E_COUNTER_GAP"]
    assert [file for file, _ in gaps] == ["a3", "a6"]
    assert "counter(s) 2 missing (1 log(s))" in gaps[0][1]
    assert "counter(s) 4 to 5 missing (2 log(s))" in gaps[1][1]


def _gap_after_every_log(n: int) -> None:
    entries = [_entry(c, f"Sig-{c}.log") for c in range(1, 2 * n, 2)]
    summaries, findings = check_counters(_export(entries))
    gaps = [f for f in findings if f.code == "E_COUNTER_GAP"]
    assert len(gaps) == len(summaries[SERIAL.hex()].missing_ranges) == n - 1
    assert gaps[-1].file == f"Sig-{2 * n - 1}.log"


def test_a_gap_after_every_log_is_found_in_linear_time() -> None:
    _gap_after_every_log(40_000)  # an export of one register out of many
    assert_linear(_gap_after_every_log, 3_000)


def _long_transaction_twice(n: int) -> None:
    one = [_entry(1, "s", "startTransaction", 1)]
    one += [_entry(c, "u", "updateTransaction", 1) for c in range(2, n + 2)]
    one += [_entry(n + 2, "f", "finishTransaction", 1)]
    result = check_transactions(_export([*one, *one], ("a.tar", "b.tar")))
    (row,) = result.rows
    assert len(row.updates) == n and result.started == result.finished == 1
    assert result.findings == []


def test_repeated_updates_of_a_long_transaction_are_one_each_in_linear_time() -> None:
    """One transaction with 20,000 different updates, in both of two overlapping
    exports: each update counts once, its copy not at all, and nothing is an error."""
    _long_transaction_twice(20_000)
    assert_linear(_long_transaction_twice, 2_000)


def test_many_unreadable_logs_explain_their_gaps_in_linear_time() -> None:
    """Every other log cut short: each gap says its one log is there
    but cannot be decoded (the undecodable logs were counted per gap: quadratic)."""
    _every_other_log_cut(40_000)
    assert_linear(_every_other_log_cut, 3_000)


def _every_other_log_cut(n: int) -> None:
    entries = []
    for c in range(1, n + 1):
        if c % 2:
            entries.append(_entry(c, f"Sig-{c}.log"))
        else:
            name = f"Unixt_{1_700_000_000 + c}_Sig-{c}_Log-Tra_No-{c}_Finish_Client-KASSE-1.log"
            entries.append(LogEntry(name, name, b"\x30\x03", None, problem="E_LOG_FORMAT: cut"))
    _, findings = check_counters(_export(entries))
    gaps = [f.message for f in findings if f.code == "E_COUNTER_GAP"]
    assert len(gaps) == n // 2 - 1  # the last log, cut short, leaves no gap after it
    assert all(
        m.endswith("; 1 log file(s) named with these counters cannot be decoded (E_LOG_FORMAT)")
        for m in gaps
    )
