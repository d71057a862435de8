"""Numbers without gaps: BON_NR per register, TSE_TANR per TSE.

A register numbers its receipts and a TSE its transactions without gaps, so a number
missing between two of the export's Bons may be a Bon left out. Only the TSE's export
can prove it (``--tse-export``): these are warnings, and numbers that a closing the
export does not hold may have used are said to be unchecked instead (info).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import datetime

from opentse.errors import FormatError
from opentse.formats.dsfinvk.csvwriter import parse_timestamp
from opentse.formats.dsfinvk.findings import CheckState, Row, closing_key


def _exported_closings(check: CheckState) -> dict[str, set[int]]:
    """Each register's Z_NRs in this export (cashpointclosing.csv)."""
    out: dict[str, set[int]] = defaultdict(set)
    for _line, row in check.get("cashpointclosing.csv"):
        z_nr = _number(row["Z_NR"])
        if z_nr is not None:
            out[row["Z_KASSE_ID"]].add(z_nr)
    return out


def _closed_earlier(check: CheckState) -> set[str]:
    """Registers whose last closing in the export (Z_ERSTELLUNG) is earlier than
    another register's: their receipts after it are in a closing the export
    does not hold (a later business day, or not closed yet)."""
    last: dict[str, datetime] = {}
    for _line, row in check.get("cashpointclosing.csv"):
        try:
            created = parse_timestamp(row["Z_ERSTELLUNG"])
        except (FormatError, ValueError):
            continue
        register = row["Z_KASSE_ID"]
        if register not in last or created > last[register]:
            last[register] = created
    end = max(last.values(), default=None)
    return {register for register, created in last.items() if created != end}


def check_bon_numbers(check: CheckState) -> None:
    """A register numbers its receipts without gaps (aborted, training and failed
    ones included), so a BON_NR missing between two of the export's receipts is a
    receipt left out: a warning, since only the TSE's export can prove it
    (``--tse-export``). Only what was exported is looked at: numbers between
    two Bons whose closings have a closing between them that the export does not
    hold (a chosen range, closings left out) are that closing's, no gap.
    Registers with non-numeric BON_NR are not looked at."""
    exported = _exported_closings(check)
    numbered: dict[str, list[tuple[int, int, Row]]] = defaultdict(list)
    for line, row in check.get("transactions.csv"):
        number = _number(row["BON_NR"])
        if number is not None:
            numbered[row["Z_KASSE_ID"]].append((number, line, row))
    for register, rows in numbered.items():
        rows.sort(key=lambda item: (item[0], item[1]))
        for (before, _l, low), (after, line, high) in itertools.pairwise(rows):
            if after <= before + 1:
                continue
            if _closing_left_out(exported[register], low["Z_NR"], high["Z_NR"]):
                continue
            missing = _span(before + 1, after - 1)
            check.add(
                "W_BON_NR_GAP",
                "transactions.csv",
                f"register {register}: receipt number(s) (BON_NR) {missing} missing "
                f"between Bon {before} (BON_ID {low['BON_ID']}, Z_NR {low['Z_NR']}) and "
                f"Bon {after} (BON_ID {high['BON_ID']}, Z_NR {high['Z_NR']}): receipts "
                "left out of the export? The TSE's export tells (--tse-export)",
                line,  # the Bon after the gap
                "BON_NR",
                severity="warning",
            )


def check_tse_numbers(check: CheckState) -> None:
    """The TSE numbers its transactions without gaps, and BON_NR is not signed: a
    Bon left out and the rest renumbered still leaves a TSE_TANR that no Bon has.
    One warning per TSE lists them: other registers on the same TSE and failed
    starts explain such numbers too, the TSE's export tells (``--tse-export``).
    Numbers a closing left out of the export may hold (of any register on that
    TSE, :func:`_left_out_spans`) are that closing's, no gap."""
    serials = {
        (*closing_key(r), r["TSE_ID"]): r["TSE_SERIAL"].lower() for _l, r in check.get("tse.csv")
    }
    exported = _exported_closings(check)
    numbers: dict[str, dict[int, tuple[str, str]]] = defaultdict(dict)
    for _line, row in check.get("transactions_tse.csv"):
        number = _number(row["TSE_TANR"])
        serial = serials.get((*closing_key(row), row["TSE_ID"]))
        if serial and number is not None:
            numbers[serial][number] = (row["Z_KASSE_ID"], row["Z_NR"])
    continued = _closed_earlier(check)
    for serial, present in sorted(numbers.items()):
        ordered = sorted(present)
        explained = _left_out_spans(present, exported, continued)
        holes = [(b + 1, a - 1) for b, a in itertools.pairwise(ordered) if a > b + 1]
        gaps = [gap for low, high in holes for gap in _uncovered(low, high, explained)]
        _unchecked_numbers(check, serial, ordered, holes, explained)
        if not gaps:
            continue
        count = sum(last - first + 1 for first, last in gaps)
        listed = ", ".join(_span(first, last) for first, last in gaps[:20])
        more = f" and {len(gaps) - 20} more ranges" if len(gaps) > 20 else ""
        check.add(
            "W_TSE_TANR_GAP",
            "transactions_tse.csv",
            f"TSE {serial[:16]}...: {count} transaction number(s) between "
            f"{ordered[0]} and {ordered[-1]} have no Bon in this export ({listed}{more}): "
            "other registers on this TSE, failed starts, or Bons left out? The TSE's "
            "export tells (--tse-export)",
            severity="warning",
            tse_serial=serial,
        )


