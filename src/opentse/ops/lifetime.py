"""Capacity and lifetime warnings: pure functions from facts + a time.

A USB TSE signs a fixed number of times (about 20 million) and its certificate
expires; POS vendors warn ahead of either so a replacement can be ordered. Here:
a warning starts 15 days before the projected day the capacity is used up (at the
TSE's average rate since it was initialized) or before the certificate's notAfter,
and it is repeated once a day (``due``) for as long as it holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DAY = 86400
WARN_DAYS = 15
CAPACITY = "capacity"
EXPIRY = "certificate_expiry"


@dataclass(frozen=True, slots=True)
class Facts:
    """What the warnings are computed from (see ``facts_of`` in status code)."""

    tse_id: str
    signatures: int  # signature counter of the last signature
    capacity: int
    started_at: int  # initialization (or creation) time, unix seconds
    not_after: int | None  # certificate expiry, unix seconds


@dataclass(frozen=True, slots=True)
class Lifetime:
    tse_id: str
    remaining_signatures: int
    days_to_capacity: float | None  # None: no signatures yet, no projection
    days_to_expiry: float | None  # None: no certificate


@dataclass(frozen=True, slots=True)
class Warning:
    tse_id: str
    kind: str  # CAPACITY | EXPIRY
    level: str  # "warning" (within 15 days) | "critical" (reached)
    days_left: float
    message: str

    def to_json(self) -> dict[str, object]:
        return {
            "tse_id": self.tse_id,
            "kind": self.kind,
            "level": self.level,
            "days_left": round(self.days_left, 2),
            "message": self.message,
        }


def lifetime(facts: Facts, now: int) -> Lifetime:
    remaining = max(facts.capacity - facts.signatures, 0)
    days_to_capacity: float | None = None
    if remaining == 0:
        days_to_capacity = 0.0
    elif facts.signatures > 0:
        elapsed_days = max((now - facts.started_at) / DAY, 1.0)  # at least one day of data
        per_day = facts.signatures / elapsed_days
        days_to_capacity = remaining / per_day
    days_to_expiry = None if facts.not_after is None else (facts.not_after - now) / DAY
    return Lifetime(facts.tse_id, remaining, days_to_capacity, days_to_expiry)


def warnings(facts: Facts, now: int, *, warn_days: int = WARN_DAYS) -> list[Warning]:
    """Active warnings for one TSE at ``now`` (empty when both are further away)."""
    life = lifetime(facts, now)
    found: list[Warning] = []
    if life.days_to_capacity is not None and life.days_to_capacity <= warn_days:
        if life.remaining_signatures == 0:
            msg = (
                f"TSE {facts.tse_id}: capacity of {facts.capacity} signatures reached; "
                "replace the TSE now"
            )
            found.append(Warning(facts.tse_id, CAPACITY, "critical", 0.0, msg))
        else:
            msg = (
                f"TSE {facts.tse_id}: {life.remaining_signatures} signatures left, capacity "
                f"reached in about {life.days_to_capacity:.1f} days; order a replacement"
            )
            found.append(Warning(facts.tse_id, CAPACITY, "warning", life.days_to_capacity, msg))
    if life.days_to_expiry is not None and life.days_to_expiry <= warn_days:
        if life.days_to_expiry <= 0:
            msg = f"TSE {facts.tse_id}: certificate expired; the TSE cannot sign any more"
            found.append(Warning(facts.tse_id, EXPIRY, "critical", 0.0, msg))
        else:
            msg = (
                f"TSE {facts.tse_id}: certificate expires in {life.days_to_expiry:.1f} days; "
                "replace the TSE before then"
            )
            found.append(Warning(facts.tse_id, EXPIRY, "warning", life.days_to_expiry, msg))
    return found


def utc_day(unix: int) -> int:
    return unix // DAY


def announce_key(w: Warning) -> str:
    """What an announcement is recorded under: the kind, and for a critical warning
    the level too, so a warning that turns critical (capacity used up, certificate
    expired) is announced at once, not only the next day."""
    return w.kind if w.level == "warning" else f"{w.kind}:{w.level}"


def due(
    active: Iterable[Warning], last_sent: Mapping[tuple[str, str], int], now: int
) -> list[Warning]:
    """The warnings to announce now: each (TSE, ``announce_key``) once per UTC day.

    ``last_sent`` maps (tse_id, announce key) to the unix time it was last announced.
    """
    today = utc_day(now)
    return [
        w
        for w in active
        if (sent := last_sent.get((w.tse_id, announce_key(w)))) is None or utc_day(sent) < today
    ]
