"""The journal's traffic light against a model, over random event sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.register.outage import ADVICE_AFTER, RESTART_ADVICE, Light, OutageLog

EVENTS = st.lists(st.sampled_from(["fail", "ok", "unreachable"]), max_size=25)


@settings(max_examples=60, deadline=None)
@given(EVENTS)
def test_light_and_count_follow_the_events(events: list[str]) -> None:
    log = OutageLog(":memory:")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    light, count, outages = Light.GREEN, 0, 0
    for i, event in enumerate(events):
        at += timedelta(seconds=1)
        if event == "fail":
            if light is Light.GREEN:
                light, outages = Light.YELLOW, outages + 1
            count += 1
            got = log.record_failure(
                at=at,
                reason="x",
                receipt_ref=f"r{i}",
                receipt_number=str(i),
                bon_typ="Beleg",
                total=Decimal("1.00"),
            )
            assert got == count
        elif event == "ok":
            ended = log.record_success(at=at)
            assert (ended is None) == (light is Light.GREEN)
            light, count = Light.GREEN, 0
        else:  # not reachable at a start: red, but an outage keeps its colour
            if light is Light.GREEN:
                light, outages = Light.RED, outages + 1
            log.record_unreachable(at=at, reason="down")
        status = log.status()
        assert status.light is light
        assert status.consecutive_failures == count
        assert (RESTART_ADVICE in status.message) == (count > ADVICE_AFTER)
    assert len(log.outages()) == outages
    assert sum(len(o.receipt_refs) for o in log.outages()) == events.count("fail")
    log.close()


def test_receipt_numbers_are_gapless() -> None:
    log = OutageLog(":memory:")
    assert [log.next_number() for _ in range(5)] == [1, 2, 3, 4, 5]
    assert log.next_number("order") == 1
    log.close()