def _unchecked_numbers(
    check: CheckState,
    serial: str,
    ordered: list[int],
    holes: list[tuple[int, int]],
    explained: list[tuple[int, int, str]],
) -> None:
    """I_TSE_TANR_UNCHECKED: the numbers between a TSE's Bons that W_TSE_TANR_GAP
    does not warn of because a closing the export does not hold may have signed
    them. Not checked is not checked: the finding says which numbers, whose
    closings, and that only the TSE's export (``--tse-export``) tells."""
    parts: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for low, high in holes:
        for first, last, whose in _covered(low, high, explained):
            parts[whose].append((first, last))
    if not parts:
        return
    every = _merged(r for ranges in parts.values() for r in ranges)
    count = sum(last - first + 1 for first, last in every)
    groups = []
    for whose, ranges in sorted(parts.items(), key=lambda item: min(item[1])):
        merged = _merged(ranges)
        listed = ", ".join(_span(first, last) for first, last in merged[:20])
        more = f" and {len(merged) - 20} more ranges" if len(merged) > 20 else ""
        groups.append(f"{listed}{more}: {whose}")
    check.add(
        "I_TSE_TANR_UNCHECKED",
        "transactions_tse.csv",
        f"TSE {serial[:16]}...: {count} transaction number(s) between {ordered[0]} and "
        f"{ordered[-1]} have no Bon in this export and were not checked, as closings "
        f"the export does not hold may have signed them ({'; '.join(groups)}); only the "
        "TSE's export tells whether they are those closings' Bons or Bons left out "
        "(--tse-export)",
        severity="info",
        tse_serial=serial,
    )


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}..{last}"


def _number(text: str) -> int | None:
    """A BON_NR, TSE_TANR or Z_NR as a number, None when it is none."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _closing_left_out(exported: set[int], z_low: str, z_high: str) -> bool:
    """True when a closing between Z_NR ``z_low`` and ``z_high`` of one register is
    not in the export: numbers between their Bons may be that closing's."""
    low, high = _number(z_low), _number(z_high)
    if low is None or high is None:
        return False
    low, high = min(low, high), max(low, high)
    between = high - low - 1
    return between > len(exported) or any(z not in exported for z in range(low + 1, high))


def _left_out_spans(
    present: dict[int, tuple[str, str]],
    exported: dict[str, set[int]],
    continued: Collection[str] = (),
) -> list[tuple[int, int, str]]:
    """The TSE_TANRs (first, last, whose) that closings left out of the export may
    hold: a register's transactions come in the order of its closings, so a closing
    Z that the export lacks (between two exported ones, or before the first) signed
    only numbers between the register's last Bon before Z and its first Bon after
    it, on that TSE. A register in ``continued`` (another register's closings in
    the export end later than its own) may have sold on into a closing after its
    last exported one: numbers after its last Bon. ``present`` maps each TSE_TANR
    to its (Z_KASSE_ID, Z_NR); ``whose`` names the register and the closings left
    out, for the finding that says these numbers were not checked."""
    by_register: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for number, (register, z_text) in present.items():
        z_nr = _number(z_text)
        if z_nr is not None:
            by_register[register].append((z_nr, number))
    spans: list[tuple[int, int, str]] = []
    for register, rows in by_register.items():
        closings = exported[register]
        if not closings:
            continue
        rows.sort()
        zs = sorted(closings)
        # a left-out closing lies before the first exported one or between two
        holes = [(zs[0] - 1, f"register {register}, closing(s) before Z_NR {zs[0]}")]
        holes += [
            (low + 1, f"register {register}, closing(s) Z_NR {_span(low + 1, high - 1)}")
            for low, high in itertools.pairwise(zs)
            if high > low + 1
        ]
        for hole, whose in holes:
            if hole < 1:
                continue
            before = [n for z, n in rows if z < hole]
            after = [n for z, n in rows if z > hole]
            first = max(before) + 1 if before else 0
            last = min(after) - 1 if after else first - 1
            if last >= first:
                spans.append((first, last, whose + " (not in the export)"))
        if register in continued and rows:
            whose = f"register {register}, after its last closing in the export (Z_NR {zs[-1]})"
            spans.append((max(n for _z, n in rows) + 1, _NO_END, whose))
    return sorted(spans)


def _covered(
    first: int, last: int, spans: list[tuple[int, int, str]]
) -> Iterable[tuple[int, int, str]]:
    """The parts of ``first..last`` that each span (first, last, whose) covers."""
    for low, high, whose in spans:
        if high >= first and low <= last:
            yield max(low, first), min(high, last), whose


def _merged(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Ranges (first, last) sorted, overlapping or adjacent ones joined."""
    out: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if out and low <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return out


_NO_END = 10**19  # above any TSE_TANR _number reads (at most 18 digits)


def _uncovered(first: int, last: int, spans: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """The parts of ``first..last`` that no span (first, last, whose; sorted) covers."""
    out: list[tuple[int, int]] = []
    for low, high, _whose in spans:
        if high < first or low > last:
            continue
        if low > first:
            out.append((first, low - 1))
        first = max(first, high + 1)
        if first > last:
            return out
    out.append((first, last))
    return out
