"""Ops commands at the same moment on PostgreSQL take turns, as on SQLite.

Two nodes (two OpsContexts on one schema) writing the protocol at once both read
MAX(seq) under READ COMMITTED: one failed with a raw unique violation, and checks
made inside the write transaction ("no organization of this name yet") passed on
both. Skipped without a reachable server."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from opentse.errors import OpenTSEError
from opentse.ops import protocol, sites
from opentse.ops.store import OpsContext
from opentse.testing.clock import FrozenClock


@pytest.fixture
def two_nodes(tmp_path: Path, clock: FrozenClock) -> Iterator[tuple[OpsContext, OpsContext]]:
    from opentse.storage import pg_testing

    url = pg_testing.server_url(os.environ.get("OPENTSE_TEST_DATABASE"))
    if url is None:
        pytest.skip("no PostgreSQL server reachable (set OPENTSE_TEST_DATABASE)")
    with pg_testing.temporary_schema(url) as schema_url:
        a = OpsContext.open(tmp_path / "data", clock=clock, database_url=schema_url)
        b = OpsContext.open(tmp_path / "data", clock=clock, database_url=schema_url)
        try:
            yield a, b
        finally:
            a.close()
            b.close()


def _at_once(calls: list[Callable[[], object]]) -> list[BaseException | None]:
    """Run the calls on threads released together; what each raised (or None)."""
    start = threading.Barrier(len(calls))
    raised: list[BaseException | None] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait()
        try:
            calls[i]()
        except BaseException as exc:  # the test inspects it
            raised[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return raised


def test_protocol_entries_written_at_once_are_all_kept_in_order(
    two_nodes: tuple[OpsContext, OpsContext],
) -> None:
    a, b = two_nodes
    per_thread = 25

    def writer(ctx: OpsContext, name: str) -> Callable[[], object]:
        def write() -> None:
            for i in range(per_thread):
                protocol.record(ctx.db, ctx.now(), protocol.OUTAGE_RECORDED, actor=f"{name}-{i}")

        return write

    raised = _at_once([writer(a, "a1"), writer(b, "b1"), writer(a, "a2"), writer(b, "b2")])
    assert raised == [None] * 4
    written = protocol.entries(a.db, kinds=(protocol.OUTAGE_RECORDED,))
    assert len(written) == 4 * per_thread
    seqs = [e.seq for e in protocol.entries(a.db)]
    assert seqs == list(range(1, len(seqs) + 1))  # gapless, none twice
    for name in ("a1", "b1", "a2", "b2"):  # each writer's entries in the order written
        mine = [e.actor for e in written if e.actor.startswith(name + "-")]
        assert mine == [f"{name}-{i}" for i in range(per_thread)]


def test_one_organization_of_a_name_when_two_nodes_create_it_at_once(
    two_nodes: tuple[OpsContext, OpsContext],
) -> None:
    a, b = two_nodes
    for round_ in range(8):
        name = f"Bäckerei Runde {round_}"
        raised = _at_once([partial(sites.create_organization, node, name) for node in (a, b)])
        refused = [exc for exc in raised if exc is not None]
        assert len(refused) == 1, raised
        assert isinstance(refused[0], OpenTSEError)
        assert refused[0].code == "E_SITE_ORG_EXISTS"
    names = [o.name for o in sites.organizations(a)]
    assert sorted(names) == sorted(f"Bäckerei Runde {r}" for r in range(8))
