"""A node that lost its export lease must neither leave nor publish a stale file.

Two API nodes on one database and one exports folder, on SQLite and PostgreSQL.
Node B is the app served over HTTP; node A is a second ExportManager (own service
store, own lease owner) whose engine stalls in the middle of writing the TAR, as in
a GC pause or a suspended VM: A neither writes nor renews. Its lease is made to run
out (``lease_until`` set in the past), B takes the export over and completes it, then
A wakes up and finishes writing. The client must download B's file, A's file must be
gone and the row must stay B's COMPLETED one.

Against the worker before this change (every attempt ``os.replace``-d its part file
over ``exports/<id>.tar``, the path B had recorded; run with only the test seams
``wait_idle`` and ``part_path`` added to it) the first test downloads A's
bytes after A wakes up, the second finds A's ``<id>.tar`` left behind by a cancelled
export, the third has no clean-up of orphaned part files, the fourth gets 404 where
the folder is mounted elsewhere than at the node that wrote the file.

A take-over, and the end of an export (cancelled here), remove the export's files of
nodes that no longer hold its lease at once, not only at the next start-up; before
that (``ExportManager.remove_stale_attempts``), A's part file stayed until A woke up,
a dead node's until a node started, and a node whose fresh part file such a clean-up
removed kept the export WORKING until its lease ran out.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opentse.installation import Installation
from opentse.server import export_jobs
from opentse.server.app import create_app
from opentse.server.auth import create_api_key
from opentse.server.context import ServerConfig, ServerContext
from opentse.server.export_jobs import ExportManager
from opentse.server.service_store import ExportRow
from opentse.storage.pg_testing import temporary_schema
from opentse.testing.clock import FrozenClock
from opentse.testing.serving import serving_in_thread
from opentse.verify.report import verify_exports

pytestmark = pytest.mark.timeout(120)

LEASE = 30.0  # seconds: never runs out by itself here; the tests expire it
RENEW = 0.1  # B's heartbeat: picks the expired export up at once
A_NOW = 2_000_000_000  # node A's clock: a time_end A wrote would show


class _StallingEngine:
    """Node A's engine: the real export, whose writer hangs after its first chunk
    until released; keeps a copy of every byte A wrote."""

    def __init__(self, service: Any) -> None:
        self._service = service
        self.writing = threading.Event()
        self.release = threading.Event()
        self.written = bytearray()

    def export(self, tss_id: str, out: IO[bytes], flt: Any) -> Any:
        return self._service.export(tss_id, _StallingFile(out, self), flt)


class _StallingFile:
    def __init__(self, out: IO[bytes], engine: _StallingEngine) -> None:
        self._out = out
        self._engine = engine

    def write(self, data: bytes) -> int:
        n = self._out.write(data)
        self._engine.written += data
        if not self._engine.writing.is_set():
            self._engine.writing.set()
            assert self._engine.release.wait(60), "node A was never released"
        return n

    def flush(self) -> None:
        self._out.flush()


@dataclass
class Nodes:
    client: httpx.Client  # node B's API, logged in
    ctx_b: ServerContext
    ctx_a: ServerContext
    engine_a: _StallingEngine
    exports: Path  # the folder both nodes share
    tss: str
    client_id: str
    org: str
    inst: Installation

    @property
    def a(self) -> ExportManager:
        manager: ExportManager = self.ctx_a.exports
        return manager


@pytest.fixture(params=["sqlite", "postgresql"])
def nodes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Nodes]:
    data = tmp_path / "data"
    with ExitStack() as stack:
        if request.param == "postgresql":
            # tests/conftest.py's pg_server skips when no PostgreSQL answers
            server = request.getfixturevalue("pg_server")
            url = stack.enter_context(temporary_schema(server, prefix="opentse_stale_"))
        else:
            url = f"sqlite:///{data / 'opentse.db'}"
        inst = Installation.open(data, database_url=url, clock=FrozenClock(1_700_000_000))
        stack.callback(inst.close)
        config = ServerConfig(data_dir=data, export_lease=LEASE, export_renew=RENEW)
        app = create_app(inst, config)
        origin = stack.enter_context(serving_in_thread(app))
        client = stack.enter_context(httpx.Client(base_url=origin, timeout=30))
        ctx_b: ServerContext = app.state.ctx
        # node A: its own service store and lease owner, same database and folder;
        # never resumed, so no heartbeat renews its lease while it stalls
        ctx_a = ServerContext(inst, config, FrozenClock(A_NOW))
        ctx_a.exports = ExportManager(ctx_a, 1)
        stack.callback(ctx_a.close)
        engine_a = _StallingEngine(inst.service)
        ctx_a.service = engine_a
        stack.callback(engine_a.release.set)  # never leave A's worker hanging
        key = create_api_key(ctx_b.svc, org_name="shop", env="TEST", now=ctx_b.now())
        tss, client_id = _setup_tss(client, key)
        org = key["organization_id"]
        yield Nodes(client, ctx_b, ctx_a, engine_a, data / "exports", tss, client_id, org, inst)


def _ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    return r.json()


def _setup_tss(client: httpx.Client, key: dict[str, str]) -> tuple[str, str]:
    auth = _ok(client.post("/api/v2/auth", json={k: key[k] for k in ("api_key", "api_secret")}))
    client.headers["Authorization"] = f"Bearer {auth['access_token']}"
    tss = str(uuid.uuid4())
    puk = _ok(client.put(f"/api/v2/tss/{tss}", json={}))["admin_puk"]
    _ok(client.patch(f"/api/v2/tss/{tss}", json={"state": "UNINITIALIZED"}))
    _ok(
        client.patch(f"/api/v2/tss/{tss}/admin", json={"admin_puk": puk, "new_admin_pin": "123456"})
    )
    _ok(client.post(f"/api/v2/tss/{tss}/admin/auth", json={"admin_pin": "123456"}))
    _ok(client.patch(f"/api/v2/tss/{tss}", json={"state": "INITIALIZED"}))
    client_id = str(uuid.uuid4())
    _ok(client.put(f"/api/v2/tss/{tss}/client/{client_id}", json={"serial_number": "KASSE-1"}))
    _start_tx(client, tss, client_id)
    return tss, client_id


def _start_tx(client: httpx.Client, tss: str, client_id: str) -> None:
    tx = f"/api/v2/tss/{tss}/tx/{uuid.uuid4()}"
    _ok(client.put(tx, params={"tx_revision": 1}, json={"state": "ACTIVE", "client_id": client_id}))


def _a_stalls_writing(n: Nodes) -> str:
    """Node A takes a new export (as if a client had asked it) and hangs in the
    middle of writing it; returns the export id."""
    export_id = str(uuid.uuid4())
    row = ExportRow(export_id, n.tss, n.org, "PENDING", {}, None, A_NOW, None, None, None, None, {})
    assert n.a.trigger(row, 10)
    assert n.engine_a.writing.wait(30), "node A did not start writing"
    working = n.ctx_b.svc.get_export(export_id)
    assert working is not None and (working.state, working.lease_owner) == ("WORKING", n.a.owner)
    assert [p.name for p in n.exports.iterdir()] == [n.a.part_path(export_id).name]
    # signing goes on: B's export will hold one more log than A's snapshot
    _start_tx(n.client, n.tss, n.client_id)
    return export_id


def _expire_a_lease(n: Nodes, export_id: str) -> None:
    """A stalled past its lease: the lease ran out (B's heartbeat now claims it)."""
    assert n.ctx_b.svc.update_export(export_id, owner=n.a.owner, lease_until=0)


def _taken_over_by_b(n: Nodes) -> tuple[str, ExportRow, Path]:
    """A stalls writing an export, its lease runs out, B completes it: (export id,
    B's COMPLETED row, B's file)."""
    export_id = _a_stalls_writing(n)
    _expire_a_lease(n, export_id)
    _wait_state(n, export_id, "COMPLETED")
    done = n.ctx_b.svc.get_export(export_id)
    assert done is not None and done.file_path is not None
    return export_id, done, Path(done.file_path)


def _wait_state(n: Nodes, export_id: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (body := _ok(n.client.get(f"/api/v2/tss/{n.tss}/export/{export_id}")))["state"] != state:
        assert time.monotonic() < deadline, f"export never {state}: {body}"
        time.sleep(0.05)
    return dict(body)


def _download(n: Nodes, export_id: str) -> httpx.Response:
    return n.client.get(f"/api/v2/tss/{n.tss}/export/{export_id}/file")


def _a_wakes_up(n: Nodes) -> None:
    n.engine_a.release.set()
    assert n.a.wait_idle(30), "node A did not finish"


def test_a_stalled_node_neither_replaces_nor_publishes_the_file_of_the_node_that_took_over(
    nodes: Nodes,
) -> None:
    n = nodes
    export_id, done, b_file = _taken_over_by_b(n)
    assert done.lease_owner == n.ctx_b.exports.owner != n.a.owner
    r = _download(n, export_id)
    assert r.status_code == 200
    b_bytes = r.content
    assert b_bytes == b_file.read_bytes()
    assert verify_exports([b_file]).ok
    # B's take-over removed A's part file at once, while A still hangs in it
    assert [p.name for p in n.exports.iterdir()] == [b_file.name]
    # A wakes up and finishes writing its (older) copy
    _a_wakes_up(n)
    a_bytes = bytes(n.engine_a.written)
    assert len(a_bytes) > 1024 and a_bytes != b_bytes  # A wrote a whole, different TAR
    after = n.ctx_b.svc.get_export(export_id)
    assert after == done  # COMPLETED once: B's time_end, file and owner, not A's
    assert after is not None and after.time_end != A_NOW
    assert _download(n, export_id).content == b_bytes
    assert [p.name for p in n.exports.iterdir()] == [b_file.name]  # A's file is gone


def test_a_file_written_for_a_cancelled_export_is_removed_by_its_writer(nodes: Nodes) -> None:
    n = nodes
    export_id = _a_stalls_writing(n)
    cancelled = n.client.delete(f"/api/v2/tss/{n.tss}/export/{export_id}")  # at node B
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "CANCELLED"
    assert list(n.exports.iterdir()) == []  # A's part file went with the cancel
    _a_wakes_up(n)  # A never heard of it (no heartbeat) and finishes writing
    assert len(n.engine_a.written) > 1024
    row = n.ctx_b.svc.get_export(export_id)
    assert row is not None and (row.state, row.file_path) == ("CANCELLED", None)
    assert _download(n, export_id).status_code == 404
    assert list(n.exports.iterdir()) == []


def test_a_starting_node_removes_the_orphans_of_finished_exports_only(nodes: Nodes) -> None:
    n = nodes
    export_id, done, b_file = _taken_over_by_b(n)
    # files of other exports: one still WORKING at some node, one of before this
    # change (COMPLETED as <id>.tar, with a part file of a stalled node of then),
    # one nobody knows
    running, old, unknown = (str(uuid.uuid4()) for _ in range(3))
    svc = n.ctx_b.svc
    assert svc.add_export(
        ExportRow(running, n.tss, n.org, "PENDING", {}, None, 1, None, None, None, None, {}), 10
    )
    assert svc.claim_export(running, "node-x", LEASE, now=2) is not None
    old_final = n.exports / f"{old}.tar"
    assert svc.add_export(
        ExportRow(old, n.tss, n.org, "COMPLETED", {}, None, 1, 2, 3, None, str(old_final), {}), 10
    )
    keep = {
        b_file.name: b_file.read_bytes(),
        f"{running}.node-x.part": b"x",
        f"{unknown}.node-y.part": b"y",
        old_final.name: b"old",
    }
    gone = str(uuid.uuid4())  # cancelled while a node of before wrote <id>.tar
    assert svc.add_export(
        ExportRow(gone, n.tss, n.org, "CANCELLED", {}, None, 1, 2, None, None, None, {}), 10
    )
    orphans = [f"{export_id}.node-z.0a0b0c0d.tar", f"{old}.tar.host.123.part", f"{gone}.tar"]
    for name, data in [*keep.items(), *((o, b"orphan") for o in orphans)]:
        if not (n.exports / name).exists():
            (n.exports / name).write_bytes(data)
    # A is still stalled in the middle of its part file, which B's take-over removed
    assert not n.a.part_path(export_id).exists()
    # a node starting up (its heartbeat's first round does this)
    starting = ExportManager(n.ctx_b, 1)
    assert starting.remove_orphans() == 3
    assert sorted(p.name for p in n.exports.iterdir()) == sorted(keep)
    # A wakes up to find its part file gone: it publishes nothing, changes nothing
    _a_wakes_up(n)
    assert n.ctx_b.svc.get_export(export_id) == done
    assert sorted(p.name for p in n.exports.iterdir()) == sorted(keep)
    assert _download(n, export_id).content == keep[b_file.name]


def test_a_node_mounting_the_shared_folder_elsewhere_serves_the_recorded_file(
    nodes: Nodes,
) -> None:
    n = nodes
    export_id = str(uuid.uuid4())
    _ok(n.client.put(f"/api/v2/tss/{n.tss}/export/{export_id}"))
    _wait_state(n, export_id, "COMPLETED")
    done = n.ctx_b.svc.get_export(export_id)
    assert done is not None and done.file_path is not None
    data = Path(done.file_path).read_bytes()
    # recorded by a node whose data folder is elsewhere: found here by its unique name
    elsewhere = f"/mnt/other-node/exports/{Path(done.file_path).name}"
    assert n.ctx_b.svc.update_export(export_id, file_path=elsewhere)
    assert _download(n, export_id).content == data
    # a name that is not in this node's folder either: not completed here
    assert n.ctx_b.svc.update_export(
        export_id, file_path=f"/mnt/other-node/exports/{export_id}.x.tar"
    )
    assert _download(n, export_id).status_code == 404


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_take_over_removes_that_exports_files_of_nodes_without_the_lease_only(
    nodes: Nodes,
) -> None:
    """Files a dead node left of the export B takes over go when B takes it (before
    the export is over); files of other exports, one WORKING at a live node, stay."""
    n = nodes
    export_id = _a_stalls_writing(n)
    svc = n.ctx_b.svc
    running = str(uuid.uuid4())
    assert svc.add_export(
        ExportRow(running, n.tss, n.org, "PENDING", {}, None, 1, None, None, None, None, {}), 10
    )
    assert svc.claim_export(running, "node-x", LEASE, now=2) is not None
    others = [f"{running}.node-x.part", f"{running}.node-w.0a0b0c0d.tar"]
    others.append(f"{uuid.uuid4()}.node-y.part")  # of an export nobody knows
    stale = [f"{export_id}.node-z.0a0b0c0d.tar", f"{export_id}.tar.host.123.part"]
    for name in [*others, *stale]:
        (n.exports / name).write_bytes(b"x")
    _expire_a_lease(n, export_id)
    _wait_state(n, export_id, "COMPLETED")
    done = n.ctx_b.svc.get_export(export_id)
    assert done is not None and done.file_path is not None
    assert done.lease_owner == n.ctx_b.exports.owner
    assert _names(n.exports) == sorted([Path(done.file_path).name, *others])
    assert verify_exports([Path(done.file_path)]).ok
    _a_wakes_up(n)  # its part file is gone: it records nothing and leaves nothing
    assert n.ctx_b.svc.get_export(export_id) == done
    assert _names(n.exports) == sorted([Path(done.file_path).name, *others])


class _SlowToPublish(ExportManager):
    """Node A's worker, paused after renaming its finished file and before the
    COMPLETED update that would record it (the real update runs when let go)."""

    def __init__(self, ctx: ServerContext) -> None:
        super().__init__(ctx, 1)
        self.renamed = threading.Event()
        self.go = threading.Event()
        self.published: list[bool] = []

    def _publish(self, export_id: str, final: Path) -> bool:
        self.renamed.set()
        assert self.go.wait(60), "node A was never let go"
        done = super()._publish(export_id, final)
        self.published.append(done)
        return done


def test_a_slow_node_whose_renamed_file_was_removed_on_take_over_records_nothing(
    nodes: Nodes,
) -> None:
    """A finished and renamed its file but stalls before its COMPLETED update; B takes
    over and deletes A's file. A's update must then be refused: no COMPLETED record
    may name a deleted file."""
    n = nodes
    n.ctx_a.service = n.inst.service  # A writes at full speed this time
    slow = _SlowToPublish(n.ctx_a)
    n.a.shutdown()
    n.ctx_a.exports = slow
    try:
        export_id = str(uuid.uuid4())
        row = ExportRow(
            export_id, n.tss, n.org, "PENDING", {}, None, A_NOW, None, None, None, None, {}
        )
        assert slow.trigger(row, 10)
        assert slow.renamed.wait(30), "node A did not finish writing"
        a_files = _names(n.exports)
        assert len(a_files) == 1 and a_files[0].endswith(".tar"), a_files
        _start_tx(n.client, n.tss, n.client_id)
        _expire_a_lease(n, export_id)
        _wait_state(n, export_id, "COMPLETED")
        done = n.ctx_b.svc.get_export(export_id)
        assert done is not None and done.file_path is not None
        assert done.lease_owner == n.ctx_b.exports.owner
        b_name = Path(done.file_path).name
        assert _names(n.exports) == [b_name] != a_files  # A's file removed under it
        slow.go.set()
        assert slow.wait_idle(30)
        assert slow.published == [False]  # refused: B holds the lease
        assert n.ctx_b.svc.get_export(export_id) == done
        assert _names(n.exports) == [b_name]
        download = _download(n, export_id)
        assert download.status_code == 200
        assert download.content == (n.exports / b_name).read_bytes()
        assert verify_exports([n.exports / b_name]).ok
    finally:
        slow.go.set()


def test_a_node_whose_part_file_was_removed_while_it_held_the_lease_hands_it_back(
    nodes: Nodes,
) -> None:
    """Another node's clean-up read the lease just before A took the export and
    removed A's fresh part file: A cannot complete it and hands it back at once, so
    it is written again well before A's lease (30 s) would run out."""
    n = nodes
    export_id = _a_stalls_writing(n)
    n.a.part_path(export_id).unlink()
    started = time.monotonic()
    _a_wakes_up(n)
    _wait_state(n, export_id, "COMPLETED")
    assert time.monotonic() - started < LEASE / 2
    done = n.ctx_b.svc.get_export(export_id)
    assert done is not None and done.file_path is not None
    assert done.lease_owner == n.ctx_b.exports.owner
    assert _names(n.exports) == [Path(done.file_path).name]
    assert verify_exports([Path(done.file_path)]).ok


@settings(max_examples=100, deadline=None)
@given(
    node=st.text(max_size=30),
    pid=st.integers(min_value=1, max_value=2**22),
    rand=st.binary(min_size=4, max_size=4),
)
def test_an_attempt_files_name_tells_its_writer(node: str, pid: int, rand: bytes) -> None:
    """The clean-up spares the lease owner's files by the tag in their names: every
    name a writer uses carries its tag, and the names of before carry none."""
    export_id = str(uuid.uuid4())
    tag = export_jobs._tag_of(f"{node}:{pid}:{rand.hex()}")
    for name in (f"{export_id}.{tag}.part", f"{export_id}.{tag}.{rand.hex()}.tar"):
        match = export_jobs._ATTEMPT_FILE.match(name)
        assert match is not None and match.group(1) == export_id
        assert export_jobs._attempt_tag(name) == tag
    for old in (f"{export_id}.tar", f"{export_id}.tar.{node or 'h'}.{pid}.part"):
        assert export_jobs._attempt_tag(old) != tag
