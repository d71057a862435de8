"""Fixtures of the ops tests: a real installation (SQLite, local CA) on a frozen clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opentse.ops.store import OpsContext
from opentse.testing.clock import FrozenClock

PIN = "123456"
START = 1_760_000_000  # 2025-10-09


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def ops(tmp_path: Path, clock: FrozenClock) -> Iterator[OpsContext]:
    ctx = OpsContext.open(tmp_path / "data", clock=clock)
    try:
        yield ctx
    finally:
        ctx.close()


def ready_tse(ctx: OpsContext, tse_id: str, *clients: str, pin: str = PIN) -> None:
    """Create, set the admin PIN, initialize and register clients (logged out after)."""
    svc = ctx.service
    created = svc.create_tse(tse_id)
    svc.set_state(tse_id, "UNINITIALIZED")
    svc.set_admin_pin(tse_id, created.admin_puk, pin)
    svc.authenticate(tse_id, pin)
    svc.initialize(tse_id)
    for client in clients:
        svc.register_client(tse_id, client)
    svc.logout(tse_id)


def sell(ctx: OpsContext, tse_id: str, client: str, n: int = 1) -> None:
    """``n`` finished transactions (two signatures each)."""
    for _ in range(n):
        start = ctx.service.start_transaction(tse_id, client, b"", "Kassenbeleg-V1")
        ctx.service.finish_transaction(
            tse_id, client, start.transaction_number, b"Beleg^1.00_0.00_0.00_0.00_0.00^1.00:Bar",
            "Kassenbeleg-V1",
        )  # fmt: skip
