"""`site move-register K1 B --tse tB` killed between its two steps (moved to B and
released from its old TSE, not yet assigned to tB): run again, it said 'register K1
is at location B already' (E_SITE_REGISTER_SAME_LOCATION) and left the till with no
TSE and no word of `site assign`. The rerun finishes the assignment now and still
names the old TSE the till is registered at. The kill is real: a forked process is
SIGKILLed as the assignment starts."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from typer.testing import CliRunner

from conftest import START, ready_tse
from opentse.cli.main import build_app
from opentse.ops import sites
from opentse.ops.store import OpsContext
from opentse.testing.clock import FrozenClock


def _shops(ops: OpsContext) -> tuple[str, str]:
    org = sites.create_organization(ops, "Eis GmbH")
    a = sites.create_location(ops, org.id, "A", street="Weg 1", postal_code="1", city="X")
    b = sites.create_location(ops, org.id, "B", street="Gasse 2", postal_code="2", city="Y")
    ready_tse(ops, "tA", "K1")
    ready_tse(ops, "tB", "K1")
    sites.assign_tse(ops, "tA", a.id)
    sites.assign_tse(ops, "tB", b.id)
    sites.add_register(ops, "K1", a.id)
    sites.assign_register(ops, "K1", "tA")
    return a.id, b.id


def _move_killed_before_the_assignment(data_dir: Path, location_id: str) -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        try:
            ctx = OpsContext.open(data_dir, clock=FrozenClock(START + 60))

            def hook(frame: FrameType, event: str, arg: Any) -> None:
                if event == "call" and frame.f_code is sites.assign_register.__code__:
                    os.kill(os.getpid(), signal.SIGKILL)

            sys.setprofile(hook)
            sites.move_register(ctx, "K1", location_id, tse_id="tB")
        finally:
            os._exit(3)  # not killed: the assignment was never reached
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


def test_move_register_run_again_finishes_the_assignment(ops: OpsContext) -> None:
    _a, b = _shops(ops)
    _move_killed_before_the_assignment(ops.data_dir, b)
    stopped = sites.get_register(ops, "K1")
    assert (stopped.location_id, stopped.tse_id) == (b, None)  # half-way
    result = CliRunner().invoke(
        build_app(),
        ["site", "move-register", "K1", b, "--tse", "tB", "--data", str(ops.data_dir)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    done = sites.get_register(ops, "K1")
    assert (done.location_id, done.tse_id) == (b, "tB")
    # the old shop's TSE still has it registered: named although the rerun found the
    # register without a TSE
    assert "opentse client deregister K1 --tss tA" in result.output
    again = CliRunner().invoke(
        build_app(),
        ["site", "move-register", "K1", b, "--tse", "tB", "--data", str(ops.data_dir)],
    )
    assert again.exit_code == 1
    text = " ".join(again.output.split())
    assert "E_SITE_REGISTER_SAME_LOCATION" in text and "opentse site assign K1" in text
