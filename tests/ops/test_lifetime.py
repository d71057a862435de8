"""Capacity and certificate-expiry warnings: from 15 days before, once per UTC day."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import PIN, ready_tse, sell
from opentse.ops import lifetime, sites, status
from opentse.ops.store import DEFAULT_CAPACITY, OpsContext
from opentse.testing.clock import FrozenClock

DAY = lifetime.DAY


def facts(signatures: int, capacity: int = 1000, not_after: int | None = None) -> lifetime.Facts:
    return lifetime.Facts("t1", signatures, capacity, started_at=0, not_after=not_after)


def test_capacity_warning_starts_15_days_before() -> None:
    # 10 signatures a day, 1000 capacity: reached on day 100
    assert lifetime.warnings(facts(840), 84 * DAY) == []  # 16 days left
    (w,) = lifetime.warnings(facts(850), 85 * DAY)  # exactly 15 days left
    assert (w.kind, w.level, round(w.days_left, 6)) == (lifetime.CAPACITY, "warning", 15.0)
    (w,) = lifetime.warnings(facts(1000), 100 * DAY)
    assert (w.level, w.days_left) == ("critical", 0.0)
    assert "capacity of 1000 signatures reached" in w.message


def test_expiry_warning_starts_15_days_before() -> None:
    not_after = 200 * DAY
    assert lifetime.warnings(facts(1, 10**9, not_after), not_after - 15 * DAY - 1) == []
    (w,) = lifetime.warnings(facts(1, 10**9, not_after), not_after - 15 * DAY)
    assert (w.kind, w.level) == (lifetime.EXPIRY, "warning")
    (w,) = lifetime.warnings(facts(1, 10**9, not_after), not_after)
    assert w.level == "critical"


def test_daily_repetition() -> None:
    (w,) = lifetime.warnings(facts(1000), 100 * DAY)
    sent: dict[tuple[str, str], int] = {}
    now = 100 * DAY + 3600
    assert lifetime.due([w], sent, now) == [w]
    sent[(w.tse_id, lifetime.announce_key(w))] = now
    assert lifetime.due([w], sent, now + 3600) == []  # same day: not again
    assert lifetime.due([w], sent, 101 * DAY - 1) == []
    assert lifetime.due([w], sent, 101 * DAY) == [w]  # next UTC day: again


@settings(max_examples=100, deadline=None)
@given(
    signatures=st.integers(0, 10**7),
    capacity=st.integers(1, 10**7),
    days=st.integers(0, 3650),
)
def test_warning_iff_projection_within_15_days(signatures: int, capacity: int, days: int) -> None:
    now = days * DAY
    life = lifetime.lifetime(facts(signatures, capacity), now)
    found = lifetime.warnings(facts(signatures, capacity), now)
    expect = life.days_to_capacity is not None and life.days_to_capacity <= 15
    assert bool(found) == expect
    assert life.remaining_signatures == max(capacity - signatures, 0)


def test_status_of_real_tse_with_frozen_clock(ops: OpsContext, clock: FrozenClock) -> None:
    org = sites.create_organization(ops, "Shop")
    loc = sites.create_location(ops, org.id, "Shop", street="A 1", postal_code="1", city="B")
    ready_tse(ops, "t-small", "K1")
    sites.assign_tse(ops, "t-small", loc.id, capacity=40)
    ready_tse(ops, "t-default", "K2")
    sites.assign_tse(ops, "t-default", loc.id)
    (st_default,) = status.all_status(ops, "t-default")
    assert st_default.facts.capacity == DEFAULT_CAPACITY and st_default.warnings == ()
    sell(ops, "t-small", "K1", 5)  # ~13 signatures on day one of 40 -> ~2 days left
    (st_small,) = status.all_status(ops, "t-small")
    assert [w.kind for w in st_small.warnings] == [lifetime.CAPACITY]
    first = status.announce(ops, status.all_status(ops))
    assert [w.tse_id for w in first] == ["t-small"]
    clock.advance(3 * 3600)
    assert status.announce(ops, status.all_status(ops)) == []
    clock.advance(DAY)
    assert [w.tse_id for w in status.announce(ops, status.all_status(ops))] == ["t-small"]
    # the same day the capacity is used up: the critical warning goes out at once
    # (it waited for the next day, the warning of that morning counting for it)
    while ops.service.get("t-small").state.signature_counter < 40:
        sell(ops, "t-small", "K1")
    clock.advance(3600)
    (critical,) = status.announce(ops, status.all_status(ops))
    assert (critical.tse_id, critical.level) == ("t-small", "critical")
    assert status.announce(ops, status.all_status(ops)) == []
    # the certificate (5 years) warns 15 days before notAfter
    not_after = st_default.facts.not_after
    assert not_after is not None
    clock.set(not_after - 16 * DAY)
    assert status.all_status(ops, "t-default")[0].warnings == ()
    clock.set(not_after - 14 * DAY)
    kinds = {w.kind for w in status.all_status(ops, "t-default")[0].warnings}
    assert lifetime.EXPIRY in kinds
    assert PIN  # the fixture's PIN is the admin PIN of both TSEs
