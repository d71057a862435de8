"""The ops tables on PostgreSQL (migration postgresql/0003_ops.sql): sites, the
append-only protocol and a replacement, in a throw-away schema. Skipped without a
reachable server (OPENTSE_TEST_DATABASE or the local trust-auth default)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import PIN, ready_tse, sell
from opentse.engine.service import TSEService
from opentse.errors import OpenTSEError
from opentse.ops import protocol, puk_file, replacement, sites
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


def test_replacement_killed_half_way_resumes_on_postgres(
    pg_ops: OpsContext, tmp_path: Path
) -> None:
    """The resumable replacement (test_replacement_resume.py) on PostgreSQL: killed
    after the first register moved, finished by the same call again."""
    ops = pg_ops
    org = sites.create_organization(ops, "PG GmbH")
    a = sites.create_location(ops, org.id, "A", street="Weg 1", postal_code="1", city="X")
    ready_tse(ops, "old", "K1", "K2")
    sites.assign_tse(ops, "old", a.id)
    for reg in ("K1", "K2"):
        sites.add_register(ops, reg, a.id)
        sites.assign_register(ops, reg, "old")
    sell(ops, "old", "K1", 2)
    url = str(ops.installation.store.url)  # the throw-away schema's
    target = TSEService.register_client.__code__

    def hook(frame: object, event: str, arg: object) -> None:
        if event == "return" and getattr(frame, "f_code", None) is target:
            os.kill(os.getpid(), signal.SIGKILL)

    pid = os.fork()
    if pid == 0:  # pragma: no cover - killed
        try:
            child = OpsContext.open(
                ops.data_dir, clock=FrozenClock(1_760_000_060), database_url=url
            )
            sys.setprofile(hook)
            replacement.replace_tse(child, "old", "new", new_admin_pin="654321", old_admin_pin=PIN)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status), status
    written = puk_file.read(puk_file.path_for(ops.data_dir, "new"))
    assert written is not None
    done = replacement.replace_tse(ops, "old", "new", new_admin_pin="654321", old_admin_pin=PIN)
    assert done.resumed and (done.admin_puk, done.timeadmin_puk) == (
        written.admin,
        written.timeadmin,
    )
    assert {r.register_id: r.tse_id for r in sites.registers(ops)} == {"K1": "new", "K2": "new"}
    assert ops.service.get("old").state.lifecycle.value == "DISABLED"
    sell(ops, "new", "K2")
