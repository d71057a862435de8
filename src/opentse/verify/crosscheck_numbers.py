"""TSE transaction numbers without a Bon, as the TSE's TAR explains them.

``dsfinvk check`` alone can only warn that a TSE_TANR between two Bons of a TSE has
no Bon (W_TSE_TANR_GAP): another register on the same TSE, a failed start or a Bon
left out all leave one, and only the TSE's export tells them apart. With the TAR
at hand the cross-check does tell: a number that is a transaction of a client id
that is not one of the export's registers is that register's (named, no finding);
one of the export's own client ids is compared by the cross-check itself
(E_XC_TSE_NOT_IN_DSFINVK, or a closing the export leaves out); a number the TAR
has no log of stays a warning, W_XC_TANR_NOT_IN_TAR: a failed start uses a number
and signs nothing (digest tr03151.md, "Counters and time"), or the TAR lacks logs.
Only a number inside the TAR's own range of that TSE (its first to its last
transaction number) can be missing from it: one before or after it lies outside the
export (a TAR filtered by number range or period, the exportData filters), cannot be
told from the TAR at hand, and is the info finding I_XC_TANR_OUTSIDE_TAR.
Pure: records in, summary and findings out."""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from opentse.formats.dsfinvk.check import Finding

if TYPE_CHECKING:  # crosscheck calls this module
    from opentse.verify.crosscheck import BonTse, TseTransaction

NOT_IN_TAR = "W_XC_TANR_NOT_IN_TAR"
OUTSIDE_TAR = "I_XC_TANR_OUTSIDE_TAR"
#: ranges listed in a message or the summary, at most
LISTED = 20


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}..{last}"


def _ranges(numbers: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted numbers as runs (first, last)."""
    out: list[tuple[int, int]] = []
    for number in sorted(numbers):
        if out and number == out[-1][1] + 1:
            out[-1] = (out[-1][0], number)
        else:
            out.append((number, number))
    return out


def _listed(ranges: list[tuple[int, int]]) -> list[str]:
    shown = [_span(first, last) for first, last in ranges[:LISTED]]
    if len(ranges) > LISTED:
        shown.append(f"and {len(ranges) - LISTED} more ranges")
    return shown


def _split(
    ranges: list[tuple[int, int]], low: int, high: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Ranges (first, last) as their parts inside ``low..high`` and outside it."""
    inside: list[tuple[int, int]] = []
    outside: list[tuple[int, int]] = []
    for first, last in ranges:
        if first < low:
            outside.append((first, min(last, low - 1)))
        if last >= low and first <= high:
            inside.append((max(first, low), min(last, high)))
        if last > high:
            outside.append((max(first, high + 1), last))
    return inside, sorted(outside)


def _count(ranges: list[tuple[int, int]]) -> int:
    return sum(last - first + 1 for first, last in ranges)


def numbers_without_bon(
    transactions: Mapping[tuple[str, int], TseTransaction],
    bons: Iterable[BonTse],
    clients: set[str],
    tar: str,
) -> tuple[dict[str, dict[str, object]], list[Finding]]:
    """Per TSE serial of the TAR that Bons name (every one, so a caller knows which
    TSEs were looked at): the numbers between its first and
    last Bon that no Bon has, as ``{"other_clients": {client: [ranges]},
    "not_in_tar": [ranges], "outside_tar": [ranges]}``, a W_XC_TANR_NOT_IN_TAR per
    serial with numbers inside the TAR's range of that serial that the TAR does not
    hold, and an I_XC_TANR_OUTSIDE_TAR per serial with numbers before its first or
    after its last transaction (the TAR cannot hold them: a filtered export). Numbers
    of the export's own ``clients`` are left to the cross-check's comparison."""
    tar_numbers: dict[str, list[int]] = defaultdict(list)
    for serial, number in transactions:
        tar_numbers[serial].append(number)
    present: dict[str, set[int]] = defaultdict(set)
    for bon in bons:
        if bon.serial in tar_numbers:
            present[bon.serial].add(bon.number)
    summary: dict[str, dict[str, object]] = {}
    findings: list[Finding] = []
    for serial, numbers in sorted(present.items()):
        held = sorted(tar_numbers[serial])
        other: dict[str, list[int]] = defaultdict(list)
        absent: list[tuple[int, int]] = []
        for before, after in itertools.pairwise(sorted(numbers)):
            if after <= before + 1:
                continue
            low = bisect.bisect_right(held, before)
            high = bisect.bisect_left(held, after)
            expected = before + 1
            for number in held[low:high]:
                if number > expected:
                    absent.append((expected, number - 1))
                expected = number + 1
                client = transactions[serial, number].client_id
                if client not in clients:
                    other[client].append(number)
            if expected < after:
                absent.append((expected, after - 1))
        absent, outside = _split(absent, held[0], held[-1])
        summary[serial] = {
            "other_clients": {c: _listed(_ranges(n)) for c, n in sorted(other.items())},
            "not_in_tar": _listed(absent),
            "outside_tar": _listed(outside),
        }
        if absent:
            findings.append(
                Finding(
                    NOT_IN_TAR,
                    tar,
                    f"TSE {serial[:16]}...: {_count(absent)} transaction number(s) "
                    f"{', '.join(_listed(absent))} have no Bon in the export and no log in "
                    f"{tar}, whose transactions of this TSE run from {held[0]} to "
                    f"{held[-1]}: a failed start (it uses a number and signs no log), logs "
                    f"missing from {tar} (opentse verify names missing signature counters), "
                    "or a TAR exported for some client ids only",
                    severity="warning",
                )
            )
        if outside:
            findings.append(
                Finding(
                    OUTSIDE_TAR,
                    tar,
                    f"TSE {serial[:16]}...: {_count(outside)} transaction number(s) "
                    f"{', '.join(_listed(outside))} have no Bon in the export and lie outside "
                    f"{tar}, whose transactions of this TSE run from {held[0]} to "
                    f"{held[-1]} (an export of a shorter number range or period): not "
                    "checked; the TSE's export that holds them tells",
                    severity="info",
                )
            )
    return summary, findings


def explained_in_words(summary: Mapping[str, Mapping[str, object]]) -> str:
    """The other registers' numbers for the text report: ``TSE 1a2b...: 3, 5 are
    client 'KASSE-A'``; "" when there are none."""
    parts = []
    for serial, groups in sorted(summary.items()):
        other = groups.get("other_clients")
        if not isinstance(other, Mapping):
            continue
        for client, ranges in sorted(other.items()):
            if isinstance(ranges, list) and ranges:
                listed = ", ".join(str(r) for r in ranges)
                parts.append(
                    f"TSE {serial[:16]}...: {listed} are transactions of client {client!r}"
                )
    if not parts:
        return ""
    return (
        "TSE transaction numbers between the Bons that are other registers' (their "
        "clients are not in this export): " + "; ".join(parts)
    )
