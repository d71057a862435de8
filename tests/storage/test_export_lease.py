"""Export leases in the service store (migration 0006): one node works on an export.

The same rules on SQLite and PostgreSQL: a claim takes only an unclaimed export or
one whose lease ran out; the holder renews it; a node that lost it can neither renew
nor finish it. Two stores on one database stand for two nodes; of two racing for
the same PENDING export exactly one wins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opentse.server.service_store import ExportRow, ServiceStore
from opentse.storage.pg_testing import service_stores

SHORT = 0.3  # seconds: a lease that runs out within the test


def _export(export_id: str, tss: str = "t") -> ExportRow:
    return ExportRow(export_id, tss, "org", "PENDING", {}, None, 1, None, None, None, None, {})


@pytest.fixture(params=["sqlite", "postgresql"])
def nodes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServiceStore, ...]]:
    """Two service stores on one database: two API nodes."""
    # tests/conftest.py's pg_server skips when no PostgreSQL answers (looked up here,
    # not while the module is collected)
    server = request.getfixturevalue("pg_server") if request.param == "postgresql" else None
    with service_stores(request.param, tmp_path, server, nodes=2) as (a, b):
        yield a, b


def _wait_claimable(store: ServiceStore, export_id: str) -> None:
    deadline = time.monotonic() + 10
    while export_id not in store.claimable_exports():
        assert time.monotonic() < deadline, "the lease did not run out"
        time.sleep(0.05)


def test_a_live_lease_keeps_other_nodes_out_until_it_runs_out(
    nodes: tuple[ServiceStore, ServiceStore],
) -> None:
    a, b = nodes
    assert a.add_export(_export("e1"), 10)
    assert b.claimable_exports() == ["e1"]  # never claimed: free for any node
    row = a.claim_export("e1", "node-a", SHORT, now=50)
    assert row is not None and (row.state, row.time_start, row.lease_owner) == (
        "WORKING",
        50,
        "node-a",
    )
    # B (starting up) sees it WORKING under a live lease and leaves it
    assert b.claimable_exports() == []
    assert b.claim_export("e1", "node-b", SHORT, now=51) is None
    assert a.claim_export("e1", "node-a", SHORT, now=51) is None  # not re-run by A either
    # A renews while it works (each heartbeat a fresh term): the lease outlives its
    # first one. That term is seen to be over when a probe claimed after it, for as
    # long, runs out (no sleep that a loaded machine could outlast)
    assert a.renew_export_leases("node-a", 30) == {"e1"}
    assert a.add_export(_export("probe", tss="p"), 10)
    assert a.claim_export("probe", "node-p", SHORT, now=50) is not None
    _wait_claimable(b, "probe")
    assert b.claim_export("e1", "node-b", SHORT, now=52) is None
    assert a.renew_export_leases("node-a", 30) == {"e1"}
    assert b.claim_export("e1", "node-b", SHORT, now=52) is None
    assert a.update_export("probe", only_from=("WORKING",), state="CANCELLED")
    assert b.renew_export_leases("node-b", SHORT) == set()  # B holds nothing
    # A's last heartbeat, then it stops renewing (it died): once that lease ran out,
    # B takes the export over
    assert a.renew_export_leases("node-a", SHORT) == {"e1"}
    _wait_claimable(b, "e1")
    taken = b.claim_export("e1", "node-b", 30, now=60)
    assert taken is not None and (taken.state, taken.lease_owner) == ("WORKING", "node-b")
    # A, come back, lost it: no renewal, no final state
    assert a.renew_export_leases("node-a", SHORT) == set()
    assert not a.update_export("e1", only_from=("WORKING",), owner="node-a", state="COMPLETED")
    assert b.update_export(
        "e1", only_from=("WORKING",), owner="node-b", lease_until=None, state="COMPLETED"
    )
    done = a.get_export("e1")
    assert done is not None and (done.state, done.lease_owner) == ("COMPLETED", "node-b")
    assert a.claimable_exports() == [] and b.claim_export("e1", "node-b", 30, now=70) is None


def test_an_export_reserved_by_the_node_that_took_the_request(
    nodes: tuple[ServiceStore, ServiceStore],
) -> None:
    a, b = nodes
    assert a.add_export(_export("e1"), 10, owner="node-a", lease_seconds=30)
    row = b.get_export("e1")
    assert row is not None and (row.state, row.lease_owner) == ("PENDING", "node-a")
    assert b.claimable_exports() == []
    assert b.claim_export("e1", "node-b", 30, now=5) is None
    assert a.claim_export("e1", "node-a", 30, now=5) is not None  # its own reservation
    # a reservation that is not renewed runs out like any lease
    assert a.add_export(_export("e2"), 10, owner="node-a", lease_seconds=SHORT)
    _wait_claimable(b, "e2")
    assert b.claim_export("e2", "node-b", 30, now=6) is not None


def test_release_hands_unfinished_exports_back_and_cancelled_ones_stay(
    nodes: tuple[ServiceStore, ServiceStore],
) -> None:
    a, b = nodes
    for n in (1, 2, 3):
        assert a.add_export(_export(f"e{n}"), 10)
        assert a.claim_export(f"e{n}", "node-a", 30, now=n) is not None
    assert a.update_export("e3", only_from=("PENDING", "WORKING"), state="CANCELLED")
    assert a.renew_export_leases("node-a", 30) == {"e1", "e2"}  # e3: cancelled elsewhere
    assert b.claimable_exports() == []
    assert a.release_export_leases("node-a") == 2  # a node stopping on purpose
    assert b.claimable_exports() == ["e1", "e2"]
    assert b.claim_export("e3", "node-b", 30, now=9) is None
    again = b.claim_export("e1", "node-b", 30, now=9)
    assert again is not None and again.state == "WORKING" and again.time_start == 9


def test_exactly_one_of_two_racing_nodes_claims_a_pending_export(
    nodes: tuple[ServiceStore, ServiceStore],
) -> None:
    a, b = nodes
    rounds = 15
    for n in range(rounds):
        assert a.add_export(_export(f"e{n}", tss=f"t{n}"), 10)
    wins: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def race(store: ServiceStore, owner: str, barrier: threading.Barrier, export_id: str) -> None:
        try:
            barrier.wait(timeout=10)
            if store.claim_export(export_id, owner, 30, now=1) is not None:
                wins.setdefault(export_id, []).append(owner)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    for n in range(rounds):
        barrier = threading.Barrier(2)
        threads = [
            threading.Thread(target=race, args=(store, owner, barrier, f"e{n}"))
            for store, owner in ((a, "node-a"), (b, "node-b"))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    assert sorted(wins) == sorted(f"e{n}" for n in range(rounds))
    assert all(len(owners) == 1 for owners in wins.values()), wins
    for export_id, (owner,) in wins.items():
        row = b.get_export(export_id)
        assert row is not None and (row.state, row.lease_owner) == ("WORKING", owner)
