"""A node stopping while an export is stuck for good still ends its process.

An export whose file cannot be written and never fails either (the exports folder on
a hung network share; here the part file is a FIFO nobody reads, so opening it
blocks) held a worker thread of a ThreadPoolExecutor, and those are joined when the
interpreter exits: the stopped node's process never ended. The workers are daemon
threads now; the export's lease runs out and it is written again later.
"""

from __future__ import annotations

import select
import subprocess
import sys
import time
import uuid
from pathlib import Path

from opentse.engine.state import Lifecycle
from opentse.installation import Installation

_NODE = """
import os, sys, time
from pathlib import Path
from opentse.installation import Installation
from opentse.server.context import ServerConfig, ServerContext
from opentse.server.export_jobs import ExportManager
from opentse.server.service_store import ExportRow

data, tss, export_id = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
inst = Installation.open(data)
ctx = ServerContext(inst, ServerConfig(data_dir=data))
ctx.exports = ExportManager(ctx, 1)
ctx.exports.resume()
os.mkfifo(ctx.exports.part_path(export_id))  # opened for writing: blocks for ever
row = ExportRow(export_id, tss, "org", "PENDING", {}, None, ctx.now(), None, None, None,
                None, {})
assert ctx.exports.trigger(row, 10)
while (got := ctx.svc.get_export(export_id)) is None or got.state != "WORKING":
    time.sleep(0.02)
print("working", flush=True)
ctx.close()  # as the server's lifespan does on SIGTERM
inst.close()
print("closed", flush=True)
"""


def _initialized_tse(data: Path) -> str:
    with Installation.open(data) as inst:
        service = inst.service
        tse_id = str(uuid.uuid4())
        created = service.create_tse(tse_id)
        service.set_state(tse_id, Lifecycle.UNINITIALIZED)
        service.set_admin_pin(tse_id, created.admin_puk, "123456")
        service.authenticate(tse_id, "123456")
        service.initialize(tse_id, "stop test")
        return tse_id


def test_stopping_with_a_hung_export_ends_the_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tss = _initialized_tse(data)
    with subprocess.Popen(
        [sys.executable, "-c", _NODE, str(data), tss, str(uuid.uuid4())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as node:
        assert node.stdout is not None and node.stderr is not None
        try:
            ready, _, _ = select.select([node.stdout], [], [], 60)
            assert ready and node.stdout.readline().strip() == "working"
            started = time.monotonic()
            node.wait(timeout=30)
            took = time.monotonic() - started
            assert node.returncode == 0, node.stderr.read()
            assert node.stdout.read().strip() == "closed"
            assert took < 10, f"the process ended {took:.1f} s after the stop"
        finally:
            if node.poll() is None:
                node.kill()
                node.wait()
