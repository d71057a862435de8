"""Background exports on two API nodes sharing one PostgreSQL database.

Node A is a separate process whose ExportManager claims an export and stalls while
writing it (its partial file is a FIFO nobody reads, as on a hung disk) but keeps
renewing its lease. Node B starts up meanwhile and must leave that export alone.
Then A is killed with SIGKILL: once A's lease has run out, B takes the export over
and completes it, and the TAR verifies.

Two nodes sharing the exports folder (mounted at different paths), on SQLite and
PostgreSQL: node A dies in the middle of writing; B, taking the export over, removes
A's part file (and other dead attempts of that export) at once.

Skips only when no PostgreSQL server is reachable (``OPENTSE_TEST_DATABASE``).
"""

from __future__ import annotations

import contextlib
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from opentse.engine.state import Lifecycle
from opentse.installation import Installation
from opentse.server.context import ServerConfig, ServerContext
from opentse.server.export_jobs import ExportManager
from opentse.server.service_store import ExportRow
from opentse.verify.report import verify_exports

pytestmark = [pytest.mark.timeout(120)]

LEASE = 1.0  # seconds
RENEW = 0.2

# Node A: triggers the export as if a client had asked it, then stalls writing it.
_NODE_A = f"""
import os, socket, sys, time
from pathlib import Path
from opentse.installation import Installation
from opentse.server.context import ServerConfig, ServerContext
from opentse.server.export_jobs import ExportManager
from opentse.server.service_store import ExportRow

data, url, tss, export_id = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
inst = Installation.open(data, database_url=url)
config = ServerConfig(data_dir=data, export_lease={LEASE}, export_renew={RENEW})
ctx = ServerContext(inst, config)
ctx.exports = ExportManager(ctx, 1)
ctx.exports.resume()
part = ctx.exports.part_path(export_id)
os.mkfifo(part)  # opening it for writing blocks until a reader comes: none will
row = ExportRow(export_id, tss, "org", "PENDING", {{}}, None, ctx.now(), None, None, None,
                None, {{}})
assert ctx.exports.trigger(row, 10)
while (got := ctx.svc.get_export(export_id)) is None or got.state != "WORKING":
    time.sleep(0.02)
print(ctx.exports.owner, flush=True)
time.sleep(600)
"""


def _tse_with_receipts(data: Path, url: str, receipts: int) -> str:
    with Installation.open(data, database_url=url) as inst:
        service = inst.service
        tse_id = str(uuid.uuid4())
        created = service.create_tse(tse_id)
        service.set_state(tse_id, Lifecycle.UNINITIALIZED)
        service.set_admin_pin(tse_id, created.admin_puk, "123456")
        service.authenticate(tse_id, "123456")
        service.initialize(tse_id, "lease test")
        service.register_client(tse_id, "KASSE-1")
        for _ in range(receipts):
            n = service.start_transaction(tse_id, "KASSE-1").transaction_number
            service.finish_transaction(
                tse_id, "KASSE-1", n, b"Beleg^1.00_0.00_0.00_0.00_0.00^1.00:Bar"
            )
        return tse_id


def _read_line(process: subprocess.Popen[bytes], seconds: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], seconds)
    assert ready, "node A did not start working on the export"
    return process.stdout.readline().decode().strip()


