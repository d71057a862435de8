"""The ops tables on PostgreSQL (migration postgresql/0003_ops.sql): sites, the
append-only protocol and a replacement, in a throw-away schema. Skipped without a
reachable server (OPENTSE_TEST_DATABASE or the local trust-auth default)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import PIN, ready_tse, sell
from opentse.errors import OpenTSEError
from opentse.ops import protocol, replacement, sites
from opentse.ops.store import OpsContext
from opentse.testing.clock import FrozenClock


@pytest.fixture
def pg_ops(tmp_path: Path, clock: FrozenClock) -> Iterator[OpsContext]:
    from opentse.storage import pg_testing

    url = pg_testing.server_url(os.environ.get("OPENTSE_TEST_DATABASE"))
    if url is None:
        pytest.skip("no PostgreSQL server reachable (set OPENTSE_TEST_DATABASE)")
    with pg_testing.temporary_schema(url) as schema_url:
        ctx = OpsContext.open(tmp_path / "data", clock=clock, database_url=schema_url)
        try:
            yield ctx
        finally:
            ctx.close()


def test_sites_protocol_and_replacement_on_postgres(pg_ops: OpsContext) -> None:
    ops = pg_ops
    org = sites.create_organization(ops, "PG GmbH")
    a = sites.create_location(ops, org.id, "A", street="Weg 1", postal_code="1", city="X")
    b = sites.create_location(ops, org.id, "B", street="Weg 2", postal_code="1", city="X")
    ready_tse(ops, "old", "K1")
    sites.assign_tse(ops, "old", a.id, capacity=10)
    sites.add_register(ops, "K1", a.id)
    sites.add_register(ops, "K2", b.id)
    sites.assign_register(ops, "K1", "old")
    with pytest.raises(OpenTSEError) as exc:
        sites.assign_register(ops, "K2", "old")
    assert exc.value.code == "E_SITE_CROSS_LOCATION"
    with pytest.raises(Exception, match="append-only"), ops.db.tx() as c:
        c.execute("DELETE FROM ops_protocol")
    sell(ops, "old", "K1", 4)
    done = replacement.replace_tse(ops, "old", "new", new_admin_pin=PIN, old_admin_pin=PIN)
    assert done.export.verified_ok and done.final_export is not None
    kinds = [e.kind for e in protocol.entries(ops.db)]
    assert kinds[-1] == protocol.REPLACE_DONE
    assert kinds.index(protocol.REPLACE_EXPORT_ARCHIVED) < kinds.index(
        protocol.REPLACE_OLD_DISABLED
    )
    assert sites.get_register(ops, "K1").tse_id == "new"
