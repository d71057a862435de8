"""Live status of a site's TSEs: lifetime facts from the engine state, the
certificate and the ops tables; warnings; and the once-a-day announcement record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509

from opentse.engine.results import TSEInfo
from opentse.ops import lifetime, sites
from opentse.ops.store import DEFAULT_CAPACITY, OpsContext


@dataclass(frozen=True, slots=True)
class TSEStatus:
    info: TSEInfo
    site: sites.SiteTSE | None
    facts: lifetime.Facts
    life: lifetime.Lifetime
    warnings: tuple[lifetime.Warning, ...]

    def to_json(self) -> dict[str, Any]:
        s = self.info.state
        return {
            "tse_id": self.info.record.tse_id,
            "state": s.lifecycle.value,
            "serial_number": self.info.record.serial_number.hex(),
            "location_id": self.site.location_id if self.site else None,
            "ops_status": self.site.status if self.site else None,
            "signatures": s.signature_counter,
            "transactions": s.transaction_counter,
            "open_transactions": len(s.open_transactions),
            "capacity": self.facts.capacity,
            "remaining_signatures": self.life.remaining_signatures,
            "days_to_capacity": _round(self.life.days_to_capacity),
            "certificate_not_after": self.facts.not_after,
            "days_to_expiry": _round(self.life.days_to_expiry),
            "warnings": [w.to_json() for w in self.warnings],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def not_after_of(info: TSEInfo) -> int | None:
    if not info.record.certificate_chain:
        return None
    cert = x509.load_der_x509_certificate(info.record.certificate_chain[0])
    return int(cert.not_valid_after_utc.timestamp())


def facts_of(info: TSEInfo, site: sites.SiteTSE | None) -> lifetime.Facts:
    s = info.state
    return lifetime.Facts(
        tse_id=info.record.tse_id,
        signatures=s.signature_counter,
        capacity=site.capacity if site else DEFAULT_CAPACITY,
        started_at=s.initialized_at or s.created_at or info.record.created_at,
        not_after=not_after_of(info),
    )


def status_of(
    ctx: OpsContext,
    info: TSEInfo,
    now: int | None = None,
    *,
    warn_days: int = lifetime.WARN_DAYS,
) -> TSEStatus:
    now = ctx.now() if now is None else now
    site = sites.find_tse(ctx, info.record.tse_id)
    facts = facts_of(info, site)
    active: tuple[lifetime.Warning, ...] = ()
    if info.state.lifecycle.value not in ("DISABLED", "DEFECTIVE"):
        active = tuple(lifetime.warnings(facts, now, warn_days=warn_days))
    return TSEStatus(info, site, facts, lifetime.lifetime(facts, now), active)


def all_status(
    ctx: OpsContext, tse_id: str | None = None, *, warn_days: int = lifetime.WARN_DAYS
) -> list[TSEStatus]:
    """``warn_days``: how far ahead to warn (a planning look further than the usual
    15 days: which TSEs need replacing within a quarter)."""
    now = ctx.now()
    if tse_id:
        ctx.service.require(tse_id)  # E_TSS_NOT_FOUND, as every other ops command
    infos = [ctx.service.get(tse_id)] if tse_id else ctx.service.list()
    return [status_of(ctx, i, now, warn_days=warn_days) for i in infos]


def last_sent(ctx: OpsContext) -> dict[tuple[str, str], int]:
    return {
        (r[0], r[1]): int(r[2])
        for r in ctx.db.rows("SELECT tse_id, kind, sent_at FROM ops_warnings_sent")
    }


def announce(ctx: OpsContext, statuses: list[TSEStatus]) -> list[lifetime.Warning]:
    """The warnings due today (lifetime.due), marked as announced now."""
    now = ctx.now()
    todo = lifetime.due([w for s in statuses for w in s.warnings], last_sent(ctx), now)
    if todo:
        with ctx.db.tx() as c:
            for w in todo:
                key = lifetime.announce_key(w)
                c.execute(
                    "DELETE FROM ops_warnings_sent WHERE tse_id=? AND kind=?", (w.tse_id, key)
                )
                c.execute(
                    "INSERT INTO ops_warnings_sent(tse_id, kind, sent_at) VALUES (?,?,?)",
                    (w.tse_id, key, now),
                )
    return todo