@pytest.mark.postgres
@contextlib.contextmanager
def _node_a_and_b(
    tmp_path: Path, script: str, data_a: Path, data_b: Path, url: str, tss: str, export_id: str
) -> Iterator[tuple[subprocess.Popen[bytes], str, ServerContext]]:
    """Node A (``script`` in a process of its own, working on ``export_id``), and once
    A says who it is, node B in this process (not resumed yet); both ended after."""
    log = open(tmp_path / "node-a.log", "wb")  # noqa: SIM115 - closed below
    node_a = subprocess.Popen(
        [sys.executable, "-c", script, str(data_a), url, tss, export_id],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    inst_b = ctx_b = None
    try:
        owner_a = _read_line(node_a, 60)
        assert owner_a, (tmp_path / "node-a.log").read_text()
        inst_b, ctx_b = _node(data_b, url, LEASE)
        yield node_a, owner_a, ctx_b
    finally:
        if node_a.poll() is None:
            node_a.kill()
            node_a.wait(timeout=30)
        if node_a.stdout is not None:
            node_a.stdout.close()
        log.close()
        if ctx_b is not None:
            ctx_b.close()
        if inst_b is not None:
            inst_b.close()


def _taken_over_after_kill(
    node_a: subprocess.Popen[bytes], owner_a: str, ctx_b: ServerContext, export_id: str
) -> ExportRow:
    """SIGKILL node A; node B takes the export over once A's lease ran out and
    completes it: its row."""
    node_a.send_signal(signal.SIGKILL)
    node_a.wait(timeout=30)
    deadline = time.monotonic() + 30
    while (row := ctx_b.svc.get_export(export_id)) is not None and row.state in (
        "PENDING",
        "WORKING",
    ):
        assert time.monotonic() < deadline, "node B did not take the export over"
        time.sleep(0.05)
    assert row is not None and row.state == "COMPLETED", row
    assert row.lease_owner == ctx_b.exports.owner != owner_a
    assert row.file_path is not None
    return row


def test_a_live_node_keeps_its_export_and_a_dead_ones_is_taken_over(
    pg_url: str, tmp_path: Path
) -> None:
    data_a, data_b = tmp_path / "a", tmp_path / "b"
    tss = _tse_with_receipts(data_a, pg_url, receipts=3)
    shutil.copytree(data_a, data_b)  # one installation: same secret and CA
    export_id = str(uuid.uuid4())
    # node B starts while A works on the export (A stalls, but renews its lease)
    with _node_a_and_b(tmp_path, _NODE_A, data_a, data_b, pg_url, tss, export_id) as (
        node_a,
        owner_a,
        ctx_b,
    ):
        ctx_b.exports.resume()
        started = ctx_b.svc.get_export(export_id)
        assert started is not None and started.state == "WORKING"
        time.sleep(3 * LEASE)  # many of B's heartbeats, three of A's lease terms
        row = ctx_b.svc.get_export(export_id)
        assert row is not None
        assert (row.state, row.lease_owner, row.time_start) == (
            "WORKING",
            owner_a,
            started.time_start,
        )
        assert list((data_b / "exports").iterdir()) == []  # B wrote nothing
        # A dies without finishing: after its lease ran out, B takes over
        row = _taken_over_after_kill(node_a, owner_a, ctx_b, export_id)
        assert row.file_path is not None and Path(row.file_path).parent == data_b / "exports"
        report = verify_exports([Path(row.file_path)])
        assert report.ok, [f.to_json() for f in report.findings]
        # initialize, register, 3 x (start, finish) and more: every log signed and valid
        assert len(report.signatures.valid) == report.log_messages >= 8


def _node(data: Path, url: str, lease: float) -> tuple[Installation, ServerContext]:
    inst = Installation.open(data, database_url=url)
    ctx = ServerContext(inst, ServerConfig(data_dir=data, export_lease=lease, export_renew=RENEW))
    ctx.exports = ExportManager(ctx, 1)
    return inst, ctx


@pytest.mark.postgres
def test_a_node_stopping_on_purpose_hands_its_queued_export_over_at_once(
    pg_url: str, tmp_path: Path
) -> None:
    data_a, data_b = tmp_path / "a", tmp_path / "b"
    tss = _tse_with_receipts(data_a, pg_url, receipts=1)
    shutil.copytree(data_a, data_b)
    inst_a, ctx_a = _node(data_a, pg_url, lease=60.0)  # far longer than the test
    inst_b, ctx_b = _node(data_b, pg_url, lease=60.0)
    try:
        ctx_a.exports.resume()
        ctx_b.exports.resume()
        gate = threading.Event()
        ctx_a.exports._pool.submit(gate.wait, 30)  # A's only worker is busy
        export_id = str(uuid.uuid4())
        row = ExportRow(
            export_id, tss, "org", "PENDING", {}, None, ctx_a.now(), None, None, None, None, {}
        )
        assert ctx_a.exports.trigger(row, 10)
        time.sleep(4 * RENEW)  # B's heartbeats see A's reservation and leave it
        queued = ctx_b.svc.get_export(export_id)
        assert queued is not None and (queued.state, queued.lease_owner) == (
            "PENDING",
            ctx_a.exports.owner,
        )
        stopping = threading.Thread(target=ctx_a.exports.shutdown)
        stopping.start()
        gate.set()
        stopping.join(timeout=30)
        deadline = time.monotonic() + 20  # far less than A's 60 s lease
        while (done := ctx_b.svc.get_export(export_id)) is not None and done.state != "COMPLETED":
            assert time.monotonic() < deadline, f"B did not take the export: {done}"
            time.sleep(0.05)
        assert done is not None and done.lease_owner == ctx_b.exports.owner
        assert done.file_path is not None
        assert verify_exports([Path(done.file_path)]).ok
    finally:
        ctx_a.close()
        ctx_b.close()
        inst_a.close()
        inst_b.close()


# Node A, sharing B's exports folder: a real export whose disk hangs after the first
# chunk (flushed, so the part file holds it), as a node that is about to die does.
_DYING_NODE_A = f"""
import sys, time
from pathlib import Path
from opentse.installation import Installation
from opentse.server.context import ServerConfig, ServerContext
from opentse.server.export_jobs import ExportManager
from opentse.server.service_store import ExportRow

data, url, tss, export_id = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
inst = Installation.open(data, database_url=url)
config = ServerConfig(data_dir=data, export_lease={LEASE}, export_renew={RENEW})
ctx = ServerContext(inst, config)
ctx.exports = ExportManager(ctx, 1)
ctx.exports.resume()

class Hanging:
    def __init__(self, out):
        self.out = out
    def write(self, data):
        n = self.out.write(data)
        self.out.flush()
        print(ctx.exports.owner, flush=True)
        time.sleep(600)
        return n
    def flush(self):
        self.out.flush()

class Engine:
    def export(self, tss_id, out, flt):
        return inst.service.export(tss_id, Hanging(out), flt)

ctx.service = Engine()
row = ExportRow(export_id, tss, "org", "PENDING", {{}}, None, ctx.now(), None, None, None,
                None, {{}})
assert ctx.exports.trigger(row, 10)
time.sleep(600)
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        (tmp_path / "db").mkdir()
        return f"sqlite:///{tmp_path / 'db' / 'opentse.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def test_a_dead_nodes_part_file_in_the_shared_folder_goes_when_its_export_is_taken_over(
    database: str, tmp_path: Path
) -> None:
    data_a, data_b = tmp_path / "a", tmp_path / "b"
    tss = _tse_with_receipts(data_a, database, receipts=3)
    shutil.copytree(data_a, data_b)
    shared = data_a / "exports"
    shared.mkdir(exist_ok=True)
    shutil.rmtree(data_b / "exports", ignore_errors=True)
    (data_b / "exports").symlink_to(shared)  # B mounts the share at another path
    export_id = str(uuid.uuid4())
    with _node_a_and_b(tmp_path, _DYING_NODE_A, data_a, data_b, database, tss, export_id) as (
        node_a,
        owner_a,
        ctx_b,
    ):
        a_part = next(shared.iterdir())
        assert a_part.stat().st_size > 0 and a_part.name.endswith(".part")
        # another attempt at it that died between its rename and its update, and
        # files of exports B must not touch (one nobody knows, one of another node)
        dead = shared / f"{export_id}.node-z-1-0a0b0c0d.0a0b0c0d.tar"
        dead.write_bytes(b"dead")
        others = {f"{uuid.uuid4()}.node-y-1-0a0b0c0d.part", f"{uuid.uuid4()}.tar"}
        for name in others:
            (shared / name).write_bytes(b"other")
        ctx_b.exports.resume()
        time.sleep(3 * LEASE)  # A is alive (renewing): B leaves its export and files
        row = ctx_b.svc.get_export(export_id)
        assert row is not None and (row.state, row.lease_owner) == ("WORKING", owner_a)
        assert {p.name for p in shared.iterdir()} == {a_part.name, dead.name, *others}
        row = _taken_over_after_kill(node_a, owner_a, ctx_b, export_id)
        assert row.file_path is not None
        b_file = Path(row.file_path)
        assert b_file.parent == data_b / "exports"
        # no start-up needed: A's part file and the dead attempt went with the take-over
        assert {p.name for p in shared.iterdir()} == {b_file.name, *others}
        assert verify_exports([shared / b_file.name]).ok
