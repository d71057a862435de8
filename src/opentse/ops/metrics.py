"""Prometheus text exposition (format 0.0.4) of the TSEs' health.

Per TSE, labelled ``tse_id``: signatures and transactions so far, failed API calls
(by status), open transactions, capacity left, days to the certificate's expiry and
to the projected end of capacity, and active warnings. Pure: callers pass the
statuses (ops/status.py) and the failure counts (the server's middleware).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence

from opentse.ops.status import TSEStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape(value: str) -> str:
    """Label value escaping of the text format: backslash, double quote, newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


def _value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(round(float(value), 6))


class Family:
    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name = name
        self.kind = kind
        self.help = help_text
        self.samples: list[tuple[dict[str, str], float]] = []

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((labels, value))

    def render(self) -> str:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        lines += [f"{self.name}{_labels(lb)} {_value(v)}" for lb, v in self.samples]
        return "\n".join(lines)


class FailureCounter:
    """Thread-safe counts of failed API calls per (TSE, HTTP status)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}

    def add(self, tse_id: str, status: int) -> None:
        with self._lock:
            key = (tse_id, str(status))
            self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)


def render(
    statuses: Sequence[TSEStatus],
    failures: Mapping[tuple[str, str], int] | None = None,
    last_exports: Mapping[str, int] | None = None,
) -> str:
    fam = {
        "info": Family("opentse_tse_info", "gauge", "TSE identity and state (always 1)."),
        "sig": Family("opentse_tse_signatures_total", "counter", "Signatures made (counter)."),
        "tx": Family("opentse_tse_transactions_total", "counter", "Transactions started."),
        "fail": Family("opentse_tse_failures_total", "counter", "Failed API calls by status."),
        "open": Family("opentse_tse_open_transactions", "gauge", "Transactions not finished."),
        "cap": Family("opentse_tse_capacity_signatures", "gauge", "Configured capacity."),
        "rem": Family("opentse_tse_remaining_capacity", "gauge", "Signatures left."),
        "dcap": Family(
            "opentse_tse_days_to_capacity", "gauge", "Projected days until capacity is used up."
        ),
        "dexp": Family(
            "opentse_tse_days_to_expiry", "gauge", "Days until the certificate expires."
        ),
        "warn": Family("opentse_tse_warning", "gauge", "Active warning (1) by kind and level."),
        "exp": Family(
            "opentse_tse_last_export_timestamp_seconds", "gauge", "Last archived export."
        ),
    }
    for st in statuses:
        tid = st.info.record.tse_id
        s = st.info.state
        fam["info"].add(
            1, tse_id=tid, serial_number=st.info.record.serial_number.hex(),
            state=s.lifecycle.value, location_id=st.site.location_id if st.site else "",
        )  # fmt: skip
        fam["sig"].add(s.signature_counter, tse_id=tid)
        fam["tx"].add(s.transaction_counter, tse_id=tid)
        fam["open"].add(len(s.open_transactions), tse_id=tid)
        fam["cap"].add(st.facts.capacity, tse_id=tid)
        fam["rem"].add(st.life.remaining_signatures, tse_id=tid)
        if st.life.days_to_capacity is not None:
            fam["dcap"].add(st.life.days_to_capacity, tse_id=tid)
        if st.life.days_to_expiry is not None:
            fam["dexp"].add(st.life.days_to_expiry, tse_id=tid)
        for w in st.warnings:
            fam["warn"].add(1, tse_id=tid, kind=w.kind, level=w.level)
        if last_exports and tid in last_exports:
            fam["exp"].add(last_exports[tid], tse_id=tid)
    for (tid, status), count in sorted((failures or {}).items()):
        fam["fail"].add(count, tse_id=tid, status=status)
    return "\n".join(f.render() for f in fam.values()) + "\n"
